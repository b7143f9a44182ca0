#!/usr/bin/env python
"""Chapter 6: the training-time overhead of binary, TWN and TTQ weights vs plain training.

One epoch of the chapter's recipe (Adam, batch 64, the 3,500 training images) on LeNet-300-100
and LeNet-5 starting from the zoo checkpoints: the full-precision model (the reference) and the
same model with every Linear/Conv2d layer quantised by effdl.ternary (binary, TWN, TTQ; the
quantiser runs in every forward pass and TTQ's custom backward in every backward pass), with and
without the WeightHistory recorder the precompute uses (every 10 steps). Ratio = time ÷ plain
epoch time, measured in the same run; best of several repeats, interleaved so that a change in the
machine's load hits every variant alike. Writes benchmarks/results/ternary.json.
"""
import copy
import json
import os
import time
from pathlib import Path

import torch

from effdl import ternary, zoo
from effdl.data import load_mnist
from effdl.train import fit

OUT = Path(__file__).resolve().parent / "results" / "ternary.json"
THREADS = 1    # one intra-op thread: on the shared 2-core machine two threads wait on each other (10× slower measured)
REPEATS = 5


def epoch_s(make, record: bool, train) -> float:
    model = make()
    start = time.perf_counter()
    if record:
        ternary.train(model, train, record_every=10, epochs=1, lr=1e-4, optimizer="adam", seed=0,
                      show_progress=False)
    else:
        fit(model, train, epochs=1, lr=1e-4, optimizer="adam", seed=0, show_progress=False)
    return time.perf_counter() - start


def main() -> None:
    os.environ.setdefault("EFFDL_QUIET", "1")
    torch.set_num_threads(THREADS)
    train = load_mnist("train", source="embedded")
    result = {"threads": THREADS, "torch": torch.__version__.split("+")[0], "repeats": REPEATS,
              "recipe": "1 epoch, Adam lr 1e-4, batch 64, 3,500 images", "training": {}}
    for arch in ("lenet300", "lenet5"):
        base = zoo.load(arch)
        variants = {"plain": (lambda: copy.deepcopy(base), False)}
        for method in ternary.METHODS:
            variants[method] = (lambda m=method: ternary.ternarized_copy(base, m), False)
        variants["ttq_with_history"] = (lambda: ternary.ternarized_copy(base, "ttq"), True)
        epoch_s(*variants["plain"], train)                              # warm-up
        best = {name: float("inf") for name in variants}
        for _ in range(REPEATS):
            for name, (make, record) in variants.items():
                best[name] = min(best[name], epoch_s(make, record, train))
        row = {f"{name}_epoch_s": round(t, 3) for name, t in best.items()}
        for name in variants:
            if name != "plain":
                row[f"{name}_vs_plain"] = round(best[name] / best["plain"], 2)
        result["training"][arch] = row
        print(arch, json.dumps(row), flush=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
