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

import statistics

import torch

from ..training.mixed_precision import MODES, train_mixed

SEEDS = [0, 1, 2]
# Where pure fp16 hurts: a small constant learning rate and no momentum, so
# that most updates lr·g are below half an ulp of their weight (seed 0 only).
SMALL_UPDATES = {"arch": "lenet300", "epochs": 5, "lr": 0.003, "momentum": 0.0, "batch_size": 64,
                 "schedule": "constant", "loss_scale": "dynamic", "growth_interval": 200}
RECIPE = {"arch": "lenet300", "epochs": 10, "lr": 0.03, "momentum": 0.9, "batch_size": 64, "schedule": "cosine",
          "loss_scale": "dynamic", "growth_interval": 200}


def run(out_dir) -> dict:
    """Train every (mode, seed); ``out_dir`` is unused (no checkpoints), kept for the common interface."""
    torch.set_num_threads(1)          # one thread: the same arithmetic order on every machine
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
