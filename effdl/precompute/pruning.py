"""Chapter 2's precomputed pruning experiments (``effdl precompute pruning``).

1. LeNet-300-100 and LeNet-5 pruned to 8 % of their weights (12×) by
   iterative prune → retrain, as Han et al. (NIPS 2015). A small grid —
   schedule × retraining learning rate — is searched on the validation
   split; the chosen model is evaluated once on the test split.
2. The row-LSTM pruned to 90 % and 95 % sparsity the same way.
3. Accuracy vs fraction pruned for LeNet-300-100, three curves: prune only,
   prune + retrain (one shot to each sparsity), iterative prune + retrain.

Checkpoints are saved with pruning made permanent (zeros in the weights);
``effdl.pruning.masks_from_zeros`` recovers the masks.
"""
from __future__ import annotations

import os
from .. import pruning, zoo
from ..data import load_mnist
from ..train import evaluate, progress
from ..validation import Instance, validate_params


SCHEDULES = {  # increasing sparsity targets; the last is the goal
    "lenet": {"4 steps": [0.5, 0.75, 0.87, 0.92], "7 steps": [0.3, 0.5, 0.65, 0.75, 0.84, 0.89, 0.92]},
    "lstm90": {"3 steps": [0.5, 0.75, 0.9], "5 steps": [0.3, 0.5, 0.7, 0.82, 0.9]},
    "lstm95": {"4 steps": [0.5, 0.75, 0.9, 0.95], "6 steps": [0.3, 0.5, 0.7, 0.82, 0.9, 0.95]},
}
LR_FACTORS = [0.1, 1.0]        # × the dense model's learning rate; Han et al. use 0.1
EPOCHS_PER_STEP = 10
CURVE_SPARSITIES = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98]
SEED = 0


def _search(arch: str, schedules: dict, splits, out_dir, name: str) -> dict:
    """Grid over schedule × lr factor, chosen on validation; save the winner as ``name``."""
    train, val, test = splits
    base_lr = zoo.info(arch)["lr"]
    runs, best = [], None
    for label, sparsities in schedules.items():
        for factor in LR_FACTORS:
            model = zoo.load(arch)
            steps = pruning.iterative_prune(model, train, val, sparsities, epochs=EPOCHS_PER_STEP,
                                            lr=base_lr * factor, scope="global", seed=SEED)
            run = {"schedule": label, "sparsities": sparsities, "lr": base_lr * factor,
                   "val_acc": steps[-1].acc_retrained,
                   "steps": [vars(s) for s in steps]}
            runs.append(run)
            if best is None or run["val_acc"] > best[1]["val_acc"]:
                best = (model, run)
    model, chosen = best
    pruning.remove_masks(model)
    zoo.save_checkpoint(model, name, arch, out_dir)
    dense = zoo.load(arch)
    return {"arch": arch, "params": pruning.nonzero_parameters(model),
            "kept_fraction": pruning.kept_fraction(model),
            "acc_dense": evaluate(dense, test), "acc_pruned": evaluate(model, test),
            "val_dense": evaluate(dense, val), "val_pruned": chosen["val_acc"],
            "chosen": {k: chosen[k] for k in ("schedule", "lr")}, "grid": runs,
            "layers": [{"name": r.name, "numel": r.numel, "nonzeros": r.nonzeros,
                        "dense_bytes": r.dense_bytes, "sparse_bytes": r.sparse_bytes}
                       for r in pruning.sparsity_report(model)]}


def _curves(splits, lr: float) -> dict:
    """Accuracy (test) vs sparsity for LeNet-300-100: prune only, one-shot + retrain, iterative."""
    train, val, test = splits
    dense = zoo.load("lenet300")
    prune_only = [evaluate(pruning.pruned_copy(dense, sparsity=s, scope="global"), test)
                  for s in CURVE_SPARSITIES]
    retrained = []
    for s in progress(CURVE_SPARSITIES, desc="one-shot"):
        model = zoo.load("lenet300")
        pruning.iterative_prune(model, train, val, [s], epochs=EPOCHS_PER_STEP, lr=lr, scope="global", seed=SEED)
        retrained.append(evaluate(model, test))
    model = zoo.load("lenet300")
    iterative = []
    for i, s in enumerate(CURVE_SPARSITIES):
        pruning.iterative_prune(model, train, val, [s], epochs=EPOCHS_PER_STEP, lr=lr, scope="global",
                                seed=SEED + i)
        iterative.append(evaluate(model, test))
    return {"model": "lenet300", "sparsity": CURVE_SPARSITIES, "acc_dense": evaluate(dense, test),
            "prune_only": prune_only, "prune_retrain": retrained, "iterative": iterative, "lr": lr,
            "epochs_per_step": EPOCHS_PER_STEP}


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Prune both LeNets by the chosen schedules (chosen on validation) into ``out_dir``; the curves of chapter 2.

    Taught in chapter 02, "Pruning".
    """
    splits = tuple(load_mnist(s, source="embedded") for s in ("train", "val", "test"))
    record = {"seed": SEED, "epochs_per_step": EPOCHS_PER_STEP, "lr_factors": LR_FACTORS,
              "selection": "best validation accuracy at the final sparsity; test evaluated once"}
    for arch in ("lenet300", "lenet5"):
        record[arch] = _search(arch, SCHEDULES["lenet"], splits, out_dir, f"{arch}_pruned")
        print(f"{arch}: kept {record[arch]['kept_fraction']:.3f}, test {record[arch]['acc_dense']} → "
              f"{record[arch]['acc_pruned']}")
    for key in ("lstm90", "lstm95"):
        record[key] = _search("lstm", SCHEDULES[key], splits, out_dir, f"lstm_pruned{key[-2:]}")
        print(f"{key}: kept {record[key]['kept_fraction']:.3f}, test {record[key]['acc_dense']} → "
              f"{record[key]['acc_pruned']}")
    record["curves"] = _curves(splits, record["lenet300"]["chosen"]["lr"])
    return record
