#!/usr/bin/env python
"""Chapter 2: how long the precomputed pruning takes to remake, and how fast the widget answers.

- recompute time: read from data/zoo/pruning.json (measured by `effdl precompute pruning`);
- widget response: one slider move = prune a copy of LeNet-300-100 globally, evaluate it
  on the 1,000 test images, draw and encode the figure. Reported in ms and as a ratio
  to one plain evaluation of the dense model in the same run (the reference).
Writes benchmarks/results/pruning.json.
"""
import json
import timeit
from pathlib import Path

import torch

from effdl import precompute, zoo
from effdl.data import load_mnist
from effdl.train import evaluate
from effdl.viz import pruning as pruning_views
from effdl.viz.style import figure_png

OUT = Path(__file__).resolve().parent / "results" / "pruning.json"


def best_ms(fn, repeat=5):
    return 1000 * min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    torch.set_num_threads(2)
    model, test = zoo.load("lenet300"), load_mnist("test")
    curves = precompute.load_record("pruning")["curves"]
    reference = best_ms(lambda: evaluate(model, test))
    state = best_ms(lambda: pruning_views.sparsity_state(model, 0.9, test))
    full = best_ms(lambda: figure_png(pruning_views.sparsity_figure(
        pruning_views.sparsity_state(model, 0.9, test, "fc1.weight"), curves)))
    result = {"recompute_s": precompute.load_record("pruning")["recompute_seconds"],
              "widget_update_ms": round(full, 1), "prune_and_evaluate_ms": round(state, 1),
              "dense_evaluate_ms": round(reference, 1),
              "widget_update_vs_evaluate": round(full / reference, 1)}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
