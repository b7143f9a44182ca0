#!/usr/bin/env python
"""MACs vs time: a standard 3×3 conv against MobileNet's depthwise-separable conv on this CPU.

For each (channels C, resolution H×W) of :data:`SHAPES` (MobileNet-like stages,
C → C channels, padding 1, batch 1, float32, one torch thread), four layers
are timed with torch.nn.functional.conv2d (oneDNN): the standard 3×3 conv,
the 3×3 depthwise conv alone (groups = C), the 1×1 pointwise conv alone, and
the depthwise-separable conv (depthwise then pointwise). In every round the
layers take turns; each time is the median of ROUNDS rounds (each round times
enough calls to last about a millisecond); the best round is recorded too.
On a shared machine the median of a long call (a standard conv on a large
map, several ms) is inflated more than that of a short one, because a long
call is more often preempted; the best round is the least disturbed
estimate, and the chapter reads the ratio of best times (`time_ratio_best`).
Reported per shape: the MAC ratio separable / standard (= 1/C + 1/9 exactly),
the measured time ratios (median and best), and each
layer's arithmetic intensity (ops per DRAM byte, fp32, weights + input +
output moved once: effdl.hardware.roofline.conv_work) with its achieved
GFLOP/s, next to this machine's one-thread roofline
(effdl.hardware.roofline.measure_machine: best fp32 matmul and copy rates;
the roof is raised to a conv's best rate where that was higher) so the
chapter can place the depthwise layers on it. The 1-minute load average before and after is recorded.

Writes benchmarks/results/blocks.json and prints a table.
    .venv/bin/python benchmarks/bench_blocks.py [--quick]
"""
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from effdl.architectures import Conv2d, count_macs, depthwise_separable
from effdl.hardware.roofline import conv_work, measure_machine
from effdl.hardware.specs import cpu_model
from effdl.train import threads

OUT = Path(__file__).resolve().parent / "results" / "blocks.json"
SHAPES = [(32, 56), (64, 56), (64, 28), (128, 28), (128, 14), (256, 14), (512, 7)]   # (C, H = W)
ROUNDS = 51
LAYERS = ("standard", "depthwise", "pointwise", "separable")


def layer_fns(c: int, size: int, gen: torch.Generator) -> dict:
    conv = torch.nn.functional.conv2d
    x = torch.randn(1, c, size, size, generator=gen)                  # (batch 1, C, H, W)
    w_std = torch.randn(c, c, 3, 3, generator=gen)                    # (out, in, 3, 3)
    w_dw = torch.randn(c, 1, 3, 3, generator=gen)                     # (C, 1, 3, 3): one filter per channel
    w_pw = torch.randn(c, c, 1, 1, generator=gen)                     # (out, in, 1, 1)
    return {"standard": lambda: conv(x, w_std, padding=1),
            "depthwise": lambda: conv(x, w_dw, padding=1, groups=c),
            "pointwise": lambda: conv(x, w_pw),
            "separable": lambda: conv(conv(x, w_dw, padding=1, groups=c), w_pw)}


def calls_for(fn, target_s: float = 1e-3) -> int:
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(target_s / once))


def time_layers(fns: dict, rounds: int) -> tuple[dict, dict]:
    """(median, best) seconds per call of each function, the functions taking turns in every round."""
    calls = {k: calls_for(f) for k, f in fns.items()}
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            start = time.perf_counter()
            for _ in range(calls[k]):
                f()
            times[k].append((time.perf_counter() - start) / calls[k])
    return {k: statistics.median(v) for k, v in times.items()}, {k: min(v) for k, v in times.items()}


def counts(c: int, size: int) -> dict:
    shape = (c, size, size)
    macs = {"standard": count_macs(Conv2d(c, c, 3, padding=1, bias=False), shape),
            "depthwise": count_macs(Conv2d(c, c, 3, padding=1, groups=c, bias=False), shape),
            "pointwise": count_macs(Conv2d(c, c, 1, bias=False), shape)}
    # the spec of the block has batch norms too: they add parameters, no MACs
    macs["separable"] = count_macs(depthwise_separable(c, c, 3), shape)
    assert macs["separable"] == macs["depthwise"] + macs["pointwise"]
    work = {"standard": conv_work(c, c, 3, size, padding=1, n_bits_weight=32, n_bits_act=32),
            "depthwise": conv_work(c, c, 3, size, padding=1, groups=c, n_bits_weight=32, n_bits_act=32),
            "pointwise": conv_work(c, c, 1, size, n_bits_weight=32, n_bits_act=32)}
    # the separable pair moves both layers' weights, its input, the intermediate map twice (written by the
    # depthwise conv, read by the pointwise one) and its output
    intensity = {k: w.intensity("dram") for k, w in work.items()}
    intensity["separable"] = ((work["depthwise"].ops + work["pointwise"].ops)
                              / (work["depthwise"].dram_bytes + work["pointwise"].dram_bytes))
    return {"macs": macs, "intensity": intensity}


def main(quick: bool = False) -> dict:
    rounds = 5 if quick else ROUNDS
    shapes = SHAPES[:2] if quick else SHAPES
    load_before = os.getloadavg()[0]
    gen = torch.Generator().manual_seed(0)
    rows = []
    with threads(1), torch.inference_mode():
        machine = measure_machine(budget_s=0.6 if quick else 5.0, kernels=False)
        for c, size in shapes:
            seconds, best = time_layers(layer_fns(c, size, gen), rounds)
            n = counts(c, size)
            row = {"channels": c, "size": size}
            for k in LAYERS:
                ops = 2.0 * n["macs"][k]
                row[k] = {"macs": n["macs"][k], "ms": round(1e3 * seconds[k], 5),
                          "ms_best": round(1e3 * best[k], 5), "intensity": round(n["intensity"][k], 3),
                          "gflops": round(ops / seconds[k] / 1e9, 3), "gflops_best": round(ops / best[k] / 1e9, 3)}
            row["mac_ratio"] = n["macs"]["separable"] / n["macs"]["standard"]
            row["formula_1_over_C_plus_1_over_9"] = 1 / c + 1 / 9
            row["time_ratio"] = round(seconds["separable"] / seconds["standard"], 4)
            row["time_ratio_best"] = round(best["separable"] / best["standard"], 4)
            row["depthwise_share_of_separable_time"] = round(seconds["depthwise"] / seconds["separable"], 4)
            row["depthwise_share_of_separable_time_best"] = round(best["depthwise"] / best["separable"], 4)
            rows.append(row)
    # the roof is the best rate seen: the matmul's, or a conv's when it ran faster (a loaded machine preempts
    # the long matmul calls more often than the ~1 ms conv rounds)
    peak = max([machine.peak / 1e9] + [r[k]["gflops_best"] for r in rows for k in LAYERS])
    result = {
        "what": "standard 3x3 conv vs depthwise-separable (3x3 depthwise + 1x1 pointwise), C -> C channels, "
                "padding 1, batch 1, fp32, one torch thread, torch.nn.functional.conv2d",
        "timing": f"median and best of {rounds} interleaved rounds, each ~1 ms of repeated calls",
        "intensity": "ops (2 per MAC) per DRAM byte, fp32, weights + input + output moved once "
                     "(effdl.hardware.roofline.conv_work, 'dram' convention)",
        "machine": {"cpu": cpu_model(), "torch": torch.__version__, "threads": 1,
                    "peak_gflops": round(peak, 2), "matmul_gflops": round(machine.peak_gflops, 2),
                    "bandwidth_gbs": round(machine.bandwidth_gbs, 2),
                    "ridge_ops_per_byte": round(peak / machine.bandwidth_gbs, 3),
                    "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "rows": rows,
    }
    return result


def print_table(result: dict) -> None:
    print(f"{'C':>4} {'HxW':>6} {'MAC ratio':>9} {'time ratio':>10} {'best':>6} {'I std':>7} {'I dw':>6} {'I pw':>6} "
          f"{'GF/s std':>8} {'GF/s dw':>8} {'GF/s pw':>8}")
    for r in result["rows"]:
        print(f"{r['channels']:>4} {r['size']:>3}x{r['size']:<3} {r['mac_ratio']:>9.3f} {r['time_ratio']:>10.3f} {r['time_ratio_best']:>6.3f} "
              f"{r['standard']['intensity']:>7.1f} {r['depthwise']['intensity']:>6.2f} "
              f"{r['pointwise']['intensity']:>6.1f} {r['standard']['gflops']:>8.1f} "
              f"{r['depthwise']['gflops']:>8.2f} {r['pointwise']['gflops']:>8.1f}")
    m = result["machine"]
    print(f"machine (1 thread): peak {m['peak_gflops']} GFLOP/s, bandwidth {m['bandwidth_gbs']} GB/s, "
          f"ridge {m['ridge_ops_per_byte']} ops/byte; load {m['loadavg_1min']}")


if __name__ == "__main__":
    quick = "--quick" in sys.argv[1:]
    out = main(quick)
    print_table(out)
    if not quick:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {OUT}")
