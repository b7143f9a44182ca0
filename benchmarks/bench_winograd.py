#!/usr/bin/env python
"""Speed of effdl.winograd on VGG-16's 3×3 layers with C >= 128, as ratios.

Our Winograd F(2×2, 3×3) (filters transformed beforehand, as at inference)
against our im2col + GEMM on the same BLAS (torch.matmul), and against
torch.nn.functional.conv2d (oneDNN), in the same run, float32, padding 1.
F(4×4, 3×3) and the filter transform alone are timed too. The issue's target:
Winograd F(2×2) >= 1.5× faster than im2col + GEMM. Whatever is measured is
recorded. Each time is the best of `repeats` rounds in which the methods take
turns (effdl.winograd.time_conv3x3). Runs with one torch thread and with
torch's default; the 1-minute load average before and after is recorded
because other jobs may share the machine (two threads suffer most from that).

Writes benchmarks/results/winograd.json and prints a table.
"""
import json
import math
import os
import platform
from pathlib import Path

import torch

from effdl.architectures import get_architecture, layer_table
from effdl.winograd import TIMED_METHODS, layer_counts, time_conv3x3

OUT = Path(__file__).resolve().parent / "results" / "winograd.json"
# VGG-16's 3×3 layers with C >= 128, one per distinct shape (conv3_3 = conv3_2, conv4_3 = conv4_2,
# conv5_1 = conv5_2 = conv5_3).
LAYERS = ("conv2_2", "conv3_1", "conv3_2", "conv4_1", "conv4_2", "conv5_2")
BATCHES = {1: 5, 8: 3}           # batch size: repeats
THREADS = sorted({1, torch.get_num_threads()})


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def time_batch(rows: dict, batch_size: int, repeats: int) -> dict:
    """Time every layer in LAYERS at one batch size; print a row per layer."""
    per_layer = {}
    for name in LAYERS:
        row = rows[name]
        c, h, w = row.input_shape
        k = row.output_shape[0]
        ms = time_conv3x3(c, k, h, w, batch_size=batch_size, repeats=repeats, methods=TIMED_METHODS)
        entry = {
            "C": c, "K": k, "H": h, "W": w,
            "ms": {m: round(t, 2) for m, t in ms.items()},
            "speedup_vs_im2col": round(ms["im2col"] / ms["winograd"], 2),
            "speedup_vs_torch": round(ms["torch"] / ms["winograd"], 2),
            "speedup_4x4_vs_im2col": round(ms["im2col"] / ms["winograd_4x4"], 2),
            "speedup_vs_im2col_incl_filter_transform":
                round(ms["im2col"] / (ms["winograd"] + ms["filter_transform"]), 2),
            "mult_reduction": layer_counts(c, k, h, w, 2, batch_size=batch_size)["reduction"],
        }
        per_layer[name] = entry
        print(f"{name:8} {batch_size:>2} {c:>4} {k:>4} {f'{h}x{w}':>7} | "
              + " ".join(f"{ms[m]:>9.1f} ms" for m in TIMED_METHODS)
              + f" | {entry['speedup_vs_im2col']:>13.2f}x {entry['speedup_vs_torch']:>12.2f}x"
              + f" {entry['speedup_4x4_vs_im2col']:>13.2f}x {entry['mult_reduction']:>15.2f}x")
    return {
        "repeats": repeats,
        "layers": per_layer,
        "geomean_speedup_vs_im2col": round(geomean(e["speedup_vs_im2col"] for e in per_layer.values()), 2),
        "geomean_speedup_vs_torch": round(geomean(e["speedup_vs_torch"] for e in per_layer.values()), 2),
        "geomean_speedup_4x4_vs_im2col": round(geomean(e["speedup_4x4_vs_im2col"] for e in per_layer.values()), 2),
        "layers_meeting_target": sum(e["speedup_vs_im2col"] >= 1.5 for e in per_layer.values()),
    }


def main() -> None:
    rows = {row.name: row for row in layer_table(get_architecture("vgg16"))}
    result = {
        "what": "float32 stride-1 3x3 conv, padding 1; ms = best of `repeats`, methods interleaved",
        "target": "winograd F(2x2,3x3) >= 1.5x faster than im2col+GEMM (speedup_vs_im2col >= 1.5)",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_default_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "loadavg_1min_before": round(os.getloadavg()[0], 2)},
        "methods": {
            "im2col": "effdl.winograd.direct_conv2d: im2col + one GEMM (torch.matmul)",
            "winograd": "effdl.winograd.winograd_conv2d F(2x2,3x3), filters transformed beforehand",
            "winograd_4x4": "effdl.winograd.winograd_conv2d F(4x4,3x3), filters transformed beforehand",
            "filter_transform": "effdl.winograd.transform_filters F(2x2,3x3) alone (once per layer)",
            "torch": "torch.nn.functional.conv2d",
        },
    }
    default_threads = torch.get_num_threads()
    for threads in THREADS:
        torch.set_num_threads(threads)
        run = result[f"threads_{threads}"] = {}
        print(f"\ntorch threads: {threads}")
        print(f"{'layer':8} {'N':>2} {'C':>4} {'K':>4} {'HxW':>7} | "
              + " ".join(f"{m:>12}" for m in TIMED_METHODS)
              + " | wino vs im2col  wino vs torch  4x4 vs im2col  mult. reduction")
        for batch_size, repeats in BATCHES.items():
            run[f"batch_{batch_size}"] = time_batch(rows, batch_size, repeats)
    torch.set_num_threads(default_threads)
    result["machine"]["loadavg_1min_after"] = round(os.getloadavg()[0], 2)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for threads in THREADS:
        for batch_size in BATCHES:
            b = result[f"threads_{threads}"][f"batch_{batch_size}"]
            print(f"{threads} thread(s), batch {batch_size}: geomean Winograd F(2x2) speedup vs im2col "
                  f"{b['geomean_speedup_vs_im2col']}x, vs torch {b['geomean_speedup_vs_torch']}x; "
                  f"F(4x4) vs im2col {b['geomean_speedup_4x4_vs_im2col']}x; "
                  f"{b['layers_meeting_target']}/{len(LAYERS)} layers >= 1.5x")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
