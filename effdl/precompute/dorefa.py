"""Chapter 06's measured DoReFa point: LeNet-5 fine-tuned with low-bit weights, activations and gradients.

``effdl precompute dorefa`` starts from the zoo's trained LeNet-5 and
fine-tunes one copy per bit-width setting (:data:`CONFIGS`, written
``(k_W, k_A, k_G)``, 32 meaning floating point) with
:func:`effdl.dorefa.dorefa_copy`: the first and last layer keep float
weights, as in the paper. The learning rate and the epoch are chosen on the
validation split; the test split is evaluated once per setting. One thread,
seeded: about three minutes.
"""
from __future__ import annotations

import os
import time

import torch

from .. import dorefa, zoo
from ..data import load_mnist
from ..train import evaluate, fit
from ..validation import Instance, validate_params
from . import load_record

SEED = 0
EPOCHS = 4
LR_GRID = [3e-4, 1e-3]          # Adam
BATCH_SIZE = 64
# (k_W, k_A, k_G): float, the weights alone, weights and activations, and the paper's headline 1-2-6
CONFIGS = [(32, 32, 32), (1, 32, 32), (1, 2, 32), (1, 2, 6), (2, 2, 6), (1, 1, 32)]


def _key(cfg) -> str:
    return "W{}A{}G{}".format(*cfg)


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Fine-tune one LeNet-5 per setting of :data:`CONFIGS`; return the record.

    Taught in chapter 06, "Binary and ternary nets".
    """
    torch.set_num_threads(1)
    train, val, test = (load_mnist(s, source="embedded") for s in ("train", "val", "test"))
    base = zoo.load("lenet5")
    record = {"seed": SEED, "data": "embedded MNIST subset: train 3,500 · val 500 · test 1,000",
              "model": "zoo lenet5, fine-tuned", "optimizer": "adam", "batch_size": BATCH_SIZE,
              "epochs_max": EPOCHS, "lr_grid": LR_GRID,
              "selection": "learning rate and epoch chosen on the validation split; test evaluated once",
              "layer_policy": "conv1 float (weights, input, gradient); conv2 and fc1 k_W-bit weights, k_A-bit "
                              "inputs, k_G-bit output gradients; fc2 float weights and gradient, k_A-bit input",
              "fp_test": evaluate(base, test), "configs": {}}
    for cfg in CONFIGS:
        start, best = time.perf_counter(), None
        for lr in LR_GRID:
            model = dorefa.dorefa_copy(base, *cfg, seed=SEED)
            hist = fit(model, train, epochs=EPOCHS, lr=lr, optimizer="adam", batch_size=BATCH_SIZE, val=val,
                       keep_best=True, seed=SEED, show_progress=False)
            if best is None or hist.best_val_acc > best[1].best_val_acc:
                best = (model, hist, lr)
        model, hist, lr = best
        row = {"n_bits_weight": cfg[0], "n_bits_act": cfg[1], "n_bits_grad": cfg[2], "lr": lr,
               "best_epoch": hist.best_epoch, "val": hist.best_val_acc, "test": evaluate(model, test),
               "seconds": round(time.perf_counter() - start, 1)}
        record["configs"][_key(cfg)] = row
        print(f"DoReFa {_key(cfg)}: lr {lr:g}, epoch {row['best_epoch']}, val {row['val']}, test {row['test']}",
              flush=True)
    return record


@validate_params(record=Instance(dict, "a record dict (load_record('dorefa'))", optional=True))
def dorefa_table(record: dict | None = None) -> list[dict]:
    """The record's settings as table rows: bit widths of weights, activations and gradients, test accuracy.

    Taught in chapter 06, "Binary and ternary nets".
    """
    record = load_record("dorefa") if record is None else record
    return [{"setting": key, **{k: row[k] for k in ("n_bits_weight", "n_bits_act", "n_bits_grad", "lr",
                                                     "best_epoch", "val", "test")}}
            for key, row in record["configs"].items()]
