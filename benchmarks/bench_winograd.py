#!/usr/bin/env python
"""Speed of effdl.winograd on VGG-16's 3×3 layers with C >= 128, as ratios, with a time breakdown.

Our Winograd F(2×2, 3×3) and F(4×4, 3×3) (the Kronecker-form fast path of
effdl.winograd.winograd_conv2d, filters transformed beforehand, as at
inference) against our im2col + GEMM on the same BLAS (torch.matmul) and
against torch.nn.functional.conv2d (oneDNN), in the same run, float32,
padding 1, at batch 1 and 8, on one and two torch threads.

Robust on a shared machine: in every round the methods take turns, and each
time is the median of `repeats` rounds (effdl.winograd.time_conv3x3); the
1-minute load average before and after is recorded. The breakdown
(effdl.winograd.time_breakdown) gives the median time of each stage: input
transform (padding, gathering the tiles, (Bᵀ⊗Bᵀ)·D), the batched GEMM, output
transform ((Aᵀ⊗Aᵀ)·M, tiles back in place); for im2col: the im2col copy, the
GEMM, the output copy.

Targets: F(2×2) geomean >= 1.5× over im2col at batch 1 on one thread;
F(2×2) >= 1.0× conv2d on the layers with C >= 256; F(4×4) >= 2× over im2col.
Whatever is measured is recorded.

Writes benchmarks/results/winograd.json and prints a table.
    .venv/bin/python benchmarks/bench_winograd.py [--quick]
"""
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from effdl.architectures import get_architecture, layer_table
from effdl.hardware.specs import cpu_model
from effdl.winograd import BREAKDOWN_METHODS, TIMED_METHODS, layer_counts, time_breakdown, time_conv3x3

OUT = Path(__file__).resolve().parent / "results" / "winograd.json"
# VGG-16's 3×3 layers with C >= 128, one per distinct shape (conv3_3 = conv3_2, conv4_3 = conv4_2,
# conv5_1 = conv5_2 = conv5_3).
LAYERS = ("conv2_2", "conv3_1", "conv3_2", "conv4_1", "conv4_2", "conv5_2")
SMALL_C = ("conv1_2",)           # timed apart (batch 1, one thread), not in the geometric means
BATCHES = {1: 7, 8: 3}           # batch size: repeats (rounds of interleaved methods; the median is kept)
THREADS = (1, 2)
WINOGRAD = {"F2": "winograd", "F4": "winograd_4x4"}
TARGETS = {"F2_vs_im2col": 1.5, "F2_vs_torch_C256": 1.0, "F4_vs_im2col": 2.0}


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def time_layer(row, batch_size: int, repeats: int) -> dict:
    c, h, w = row.input_shape
    k = row.output_shape[0]
    ms = time_conv3x3(c, k, h, w, batch_size=batch_size, repeats=repeats, methods=TIMED_METHODS)
    entry = {"C": c, "K": k, "H": h, "W": w, "ms": {m: round(t, 3) for m, t in ms.items()}}
    for name, method in WINOGRAD.items():
        entry[f"{name}_vs_im2col"] = round(ms["im2col"] / ms[method], 3)
        entry[f"{name}_vs_torch"] = round(ms["torch"] / ms[method], 3)
        tile = 2 if name == "F2" else 4
        entry[f"{name}_mult_reduction"] = round(layer_counts(c, k, h, w, tile, batch_size=batch_size)["reduction"], 3)
    entry["F2_vs_im2col_incl_filter_transform"] = round(ms["im2col"] / (ms["winograd"] + ms["filter_transform"]), 3)
    entry["breakdown_ms"] = {
        method: {stage: round(t, 3) for stage, t in
                 time_breakdown(c, k, h, w, method=method, batch_size=batch_size, repeats=repeats).items()}
        for method in BREAKDOWN_METHODS}
    return entry


def summarise(layers: dict) -> dict:
    out = {}
    for name in WINOGRAD:
        out[f"geomean_{name}_vs_im2col"] = round(geomean(e[f"{name}_vs_im2col"] for e in layers.values()), 3)
        out[f"geomean_{name}_vs_torch"] = round(geomean(e[f"{name}_vs_torch"] for e in layers.values()), 3)
        out[f"geomean_{name}_vs_torch_C256"] = round(
            geomean(e[f"{name}_vs_torch"] for e in layers.values() if e["C"] >= 256), 3)
    return out


def main(quick: bool = False) -> None:
    rows = {row.name: row for row in layer_table(get_architecture("vgg16"))}
    layers = LAYERS[-2:] if quick else LAYERS
    batches = {1: 2} if quick else BATCHES
    result = {
        "what": "float32 stride-1 3x3 conv, padding 1; ms = median of `repeats` rounds, methods interleaved; "
                "breakdown_ms = median per stage (separate runs)",
        "targets": "batch 1, 1 thread: geomean F2_vs_im2col >= 1.5; F2_vs_torch >= 1.0 on C >= 256; "
                   "F4_vs_im2col >= 2.0",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "loadavg_1min_before": round(os.getloadavg()[0], 2),
                    "started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())},
        "methods": {
            "im2col": "effdl.winograd.direct_conv2d: im2col + one GEMM (torch.matmul), in blocks",
            "winograd": "effdl.winograd.winograd_conv2d F(2x2,3x3), Kronecker form, filters transformed beforehand",
            "winograd_4x4": "effdl.winograd.winograd_conv2d F(4x4,3x3), Kronecker form, filters transformed beforehand",
            "filter_transform": "effdl.winograd.transform_filters F(2x2,3x3) alone (once per layer)",
            "torch": "torch.nn.functional.conv2d",
        },
    }
    default_threads = torch.get_num_threads()
    for threads in THREADS:
        torch.set_num_threads(threads)
        run = result[f"threads_{threads}"] = {}
        print(f"\ntorch threads: {threads}")
        print(f"{'layer':8} {'N':>2} {'C':>4} {'K':>4} {'HxW':>7} | " + " ".join(f"{m:>13}" for m in TIMED_METHODS)
              + " | F2/im2col F2/torch F4/im2col F4/torch | F2 in/gemm/out ms")
        for batch_size, repeats in batches.items():
            per_layer = {}
            for name in layers:
                e = per_layer[name] = time_layer(rows[name], batch_size, repeats)
                b = e["breakdown_ms"]["winograd"]
                size = f"{e['H']}x{e['W']}"
                print(f"{name:8} {batch_size:>2} {e['C']:>4} {e['K']:>4} {size:>7} | "
                      + " ".join(f"{e['ms'][m]:>10.1f} ms" for m in TIMED_METHODS)
                      + f" | {e['F2_vs_im2col']:>8.2f}x {e['F2_vs_torch']:>7.2f}x {e['F4_vs_im2col']:>8.2f}x"
                      + f" {e['F4_vs_torch']:>7.2f}x | " + "/".join(f"{t:.1f}" for t in b.values()), flush=True)
            run[f"batch_{batch_size}"] = {"repeats": repeats, "layers": per_layer, **summarise(per_layer)}
    # Where Winograd loses: few channels (conv1_2, C = 64 at 224×224), batch 1, one thread.
    torch.set_num_threads(1)
    result["small_c"] = {name: time_layer(rows[name], 1, batches[1]) for name in SMALL_C}
    torch.set_num_threads(default_threads)
    result["machine"]["loadavg_1min_after"] = round(os.getloadavg()[0], 2)
    head = result["threads_1"]["batch_1"]
    result["targets_met"] = {
        "F2_vs_im2col": head["geomean_F2_vs_im2col"] >= TARGETS["F2_vs_im2col"],
        "F2_vs_torch_C256": head["geomean_F2_vs_torch_C256"] >= TARGETS["F2_vs_torch_C256"],
        "F4_vs_im2col": head["geomean_F4_vs_im2col"] >= TARGETS["F4_vs_im2col"],
    }
    for threads in THREADS:
        for batch_size in batches:
            b = result[f"threads_{threads}"][f"batch_{batch_size}"]
            print(f"{threads} thread(s), batch {batch_size}: geomean F2 vs im2col {b['geomean_F2_vs_im2col']:.2f}x, "
                  f"vs torch {b['geomean_F2_vs_torch']:.2f}x (C >= 256: {b['geomean_F2_vs_torch_C256']:.2f}x); "
                  f"F4 vs im2col {b['geomean_F4_vs_im2col']:.2f}x, vs torch {b['geomean_F4_vs_torch']:.2f}x")
    print("targets met (batch 1, 1 thread):", result["targets_met"])
    if quick:
        print("quick run: nothing written")
        return
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
