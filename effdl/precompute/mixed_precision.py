"""Chapter 12's precomputed mixed-precision runs (``effdl precompute mixed_precision``).

LeNet-300-100 trained from scratch in fp32, in emulated fp16 with fp32
master weights and dynamic loss scaling, and in pure fp16 (weights,
momentum and updates rounded to fp16), each for :data:`SEEDS`, with the same
recipe (:data:`RECIPE`: SGD + momentum, the zoo's learning rate for this
model, cosine decay). Nothing is selected: every run's final model is
evaluated once on the test split, so the three precisions are compared on
equal terms, as mean ± std over the seeds. The record keeps each run's
curves (validation accuracy and training loss per epoch, the lost-update
fraction of pure fp16, the loss scale of the seed-0 master run) for the
chapter's figures. A second, smaller experiment (:data:`SMALL_UPDATES`)
trains with a learning rate small enough that most pure-fp16 updates round
away. No checkpoints: ``train_mixed`` rebuilds any run, seeded.
"""
from __future__ import annotations

import os
import statistics

from .. import zoo
from ..data import load_mnist
from ..train import threads
from ..training.mixed_precision import LossScaler, MODES, scaled_underflow, train_mixed, weight_gradients
from . import load_record, rerun_check
from ..validation import Instance, Options, PositiveInt, Seed, validate_params


SEEDS = [0, 1, 2]
# Where pure fp16 hurts: a small constant learning rate and no momentum, so
# that most updates lr·g are below half an ulp of their weight (seed 0 only).
SMALL_UPDATES = {"arch": "lenet300", "epochs": 5, "lr": 0.003, "momentum": 0.0, "batch_size": 64,
                 "schedule": "constant", "loss_scale": "dynamic", "growth_interval": 200}
RECIPE = {"arch": "lenet300", "epochs": 10, "lr": 0.03, "momentum": 0.9, "batch_size": 64, "schedule": "cosine",
          "loss_scale": "dynamic", "growth_interval": 200}


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Train every (mode, seed); ``out_dir`` is unused (no checkpoints), kept for the common interface.

    Taught in chapter 12, "Mixed precision".
    """
    with threads(1):                  # one thread: the same arithmetic order on every machine
        return _run(out_dir)


def _run(out_dir) -> dict:
    runs: dict = {m: {} for m in MODES}
    for mode in MODES:
        for seed in SEEDS:
            r = train_mixed(mode, seed=seed, **RECIPE)
            row = {"test_acc": r.test_acc, "val_acc": r.val_acc, "train_loss": [round(x, 5) for x in r.train_loss],
                   "skipped": r.skipped, "final_scale": r.scales[-1] if r.scales else 1.0}
            if mode == "fp16_pure":
                row["lost_update_fraction"] = [round(x, 4) for x in r.lost_update_fraction]
            if mode == "fp16_master" and seed == SEEDS[0]:
                row["scales"] = r.scales
            runs[mode][str(seed)] = row
    summary = {}
    for mode in MODES:
        accs = [runs[mode][str(s)]["test_acc"] for s in SEEDS]
        summary[mode] = {"mean": round(statistics.mean(accs), 3), "std": round(statistics.stdev(accs), 3)}
    small = {}
    for mode in MODES:
        r = train_mixed(mode, seed=SEEDS[0], **SMALL_UPDATES)
        small[mode] = {"test_acc": r.test_acc, "val_acc": r.val_acc, "train_loss": [round(x, 5) for x in r.train_loss],
                       "lost_update_fraction": [round(x, 4) for x in r.lost_update_fraction]}
    return {"recipe": RECIPE, "seeds": SEEDS, "threads": 1,
            "small_updates": {"recipe": SMALL_UPDATES, "runs": small},
            "data": "embedded MNIST subset: train 3,500 · val 500 · test 1,000",
            "selection": "none: same recipe for every precision, final epoch evaluated once on test",
            "runs": runs, "summary": summary}


@validate_params(arch=Options(("lenet300", "lenet5")), n_batches=PositiveInt(), seed=Seed())
def underflow_report(*, arch: str = "lenet300", n_batches: int = 32, seed: int = 0) -> dict:
    """Fp16 underflow of the zoo model's real weight gradients, without and with dynamic loss scaling.

    The scaler starts at GradScaler's 2^16 and doubles after every good step
    (``growth_interval=1``, instead of 2000) so that it finds its level
    within these few batches; the underflow counts only the steps it did not
    skip.

    Behind chapter 12, "Mixed precision".
    """
    grads = weight_gradients(zoo.load(arch), load_mnist("train", source="embedded"), n_batches=n_batches, seed=seed)
    run = scaled_underflow(grads, LossScaler(2.0 ** 16, growth_interval=1))
    return {"grad_underflow_fp16": run["underflow_unscaled"], "grad_underflow_fp16_scaled": run["underflow_scaled"],
            "max_scale_used": run["max_scale_used"], "skipped_of": [run["skipped"], n_batches]}


@validate_params()
def mixed_precision_report() -> dict:
    """The chapter's headline numbers (``effdl reproduce mixed-precision --json``).

    The accuracies are the record's (``effdl.precompute.mixed_precision``):
    each precision's mean test accuracy over the record's seeds — the same on
    every machine. ``live`` re-trains seed 0 here in all three precisions, on
    one thread as the record did, and compares it with the record's seed 0
    (:func:`effdl.precompute.rerun_check`). The fp16 underflow of the zoo
    LeNet-300-100's gradients is measured live (a count, not a training result).

    Behind chapter 12, "Mixed precision".
    """
    record = load_record("mixed_precision")
    with threads(1):  # the record's setting (and small layers run faster on one thread)
        out = underflow_report()
        runs = {mode: train_mixed(mode, seed=0, **record["recipe"]) for mode in MODES}
    seed0 = {m: record["runs"][m]["0"] for m in MODES}
    check = rerun_check({m: seed0[m]["test_acc"] for m in MODES}, {m: runs[m].test_acc for m in MODES})
    summary = record["summary"]
    out.update(acc_fp32=summary["fp32"]["mean"], acc_fp16_master_fp32=summary["fp16_master"]["mean"],
               acc_fp16_pure=summary["fp16_pure"]["mean"], seeds=len(record["seeds"]),
               std={m: summary[m]["std"] for m in MODES},
               lost_update_fraction_pure=seed0["fp16_pure"]["lost_update_fraction"][-1],
               skipped_steps={m: seed0[m]["skipped"] for m in MODES},
               live={"seed": 0, **check,
                     "lost_update_fraction_pure": round(runs["fp16_pure"].lost_update_fraction[-1], 4),
                     "skipped_steps": {m: r.skipped for m, r in runs.items()}},
               matches_record=check["matches_record"])
    return out
