"""Chapter 7's precomputed low-rank experiments (``effdl precompute lowrank``).

1. **fc_svd** — LeNet-300-100's fc1 (784 → 300) truncated by SVD to each rank
   of :data:`FC_RANKS` (:func:`effdl.lowrank.replace_linear`), evaluated as
   is and after fine-tuning the whole factorized model for
   :data:`FC_EPOCHS` epochs (best epoch and learning rate chosen on the
   validation split). "The" rank reported is the smallest one with at least
   4× fewer fc1 parameters whose fine-tuned *validation* accuracy is within
   0.5 points of the dense model's (:func:`choose_rank`); its test accuracy
   is reported.
2. **conv** — LeNet-5's conv1 and conv2 decomposed as Zhang et al.
   (TPAMI 2016): d filters k×k×c → d′ filters k×k×c + d filters 1×1×d′, each
   layer fitted to its responses on training images
   (:func:`effdl.lowrank.factorize_conv_data`), ranks from
   :func:`effdl.lowrank.select_ranks` at MAC budgets of 1/2 … 1/5 of the conv
   layers' MACs (speedups 2×–5×, the lecture's table), ``"uniform"`` vs
   ``"energy"`` (rank selection by response energy); accuracy before and
   after a short fine-tune chosen on validation.
3. **tt** — LeNet-300-100 with fc1 replaced by a tensor-train layer
   (Novikov et al., NIPS 2015), in (4, 7, 7, 4) × out (3, 5, 5, 4), trained
   from scratch; TT rank and learning rate chosen on validation.

No checkpoints: every model here is cheap to rebuild from the record's
chosen hyperparameters, which :func:`lowrank_report` (``effdl reproduce
lowrank``) does, seeded, together with live timings of the TT layer.
"""
from __future__ import annotations

import os
import copy
import math
import time
from typing import Sequence

import torch
from torch import nn

from .. import lowrank, zoo
from ..data import load_mnist
from ..models import build_model
from ..train import evaluate, fit
from ..train import threads as scoped_threads  # (the name `threads` is a parameter here)
from . import load_record, rerun_check
from ..validation import Instance, Interval, ListOf, Module, PositiveInt, Seed, Tensor, validate_params


SEED = 0
FC_LAYER = "fc1"
FC_RANKS = [5, 10, 20, 40, 80]
FC_EPOCHS = 5
MIN_PARAM_RATIO = 4.0          # the chapter's criterion: ≥ 4× fewer fc1 parameters …
TOLERANCE = 0.5                # … within 0.5 accuracy points of the dense model
LR_FACTORS = [0.1, 1.0]        # fine-tuning lr grid, × the zoo model's learning rate

CONV_LAYERS = ["conv1", "conv2"]
CONV_OUT_HW = [(24, 24), (8, 8)]           # LeNet-5 output sizes of conv1 and conv2 (28×28 input)
CONV_SPEEDUPS = [2, 3, 4, 5]               # Zhang et al.'s table: budgets 1/2 … 1/5 of the conv MACs
HEADLINE_SPEEDUP = 4                       # VGG-16 4× faster (Zhang et al., TPAMI 2016)
CONV_METHODS = {"uniform": "uniform", "selected": "energy"}   # report key → select_ranks method
CONV_IMAGES = 1000                         # training images whose responses fit the decomposition
CONV_EPOCHS = 3

TT_IN = (4, 7, 7, 4)                       # 784 = (4·7)·(7·4): image row (coarse, fine), column
TT_OUT = (3, 5, 5, 4)                      # 300
TT_RANKS = [4, 8]
TT_LRS = [0.01, 0.03]
TT_EPOCHS = 20


# ------------------------------------------------------------------ choices
@validate_params(runs=ListOf(Instance(dict, "a run dict")), key=Instance(str, "a key of the runs"))
def best_run(runs: Sequence[dict], key: str = "val") -> dict:
    """The run with the highest ``run[key]``; the first one wins a tie (grids list the cheaper first).

    Behind chapter 07, "Low-rank approximation".
    """
    return max(runs, key=lambda r: r[key])   # max keeps the first of equal keys


@validate_params(rows=ListOf(Instance(dict, "a dict with rank, param_ratio and val_ft")),
                 dense_val=Interval(float, 0, 100), min_ratio=Interval(float, 0, None, closed="neither"),
                 tolerance=Interval(float, 0, None))
def choose_rank(rows: Sequence[dict], dense_val: float, *, min_ratio: float = MIN_PARAM_RATIO,
                tolerance: float = TOLERANCE) -> tuple[dict, bool]:
    """The reported fc rank, chosen on validation accuracy only.

    ``rows``: one dict per rank with ``rank``, ``param_ratio`` (dense ÷
    factorized layer parameters) and ``val_ft`` (fine-tuned validation
    accuracy, %). Among the ranks with ``param_ratio ≥ min_ratio``, the
    smallest whose ``val_ft ≥ dense_val − tolerance``; returns ``(row, True)``.
    If none qualifies, the qualifying-size rank with the best ``val_ft``
    (the smaller one on a tie) and ``False``.

    >>> rows = [{"rank": 5, "param_ratio": 41.2, "val_ft": 90.0},
    ...         {"rank": 20, "param_ratio": 10.7, "val_ft": 94.4},
    ...         {"rank": 80, "param_ratio": 2.7, "val_ft": 94.8}]
    >>> choose_rank(rows, 94.8)
    ({'rank': 20, 'param_ratio': 10.7, 'val_ft': 94.4}, True)
    >>> choose_rank(rows, 95.2)[1]
    False

    Taught in chapter 07, "Low-rank approximation".
    """
    small = sorted((r for r in rows if r["param_ratio"] >= min_ratio), key=lambda r: r["rank"])
    if not small:
        raise ValueError(f"choose_rank: rows must contain a rank with param_ratio ≥ {min_ratio}; got {rows!r}.")
    for row in small:
        if row["val_ft"] >= dense_val - tolerance - 1e-9:
            return row, True
    return best_run(small, "val_ft"), False


# ------------------------------------------------------------------ building
@validate_params(model=Module(), names=ListOf(Instance(str, "a conv layer name")),
                 out_hw=ListOf(ListOf(PositiveInt())))
def conv_macs(model: nn.Module, names: Sequence[str] = CONV_LAYERS, out_hw=CONV_OUT_HW) -> int:
    """MACs per image of the conv layers ``names`` of ``model``, dense or decomposed (bias excluded).

    Behind chapter 07, "Low-rank approximation".
    """
    total = 0
    for name, (h, w) in zip(names, out_hw):
        for m in model.get_submodule(name).modules():
            if isinstance(m, nn.Conv2d):
                total += m.weight.numel() * h * w
    return total


@validate_params(model=Module(), images=Tensor(ndim=4), names=ListOf(Instance(str, "a conv layer name")),
                 seed=Seed())
def conv_spectra(model: nn.Module, images: torch.Tensor, names: Sequence[str] = CONV_LAYERS,
                 *, seed: int = SEED) -> list[torch.Tensor]:
    """Response-energy spectra (eigenvalues, descending) of each conv, on ``images`` (model inputs).

    Taught in chapter 07, "Low-rank approximation".
    """
    return [lowrank.response_spectrum(model.get_submodule(n), lowrank.layer_inputs(model, n, images), seed=seed)
            for n in names]


@validate_params(model=Module(), ranks=ListOf(PositiveInt()), images=Tensor(ndim=4),
                 names=ListOf(Instance(str, "a conv layer name")), seed=Seed())
def decompose_convs(model: nn.Module, ranks: Sequence[int], images: torch.Tensor,
                    names: Sequence[str] = CONV_LAYERS, *, seed: int = SEED) -> nn.Module:
    """A copy of ``model`` with each conv in ``names`` decomposed to its rank.

    Every layer is fitted to its responses on ``images`` as they reach it in
    the *original* model (Zhang et al.'s linear reconstruction, layer by
    layer, without their asymmetric correction).

    Behind chapter 07, "Low-rank approximation".
    """
    if len(ranks) != len(names):
        raise ValueError(f"decompose_convs: ranks must have one entry per conv in {list(names)}; got {ranks!r}.")
    new = copy.deepcopy(model)
    for name, rank in zip(names, ranks):
        inputs = lowrank.layer_inputs(model, name, images)             # from the original model
        pair = lowrank.factorize_conv_data(model.get_submodule(name), inputs, rank, seed=seed)
        parent, _, attr = name.rpartition(".")
        setattr(new.get_submodule(parent) if parent else new, attr, pair)
    return new


@validate_params(rank=PositiveInt(), seed=Seed())
def tt_model(rank: int, *, seed: int = SEED) -> nn.Module:
    """A freshly initialised LeNet-300-100 whose fc1 is a TTLinear (in TT_IN, out TT_OUT, ``rank``).

    Taught in chapter 07, "Low-rank approximation".
    """
    model = build_model("lenet300", seed=seed)
    model.fc1 = lowrank.TTLinear(TT_IN, TT_OUT, rank, generator=torch.Generator().manual_seed(seed))
    return model


@validate_params(module=Module(), batch_size=PositiveInt(), repeats=PositiveInt(),
                 threads=PositiveInt(optional=True), seed=Seed())
@torch.inference_mode()
def forward_ms(module: nn.Module, batch_size: int, *, repeats: int = 7, threads: int | None = 1,
               seed: int = SEED) -> float:
    """Best-of-``repeats`` CPU time (ms) of ``module`` on a batch of ``batch_size`` random inputs.

    Each repeat times enough back-to-back calls to last ~10 ms and divides,
    so one call of a few microseconds is still measured well. ``threads``:
    torch's intra-op threads during the measurement (restored afterwards);
    the default, one, keeps the numbers meaningful on a shared machine, where
    a multi-threaded kernel waits for its slowest thread at every operation
    (small layers like LeNet's gain little from more threads anyway).
    ``None`` leaves torch's setting alone.

    Taught in chapter 07, "Low-rank approximation".
    """
    x = torch.randn(batch_size, module.in_features, generator=torch.Generator().manual_seed(seed))
    was_training = module.training
    module.eval()
    try:
        with scoped_threads(threads or torch.get_num_threads()):
            start = time.perf_counter()
            module(x)                                                        # warm-up
            number = max(1, math.ceil(0.01 / max(time.perf_counter() - start, 1e-7)))
            best = math.inf
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(number):
                    module(x)
                best = min(best, (time.perf_counter() - start) / number)
    finally:
        module.train(was_training)
    return best * 1e3


def _splits():
    return tuple(load_mnist(s, source="embedded") for s in ("train", "val", "test"))


def _fine_tune(model: nn.Module, train, val, lr: float, epochs: int) -> dict:
    history = fit(model, train, epochs=epochs, lr=lr, val=val, keep_best=True, seed=SEED, show_progress=False)
    return {"lr": lr, "val": history.best_val_acc, "best_epoch": history.best_epoch}


def _grid_fine_tune(make, train, val, lrs, epochs) -> tuple[nn.Module, dict, list[dict]]:
    """Fine-tune a fresh ``make()`` at every lr; return the best model (on val), its run and all runs."""
    runs, best = [], None
    for lr in lrs:
        model = make()
        run = _fine_tune(model, train, val, lr, epochs)
        runs.append(run)
        if best is None or run["val"] > best[1]["val"]:
            best = (model, run)
    return best[0], best[1], runs


# ------------------------------------------------------------------ stages
def _fc_svd(splits) -> dict:
    train, val, test = splits
    dense = zoo.load("lenet300")
    lin = dense.get_submodule(FC_LAYER)
    lrs = [zoo.info("lenet300")["lr"] * f for f in LR_FACTORS]
    rows = []
    for rank in FC_RANKS:
        costs = lowrank.linear_costs(lin.in_features, lin.out_features, rank)
        no_ft = lowrank.replace_linear(dense, FC_LAYER, rank)
        model, run, runs = _grid_fine_tune(lambda: lowrank.replace_linear(dense, FC_LAYER, rank),
                                           train, val, lrs, FC_EPOCHS)
        rows.append({"rank": rank, "params": costs["lowrank_params"], "macs": costs["lowrank_macs"],
                     "param_ratio": round(costs["dense_params"] / costs["lowrank_params"], 2),
                     "val_no_ft": evaluate(no_ft, val), "test_no_ft": evaluate(no_ft, test),
                     "lr": run["lr"], "best_epoch": run["best_epoch"], "val_ft": run["val"],
                     "test_ft": evaluate(model, test), "grid": runs})
        print(f"fc1 rank {rank}: val {rows[-1]['val_no_ft']} → {run['val']} (lr {run['lr']:g}), "
              f"test {rows[-1]['test_ft']}")
    dense_costs = lowrank.linear_costs(lin.in_features, lin.out_features, 1)
    dense_val = evaluate(dense, val)
    chosen, met = choose_rank(rows, dense_val)
    return {"layer": FC_LAYER, "ranks": FC_RANKS, "epochs": FC_EPOCHS, "lr_grid": lrs,
            "dense": {"val": dense_val, "test": evaluate(dense, test),
                      "params": dense_costs["dense_params"], "macs": dense_costs["dense_macs"]},
            "rows": rows,
            "rule": (f"smallest rank with ≥ {MIN_PARAM_RATIO:g}× fewer {FC_LAYER} parameters whose fine-tuned "
                     f"validation accuracy is within {TOLERANCE} points of the dense model's"),
            "chosen": {"rank": chosen["rank"], "lr": chosen["lr"], "best_epoch": chosen["best_epoch"],
                       "param_ratio": chosen["param_ratio"],
                       "val": chosen["val_ft"], "test": chosen["test_ft"], "target_met": met}}


def _conv(splits) -> dict:
    train, val, test = splits
    dense = zoo.load("lenet5")
    images = train.x[:CONV_IMAGES]
    convs = [dense.get_submodule(n) for n in CONV_LAYERS]
    spectra = conv_spectra(dense, images)
    dense_macs = conv_macs(dense)
    lrs = [zoo.info("lenet5")["lr"] * f for f in LR_FACTORS]
    rows = []
    for speedup in CONV_SPEEDUPS:
        for key, method in CONV_METHODS.items():
            ranks = lowrank.select_ranks(convs, 1 / speedup, CONV_OUT_HW, method=method, spectra=spectra)
            no_ft = decompose_convs(dense, ranks, images)
            model, run, runs = _grid_fine_tune(lambda: decompose_convs(dense, ranks, images),
                                               train, val, lrs, CONV_EPOCHS)
            macs = conv_macs(no_ft)
            rows.append({"target_speedup": speedup, "method": key, "ranks": ranks, "macs": macs,
                         "speedup": round(dense_macs / macs, 2),
                         "val_no_ft": evaluate(no_ft, val), "test_no_ft": evaluate(no_ft, test),
                         "lr": run["lr"], "best_epoch": run["best_epoch"], "val_ft": run["val"],
                         "test_ft": evaluate(model, test), "grid": runs})
            print(f"conv {speedup}× {key} {ranks}: test {rows[-1]['test_no_ft']} → {rows[-1]['test_ft']}")
    return {"layers": CONV_LAYERS, "out_hw": [list(hw) for hw in CONV_OUT_HW],
            "full_ranks": [min(c.out_channels, c.weight[0].numel()) for c in convs],
            "fit": f"factorize_conv_data on the first {CONV_IMAGES} training images, seed {SEED}",
            "spectrum": "response_spectrum (eigenvalues of the responses' covariance) on the same images",
            "epochs": CONV_EPOCHS, "lr_grid": lrs, "headline_speedup": HEADLINE_SPEEDUP,
            "dense": {"val": evaluate(dense, val), "test": evaluate(dense, test), "macs": dense_macs},
            "rows": rows}


def _tt(splits) -> dict:
    train, val, test = splits
    runs, best = [], None
    for rank in TT_RANKS:
        for lr in TT_LRS:
            model = tt_model(rank)
            run = {"rank": rank, **_fine_tune(model, train, val, lr, TT_EPOCHS)}
            runs.append(run)
            print(f"TT rank {rank}, lr {lr:g}: val {run['val']} (epoch {run['best_epoch']})")
            if best is None or run["val"] > best[1]["val"]:
                best = (model, run)
    model, chosen = best
    dense = zoo.load("lenet300")
    dense_costs = lowrank.linear_costs(784, 300, 1)
    return {"in_factors": list(TT_IN), "out_factors": list(TT_OUT), "rank_grid": TT_RANKS, "lr_grid": TT_LRS,
            "epochs": TT_EPOCHS, "grid": runs, "rank": chosen["rank"], "lr": chosen["lr"],
            "best_epoch": chosen["best_epoch"],
            "params_dense": dense_costs["dense_params"], "params_tt": sum(p.numel() for p in model.fc1.parameters()),
            "macs_dense": dense_costs["dense_macs"], "macs_tt": lowrank.tt_macs(TT_IN, TT_OUT, chosen["rank"]),
            "val_dense": evaluate(dense, val), "acc_dense": evaluate(dense, test),
            "val_tt": chosen["val"], "acc_tt": evaluate(model, test)}


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Run the three experiments; ``out_dir`` is unused (no checkpoints), kept for the common interface.

    Taught in chapter 07, "Low-rank approximation".
    """
    splits = _splits()
    return {"seed": SEED, "data": "embedded MNIST subset: train 3,500 · val 500 · test 1,000",
            "selection": "hyperparameters and epochs chosen on the validation split; test evaluated once per "
                         "configuration",
            "fc_svd": _fc_svd(splits), "conv": _conv(splits), "tt": _tt(splits)}


# ------------------------------------------------------------------ reproduce
def _headline_rows(conv: dict) -> dict:
    return {row["method"]: row for row in conv["rows"] if row["target_speedup"] == conv["headline_speedup"]}


@validate_params(record=Instance(dict, "a record dict (load_record(...))", optional=True))
def lowrank_report(record: dict | None = None) -> dict:
    """The chapter's headline numbers (``effdl reproduce lowrank --json``): the record's, checked by a re-run.

    The accuracies are the record's (the same on every machine): the fc1
    rank's fine-tune, the uniform and selected conv decompositions at the
    headline speedup, the TT network at its chosen rank and lr. ``live``
    re-trains each of them here, seeded, and compares its test accuracy with
    the record's (:func:`effdl.precompute.rerun_check`). Each run stops at its
    recorded best epoch: training is seeded and the learning rate constant,
    so the first ``best_epoch`` epochs are those of the record's longer run.
    Parameter and MAC counts are exact; the dense fc1 and the TT layer are
    timed live (:func:`forward_ms`: one thread, best of several runs, ms per
    forward call). ``record`` defaults to ``load_record("lowrank")``.

    Behind chapter 07, "Low-rank approximation".
    """
    if record is None:
        record = load_record("lowrank")
    train, val, test = _splits()
    recorded, live = {}, {}

    fc = record["fc_svd"]
    dense300 = zoo.load("lenet300")
    rank, lr = fc["chosen"]["rank"], fc["chosen"]["lr"]
    model = lowrank.replace_linear(dense300, FC_LAYER, rank)
    _fine_tune(model, train, val, lr, fc["chosen"]["best_epoch"])
    costs = lowrank.linear_costs(784, 300, rank)
    fc_out = {"layer": FC_LAYER, "rank": rank,
              "param_ratio": round(costs["dense_params"] / costs["lowrank_params"], 2),
              "acc_dense": fc["dense"]["test"], "acc_lowrank": fc["chosen"]["test"]}
    recorded["fc_svd"], live["fc_svd"] = fc["chosen"]["test"], evaluate(model, test)

    cv = record["conv"]
    dense5 = zoo.load("lenet5")
    images = train.x[:CONV_IMAGES]
    dense_macs = conv_macs(dense5)
    conv_out = {"layer": "+".join(cv["layers"]), "target_speedup": cv["headline_speedup"],
                "acc_dense": cv["dense"]["test"]}
    for key, row in _headline_rows(cv).items():
        model = decompose_convs(dense5, row["ranks"], images)
        recorded[f"conv_{key}_no_ft"], live[f"conv_{key}_no_ft"] = row["test_no_ft"], evaluate(model, test)
        _fine_tune(model, train, val, row["lr"], row["best_epoch"])
        recorded[f"conv_{key}"], live[f"conv_{key}"] = row["test_ft"], evaluate(model, test)
        conv_out[key] = {"ranks": row["ranks"], "macs": conv_macs(model),
                         "speedup": round(dense_macs / conv_macs(model), 2),
                         "acc_no_ft": row["test_no_ft"], "acc_lowrank": row["test_ft"]}

    tt = record["tt"]
    model = tt_model(tt["rank"])
    _fine_tune(model, train, val, tt["lr"], tt["best_epoch"])
    tt_out = {"rank": tt["rank"], "params_dense": tt["params_dense"],
              "params_tt": sum(p.numel() for p in model.fc1.parameters()),
              "acc_dense": tt["acc_dense"], "acc_tt": tt["acc_tt"]}
    recorded["tt"], live["tt"] = tt["acc_tt"], evaluate(model, test)
    for batch in (1, 100):
        tt_out[f"ms_{batch}"] = {"dense": round(forward_ms(dense300.fc1, batch), 4),
                                 "tt": round(forward_ms(model.fc1, batch), 4)}
    check = rerun_check(recorded, live)
    return {"fc_svd": fc_out, "conv": conv_out, "tt": tt_out, "live": check,
            "matches_record": check["matches_record"]}
