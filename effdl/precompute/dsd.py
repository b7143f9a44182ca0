"""Chapter 13's precomputed DSD runs (``effdl precompute dsd``).

DSD (Han et al., ICLR 2017) against a dense baseline trained for the same
epochs with the same schedule (:mod:`effdl.training.dsd`), on LeNet-300-100
and the embedded MNIST subset.

1. **Selection, on the validation split only** (seeds :data:`SELECTION_SEEDS`,
   kept apart from the evaluation seeds). The settings DSD shares with its
   baseline (learning rate, re-dense factor, weight decay, epochs per phase:
   :data:`SHARED_GRID`) are chosen by the *baseline's* final validation
   accuracy, so the control is as well tuned as DSD; then DSD's own knobs
   (:data:`DSD_GRID`: sparsity 0.3 or 0.5, first layer pruned or not) are
   chosen by DSD's validation accuracy with those settings. Ties go to the
   lower validation loss. Every grid point's numbers are kept in the record.
2. **Evaluation**: the chosen recipe for every seed in :data:`SEEDS`, both
   methods from the same initial weights and phase D; each final model is
   evaluated once on the test split. The record states whether DSD helped:
   the difference of means against the seeds' standard deviation, and the
   paired per-seed differences.
3. **LeNet-5** with the same recipe and the first conv layer left dense, as
   the paper does (no separate selection: a check that the finding is not
   specific to the fully connected net).
4. **The mask at work** (``demo``): one short run (:data:`DEMO`) whose
   per-epoch zero counts the chapter shows; it re-runs it live and compares
   with :func:`demo_matches`.

Nothing was tuned after looking at test numbers. No checkpoints:
:func:`effdl.training.dsd.dsd_compare` rebuilds any run from its seed.
"""
from __future__ import annotations

import os
import itertools
import statistics

from ..data import Split, load_mnist
from ..precompute import load_record, rerun_check
from ..pruning import prunable_parameters
from ..train import threads
from ..training.dsd import (
    DSDResult,
    METHODS,
    _cfg,
    _continue,
    _dense_phase,
    dsd_compare,
    dsd_train,
    mean_std,
    verdict,
)
from ..validation import Bool, Instance, ListOf, PositiveInt, Seed, validate_params


ARCH = "lenet300"
SELECTION_SEEDS = [100, 101]
SEEDS = list(range(10))
LENET5_SEEDS = [0, 1, 2, 3, 4]
FIXED = {"momentum": 0.9, "batch_size": 64}
SHARED_GRID = {"lr": [0.01, 0.03], "weight_decay": [0.0, 5e-4], "redense_lr_factor": [0.1, 0.3],
               "phase_epochs": [(10, 5, 5), (20, 10, 10)]}
DSD_GRID = {"sparsity": [0.3, 0.5], "skip_first": [False, True]}
# The chapter's short live run: 3 dense, 2 sparse, 2 re-dense epochs of LeNet-300-100, one seed.
DEMO = {"arch": "lenet300", "sparsity": 0.5, "dense_epochs": 3, "sparse_epochs": 2, "redense_epochs": 2,
        "lr": 0.03, "redense_lr_factor": 0.3, "weight_decay": 5e-4, "seed": 0}
# A live re-run of DEMO on another CPU matches the record when the dense and sparse phases' zero counts are
# equal (the mask makes them exact), and in phase D′ the share of pruned weights still exactly zero is within
# DEMO_ZERO_TOLERANCE and their mean |w| ratio within DEMO_RATIO_TOLERANCE (relative) of the record's.
DEMO_ZERO_TOLERANCE = 0.005
DEMO_RATIO_TOLERANCE = 0.1


def _variants():
    return [dict(zip(DSD_GRID, v)) for v in itertools.product(*DSD_GRID.values())]


def _shared_configs():
    for lr, wd, factor, (d, s, r) in itertools.product(*SHARED_GRID.values()):
        yield {"lr": lr, "weight_decay": wd, "redense_lr_factor": factor,
               "dense_epochs": d, "sparse_epochs": s, "redense_epochs": r}


def _branches(arch, shared, seed, train, val, test=None, variants=None):
    """Phase D once; then the baseline and each DSD variant from a copy of it."""
    # the grid's own values (constants of this module): dsd_compare's private core, one phase D for all
    settings = {**FIXED, **shared}
    cfg = _cfg(settings["dense_epochs"], settings["sparse_epochs"], settings["redense_epochs"], settings["lr"],
               settings["redense_lr_factor"], seed, settings["momentum"], settings["weight_decay"],
               settings["batch_size"])
    model, shell = _dense_phase(arch, train, val, cfg, "cpu", None)
    out = {"baseline": _continue("baseline", model, shell, train, val, test, cfg, 0.0, False, "cpu", None)}
    for v in variants or _variants():
        out[_key(v)] = _continue("dsd", model, shell, train, val, test, cfg, v["sparsity"], v["skip_first"],
                                 "cpu", None)
    return out


def _key(v: dict) -> str:
    return f"sparsity={v['sparsity']},skip_first={v['skip_first']}"


_SHARED_KEYS = ("lr", "weight_decay", "redense_lr_factor", "dense_epochs", "sparse_epochs", "redense_epochs")


def _select(train, val) -> tuple[dict, list]:
    rows = []
    for shared in _shared_configs():
        runs = [_branches(ARCH, shared, seed, train, val) for seed in SELECTION_SEEDS]
        row = {**shared}
        for key in runs[0]:
            row[key] = {"val_acc": round(statistics.mean(r[key].val_acc[-1] for r in runs), 3),
                        "val_loss": round(statistics.mean(r[key].val_loss for r in runs), 5)}
        rows.append(row)
        print(f"  {shared}: baseline {row['baseline']}", flush=True)
    best = max(rows, key=lambda r: (r["baseline"]["val_acc"], -r["baseline"]["val_loss"]))
    shared = {k: best[k] for k in _SHARED_KEYS}
    variant = max(_variants(), key=lambda v: (best[_key(v)]["val_acc"], -best[_key(v)]["val_loss"]))
    return {"arch": ARCH, **variant, **shared, **FIXED}, rows


def _run_row(r) -> dict:
    row = {"test_acc": r.test_acc, "final_val_acc": r.val_acc[-1], "val_acc": r.val_acc,
           "train_loss": [round(x, 5) for x in r.train_loss]}
    if r.method == "dsd":
        row["pruned_zero_fraction"] = [None if x is None else round(x, 5) for x in r.pruned_zero_fraction]
        row["pruned_abs_ratio"] = [None if x is None else round(x, 5) for x in r.pruned_abs_ratio]
        n_pruned = sum(int((~m).sum()) for m in r.masks.values())
        row["pruned_weights"] = n_pruned
        total = sum(w.numel() for w in prunable_parameters(r.model).values())
        row["pruned_fraction_of_all_weights"] = round(n_pruned / total, 5)
    return row


def _evaluate(arch, recipe, seeds, train, val, test) -> dict:
    shared = {k: recipe[k] for k in _SHARED_KEYS}
    variant = {"sparsity": recipe["sparsity"], "skip_first": recipe["skip_first"]}
    runs = {m: {} for m in METHODS}
    phases = None
    for seed in seeds:
        out = _branches(arch, shared, seed, train, val, test, [variant])
        runs["baseline"][str(seed)] = _run_row(out["baseline"])
        runs["dsd"][str(seed)] = _run_row(out[_key(variant)])
        phases = out["baseline"].phases
        print(f"  {arch} seed {seed}: baseline {out['baseline'].test_acc} · dsd {out[_key(variant)].test_acc}",
              flush=True)
    acc = {m: [runs[m][str(s)]["test_acc"] for s in seeds] for m in METHODS}
    comparison = verdict(acc["baseline"], acc["dsd"])
    return {"recipe": {"arch": arch, **recipe}, "seeds": seeds, "phases": [list(p) for p in phases], "runs": runs,
            "summary": {m: mean_std(acc[m]) for m in METHODS}, "comparison": comparison,
            "helped": comparison["verdict"] == "helped", "conclusion": _sentence(arch, acc, comparison)}


def _sentence(arch, acc, c) -> str:
    b, d = mean_std(acc["baseline"]), mean_std(acc["dsd"])
    n = len(acc["dsd"])
    head = {"helped": "DSD helped", "hurt": "DSD hurt", "no clear difference": "DSD made no clear difference",
            "one seed": "One seed cannot tell whether DSD helped"}
    name = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}[arch]
    text = (f"{head[c['verdict']]} on {name} here: test accuracy {d['mean']:.2f} ± {d['std']:.2f} % (DSD) vs "
            f"{b['mean']:.2f} ± {b['std']:.2f} % (baseline, same epochs and schedule) over {n} seeds, a difference "
            f"of {c['difference']:+.2f} points against a seed-to-seed std of {c['noise']:.2f}. Paired by seed "
            f"(same initial weights and phase D), DSD was better on {c['seeds_dsd_better']} seeds, worse on "
            f"{c['seeds_dsd_worse']} and equal on {n - c['seeds_dsd_better'] - c['seeds_dsd_worse']}")
    p = c["paired_t_p_value"]
    if p is None:
        return text + "."
    text += f" (paired t-test p = {p:.3f})"
    if p < 0.05:
        text += ": a small but consistent " + ("gain." if c["difference"] > 0 else "loss.")
    else:
        return text + ": no consistent effect either way."
    return text


def _selection_gain(rows, recipe) -> dict:
    """Validation accuracy (selection seeds) of the chosen DSD variant and of the baseline, same settings."""
    row = next(r for r in rows if all(r[k] == recipe[k] for k in _SHARED_KEYS))
    dsd = row[_key(recipe)]["val_acc"]
    return {"baseline_val_acc": row["baseline"]["val_acc"], "dsd_val_acc": dsd,
            "dsd_minus_baseline": round(dsd - row["baseline"]["val_acc"], 3),
            "note": f"the best of {len(_variants())} DSD variants on {len(SELECTION_SEEDS)} seeds: an optimistic "
                    "estimate (selected on these very numbers); the test comparison on fresh seeds is the answer"}


@validate_params(run=Instance(DSDResult, "a DSDResult"))
def demo_record(run: DSDResult) -> dict:
    """The per-epoch statistics of a :data:`DEMO` run, as the record keeps them.

    Behind chapter 13, "Distillation and DSD".
    """
    return {"recipe": DEMO, "phases": [list(p) for p in run.phases],
            "pruned": {n: int((~m).sum()) for n, m in run.masks.items()},
            "sizes": {n: m.numel() for n, m in run.masks.items()},
            "zeros": run.zeros, "pruned_zero_fraction": run.pruned_zero_fraction,
            "pruned_abs_ratio": run.pruned_abs_ratio}


@validate_params(run=Instance(DSDResult, "a DSDResult"), demo=Instance(dict, "the record's demo block"))
def demo_matches(run: DSDResult, demo: dict) -> bool:
    """Whether a live :data:`DEMO` run matches the record's ``demo`` (see :data:`DEMO_ZERO_TOLERANCE`).

    Taught in chapter 13, "Distillation and DSD".
    """
    live = demo_record(run)
    if live["phases"] != demo["phases"] or live["pruned"] != demo["pruned"]:
        return False
    for e, (name, _, _) in enumerate(p for p in demo["phases"] for _ in range(p[1], p[2] + 1)):
        if name != "redense":
            if live["zeros"][e] != demo["zeros"][e]:
                return False
            continue
        zero, ratio = live["pruned_zero_fraction"][e], live["pruned_abs_ratio"][e]
        if abs(zero - demo["pruned_zero_fraction"][e]) > DEMO_ZERO_TOLERANCE:
            return False
        if abs(ratio - demo["pruned_abs_ratio"][e]) > DEMO_RATIO_TOLERANCE * demo["pruned_abs_ratio"][e]:
            return False
    return True


@validate_params(train=Instance(Split, "an effdl.data.Split"), val=Instance(Split, "an effdl.data.Split"))
def demo_run(train, val) -> DSDResult:
    """The :data:`DEMO` run on ``train`` / ``val`` (on the caller's threads).

    Taught in chapter 13, "Distillation and DSD".
    """
    return dsd_train(train=train, val=val, device="cpu", **DEMO)


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Select on validation, evaluate on test; ``out_dir`` is unused (no checkpoints).

    Taught in chapter 13, "Distillation and DSD".
    """
    with threads(1):                  # one thread: the same arithmetic order on every machine
        return _run(out_dir)


def _run(out_dir) -> dict:
    train, val, test = (load_mnist(s, source="embedded") for s in ("train", "val", "test"))
    print("selection on validation", flush=True)
    recipe, rows = _select(train, val)
    recipe = {k: v for k, v in recipe.items() if k != "arch"}
    print(f"chosen: {recipe}", flush=True)
    main = _evaluate(ARCH, recipe, SEEDS, train, val, test)
    lenet5 = _evaluate("lenet5", {**recipe, "skip_first": True}, LENET5_SEEDS, train, val, test)
    demo = demo_record(demo_run(train, val))
    return {**main, "threads": 1, "demo": demo,
            "data": "embedded MNIST subset: train 3,500 · val 500 · test 1,000",
            "selection": {"rule": "shared settings (lr, weight decay, re-dense factor, epochs per phase) by the "
                                  "baseline's final validation accuracy, mean over the selection seeds (ties: lower "
                                  "validation loss); then DSD's sparsity and first-layer choice by DSD's validation "
                                  "accuracy with those settings. The test split is used once, after selection.",
                          "seeds": SELECTION_SEEDS, "shared_grid": {k: [list(x) if isinstance(x, tuple) else x
                                                                        for x in v] for k, v in SHARED_GRID.items()},
                          "dsd_grid": DSD_GRID, "fixed": FIXED, "rows": rows,
                          "chosen_on_validation": _selection_gain(rows, recipe)},
            "lenet5": {**lenet5, "note": "the lenet300 recipe with the first conv layer left dense (as in the "
                                         "paper); not selected separately"}}


@validate_params(recipe=Instance(dict, "a dict of dsd_compare keywords"), seeds=ListOf(Seed()), test=Bool())
def run_recipe(recipe: dict, seeds, *, test: bool = True) -> dict[str, list[DSDResult]]:
    """Run ``recipe`` (keywords of :func:`dsd_compare` plus ``arch``) for each seed on the embedded MNIST.

    Returns ``{"baseline": [result per seed], "dsd": [...]}``; with ``test``
    each final model is evaluated once on the test split.

    Behind chapter 13, "Distillation and DSD".
    """

    train, val = load_mnist("train", source="embedded"), load_mnist("val", source="embedded")
    test_split = load_mnist("test", source="embedded") if test else None
    out: dict[str, list[DSDResult]] = {m: [] for m in METHODS}
    for seed in seeds:
        runs = dsd_compare(train=train, val=val, seed=seed, test=test_split, device="cpu", **recipe)
        for m in METHODS:
            out[m].append(runs[m])
    return out


@validate_params(seeds=PositiveInt(optional=True))
def dsd_report(*, seeds: int | None = None) -> dict:
    """The chapter's headline numbers (``effdl reproduce dsd --json``).

    The headline is the record's (``effdl.precompute.dsd``, every seed): mean
    ± std of the test accuracy (%) for the baseline and DSD, and their
    comparison — the same on every machine. ``live`` re-trains the record's
    recipe for its first ``seeds`` seeds (default: 3) here, on one thread as
    the record did, and compares the mean over those seeds with the record's
    mean over the same seeds (:func:`effdl.precompute.rerun_check`): on the
    CPU that wrote the record the numbers are equal; on another one the last
    digit may move, within the stated tolerance.

    Behind chapter 13, "Distillation and DSD".
    """

    record = load_record("dsd")
    all_seeds = record["seeds"]
    if seeds is not None and seeds > len(all_seeds):
        raise ValueError(f"dsd_report: seeds must be at most the record's {len(all_seeds)}; got {seeds}.")
    seeds = min(3, len(all_seeds)) if seeds is None else seeds
    chosen = all_seeds[:seeds]
    with threads(1):  # the record's setting (and small layers run faster on one thread)
        runs = run_recipe(record["recipe"], chosen)
    acc = {m: [r.test_acc for r in runs[m]] for m in METHODS}
    rec_acc = {m: [record["runs"][m][str(s)]["test_acc"] for s in chosen] for m in METHODS}
    check = rerun_check({m: mean_std(rec_acc[m])["mean"] for m in METHODS},
                        {m: mean_std(acc[m])["mean"] for m in METHODS})
    return {"seeds": len(all_seeds), "arch": record["recipe"]["arch"], "sparsity": record["recipe"]["sparsity"],
            "recipe": record["recipe"], "epochs": runs["dsd"][0].epochs,
            **{m: dict(record["summary"][m]) for m in METHODS},
            "comparison": record["comparison"],
            "live": {"seed_list": chosen, "per_seed": acc, "record_per_seed": rec_acc, **check},
            "matches_record": check["matches_record"]}
