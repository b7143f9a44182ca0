"""Chapter 17's three MNIST nets, trained once (``effdl precompute efficient_blocks``).

:class:`effdl.models.ConvNet` (standard 3×3 convs), :class:`~effdl.models.FireNet`
(SqueezeNet's fire modules) and :class:`~effdl.models.SeparableNet` (MobileNet's
depthwise-separable convs) share one skeleton (stem, three blocks, global
average pool, fc), so they differ only in the block. Each is trained from the
same seed on the train split with Adam for :data:`EPOCHS` epochs at each
learning rate of :data:`LR_GRID`, keeping its best epoch on the **validation**
split; the learning rate with the best validation accuracy is kept (the
smaller on a tie) and only then evaluated once on the **test** split. The
record also holds each net's parameters and MACs (``effdl.architectures``
specs, which the tests check against torch) and its CPU time per image at
batch 1 on one thread (:func:`cpu_ms_per_image`: the three nets take turns in
each of :data:`TIMING_ROUNDS` rounds, the median round is kept; a property of
the machine that wrote it, unlike the accuracies). Checkpoints:
``data/zoo/efficient_blocks_{standard,fire,depthwise_separable}.pt``.
"""
from __future__ import annotations

import os
import statistics
import time

import torch
from torch import nn

from .. import zoo
from ..architectures import (Conv2d, count_macs, count_params, depthwise_separable, get_architecture,
                             layer_table)
from ..data import load_mnist
from ..models import build_model
from ..train import evaluate, fit, threads
from . import load_record
from ..validation import Instance, Module, PositiveInt, check_part, validate_params


SEED = 0
# report key → effdl.models / effdl.architectures name
NETS = {"standard": "mnist_conv", "fire": "mnist_fire", "depthwise_separable": "mnist_separable"}
EPOCHS = 15
LR_GRID = [0.003, 0.01]       # Adam; the usual 1e-3 … 1e-2 range for small batch-normed CNNs
BATCH_SIZE = 64
TIMING_ROUNDS = 101
TIMING_CALLS = 5              # forward passes per net and round
CHECKPOINT = "efficient_blocks_{}"
# MobileNet-224's 13 depthwise-separable layers (Howard et al. 2017, Table 1):
# (in channels, out channels, stride of the depthwise conv, input height = width)
MOBILENET_BODY = [(32, 64, 1, 112), (64, 128, 2, 112), (128, 128, 1, 56), (128, 256, 2, 56), (256, 256, 1, 28),
                  (256, 512, 2, 28), *[(512, 512, 1, 14)] * 5, (512, 1024, 2, 14), (1024, 1024, 1, 7)]


@validate_params()
def mobilenet_body_reduction() -> float:
    """MACs of MobileNet-224's 13 separable layers done as standard 3×3 convs ÷ done as separable convs.

    Counted with ``effdl.architectures`` specs on the layer shapes of the
    MobileNet paper's Table 1 (the first, standard conv and the fc layer are
    left out: they are the same in both).

    Taught in chapter 17, "Designing efficient models".
    """
    standard = separable = 0
    for in_ch, out_ch, stride, size in MOBILENET_BODY:
        shape = (in_ch, size, size)
        standard += count_macs(Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), shape)
        separable += count_macs(depthwise_separable(in_ch, out_ch, 3, stride), shape)
    return standard / separable


@validate_params(models=Instance(dict, "a dict of name → torch.nn.Module"), rounds=PositiveInt(),
                 calls=PositiveInt())
def cpu_ms_per_image(models: dict[str, nn.Module], *, rounds: int = TIMING_ROUNDS,
                     calls: int = TIMING_CALLS) -> dict[str, float]:
    """Wall time (ms) of one forward pass of each model at batch 1 on one CPU thread (eval mode, no autograd).

    The models take turns: in each of ``rounds`` rounds every model runs
    ``calls`` times; a model's time is its median round ÷ ``calls``, so a
    burst of load on a shared machine hits all of them alike.

    Behind chapter 17, "Designing efficient models".
    """
    for name, model in models.items():
        check_part("cpu_ms_per_image", Module(), f"models[{name!r}]", model)
        model.eval()
    x = torch.zeros(1, 1, 28, 28)                      # (batch 1, 1, 28, 28): one MNIST image
    times: dict[str, list[float]] = {name: [] for name in models}
    with threads(1), torch.inference_mode():
        for model in models.values():                  # warm-up: allocations, kernel selection
            for _ in range(calls):
                model(x)
        for _ in range(rounds):
            for name, model in models.items():
                start = time.perf_counter()
                for _ in range(calls):
                    model(x)
                times[name].append((time.perf_counter() - start) / calls)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Train the three nets (learning rate chosen on validation), write checkpoints, return the record.

    Behind chapter 17, "Designing efficient models".
    """
    with threads(1):                  # one thread: the same arithmetic order on every machine
        return _run(out_dir)


def _run(out_dir) -> dict:
    train, val, test = (load_mnist(s, source="embedded") for s in ("train", "val", "test"))
    nets, trained = {}, {}
    for key, arch in NETS.items():
        grid, best, best_model = [], None, None
        for lr in LR_GRID:
            model = build_model(arch, seed=SEED)
            history = fit(model, train, epochs=EPOCHS, lr=lr, optimizer="adam", batch_size=BATCH_SIZE, val=val,
                          keep_best=True, seed=SEED, device="cpu", show_progress=False)
            row = {"lr": lr, "val_acc": history.best_val_acc, "best_epoch": history.best_epoch}
            grid.append(row)
            if best is None or row["val_acc"] > best["val_acc"]:   # the first (smaller lr) wins a tie
                best, best_model = row, model
        zoo.save_checkpoint(best_model, CHECKPOINT.format(key), arch, out_dir)
        spec = get_architecture(arch)
        nets[key] = {"arch": arch, "params": count_params(spec), "macs": count_macs(spec),
                     "lr": best["lr"], "best_epoch": best["best_epoch"], "val_acc": best["val_acc"],
                     "test_acc": evaluate(best_model, test, device="cpu"), "grid": grid}
        trained[key] = best_model
    for key, ms in cpu_ms_per_image(trained).items():
        nets[key]["cpu_ms"] = round(ms, 4)
    return {"nets": nets, "seed": SEED, "threads": 1,
            "recipe": {"optimizer": "adam", "epochs": EPOCHS, "lr_grid": LR_GRID, "batch_size": BATCH_SIZE},
            "data": "embedded MNIST subset: train 3,500 · val 500 · test 1,000",
            "selection": "per net: best epoch and learning rate on the validation split; test evaluated once",
            "timing": f"cpu_ms: batch 1, one thread, the three nets taking turns, median of {TIMING_ROUNDS} "
                      f"rounds of {TIMING_CALLS} forward passes (the machine that wrote the record)"}


@validate_params()
def efficient_blocks_report() -> dict:
    """The chapter's headline numbers (``effdl reproduce efficient-blocks --json``).

    ``params`` and ``macs`` are counted from the ``effdl.architectures`` specs;
    ``acc`` is the record's test accuracy (%), and ``checkpoint_acc`` the shipped
    checkpoint evaluated here on the test split (one thread, as the record);
    ``matches_record`` says they agree to 0.1 point. ``cpu_ms`` is measured live:
    median ms per image at batch 1 on one thread, with ``cpu_ms_record`` the
    record's from the machine that wrote it.

    Behind chapter 17, "Designing efficient models".
    """
    record = load_record("efficient_blocks")
    test = load_mnist("test", source="embedded")
    out: dict = {}
    agree = True
    loaded = {key: zoo.load(CHECKPOINT.format(key)) for key in NETS}
    live_ms = cpu_ms_per_image(loaded)
    for key, arch in NETS.items():
        with threads(1):
            live_acc = evaluate(loaded[key], test, device="cpu")
        rec = record["nets"][key]
        spec = get_architecture(arch)
        agree &= abs(live_acc - rec["test_acc"]) <= 0.1
        out[key] = {"params": count_params(spec), "macs": count_macs(spec), "acc": rec["test_acc"],
                    "checkpoint_acc": live_acc, "cpu_ms": round(live_ms[key], 4), "cpu_ms_record": rec["cpu_ms"]}
    std = out["standard"]
    for key in ("fire", "depthwise_separable"):
        out[key]["param_reduction"] = round(std["params"] / out[key]["params"], 2)
        out[key]["mac_reduction"] = round(std["macs"] / out[key]["macs"], 2)
        out[key]["time_reduction"] = round(std["cpu_ms"] / out[key]["cpu_ms"], 2)
    # the blocks alone (the stem conv and the fc layer are the same in every net)
    stem_fc = sum(r.macs for r in layer_table(get_architecture("mnist_conv")) if r.name in ("stem", "fc"))
    out["depthwise_separable"]["block_mac_reduction"] = round(
        (std["macs"] - stem_fc) / (out["depthwise_separable"]["macs"] - stem_fc), 3)
    out["mobilenet_body_mac_reduction"] = round(mobilenet_body_reduction(), 3)
    out["squeezenet_param_reduction"] = round(count_params(get_architecture("alexnet"))
                                              / count_params(get_architecture("squeezenet")), 2)
    out["matches_record"] = agree
    return out
