#!/usr/bin/env python
"""Chapter 9: the closed-form systolic model on a 256×256 array over every layer of AlexNet and
VGG-16 (as GEMMs), and its agreement with the step-by-step simulator.

1. Closed form (`effdl.hardware.systolic.estimate_gemms`): each network at batch 1 and 8, on the
   256×256 array with unlimited weight bandwidth and on the TPU's (34 GB/s): seconds to evaluate
   (best of `REPEATS`), cycles, utilisation.
2. Agreement: the step simulator (`simulate`, every PE's registers every cycle) runs the same
   256×256 array on the layers it can afford — smallest first until `--max-step-cycles` simulated
   cycles — and every cycle total and fold must equal the closed form's, and the product must equal
   numpy's. The time ratio step ÷ closed form is recorded per layer.

Writes benchmarks/results/systolic.json and prints a table.
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from effdl.hardware import systolic as sy

OUT = Path(__file__).resolve().parent / "results" / "systolic.json"
NETWORKS = ("alexnet", "vgg16")
BATCHES = (1, 8)
REPEATS = 5
TOTALS = ("cycles", "load_cycles", "fill_cycles", "stream_cycles", "drain_cycles", "n_folds", "macs", "weights_placed")


def best_of(fn, repeats: int = REPEATS) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def closed_form() -> dict:
    configs = {"256x256": sy.SystolicConfig(), "TPU (34 GB/s)": sy.SystolicConfig.tpu()}
    out = {}
    for cname, cfg in configs.items():
        for net in NETWORKS:
            for b in BATCHES:
                gemms = sy.network_gemms(net, batch_size=b)
                seconds, est = best_of(lambda cfg=cfg, gemms=gemms: sy.estimate_gemms(cfg, gemms))
                key = f"{net}, batch {b}, {cname}"
                out[key] = {"layers": len(gemms), "seconds": seconds, "cycles": est["cycles"],
                            "utilization": round(est["utilization"], 4),
                            "array_ms_at_700MHz": round(est["seconds"] * 1e3, 3)}
                print(f"{key:34} {len(gemms):3} layers  model {seconds * 1e3:8.2f} ms   "
                      f"{est['cycles']:>12,} cycles  utilisation {est['utilization']:.1%}")
    return out


def agreement(max_step_cycles: int) -> list[dict]:
    cfg = sy.SystolicConfig()
    candidates = []
    for net in NETWORKS:
        for g in sy.network_gemms(net, batch_size=1):
            candidates.append((g.count * sy.estimate(cfg, g.m, g.k, g.n).cycles, net, g))
    rows, spent = [], 0
    for cycles, net, g in sorted(candidates, key=lambda c: c[0]):
        if spent + cycles > max_step_cycles:
            continue
        spent += cycles
        x, w = sy.random_gemm(g.m, g.k, g.n, seed=len(rows))
        t0 = time.perf_counter()
        step = sy.simulate(cfg, x, w)                   # one group: the `count` groups are identical in shape
        step_s = time.perf_counter() - t0
        closed_s, closed = best_of(lambda g=g: sy.estimate(cfg, g.m, g.k, g.n))
        equal = all(getattr(step, a) == getattr(closed, a) for a in TOTALS) and step.folds == closed.folds
        row = {"network": net, "layer": g.name, "M": g.m, "K": g.k, "N": g.n, "count": g.count,
               "cycles_step": step.cycles, "cycles_closed_form": closed.cycles, "totals_and_folds_equal": equal,
               "output_equals_numpy": bool(np.array_equal(step.output, x @ w)),
               "step_seconds": round(step_s, 2), "closed_form_seconds": closed_s,
               "step_over_closed_form": round(step_s / closed_s)}
        rows.append(row)
        print(f"{net:8} {g.name:8} M={g.m:<6} K={g.k:<6} N={g.n:<5} step {step.cycles:>7,} cycles in "
              f"{step_s:6.1f} s, closed form {closed.cycles:>7,} in {closed_s * 1e6:6.0f} µs  "
              f"equal={equal} output ok={row['output_equals_numpy']}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-step-cycles", type=int, default=50_000,
                        help="budget of cycles for the step simulator (about 1-2 ms each on 2 cores)")
    args = parser.parse_args()
    result = {
        "what": "closed-form systolic cycle model (effdl.hardware.systolic) on AlexNet and VGG-16 as GEMMs; "
                "agreement with the step simulator on a 256x256 array",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "loadavg_1min_before": round(os.getloadavg()[0], 2)},
        "closed_form": closed_form(),
    }
    rows = agreement(args.max_step_cycles)
    result["agreement"] = {"array": [256, 256], "max_step_cycles": args.max_step_cycles, "layers": rows,
                           "all_equal": all(r["totals_and_folds_equal"] and r["output_equals_numpy"] for r in rows),
                           "layers_not_stepped": sorted({f"{n}:{g.name}" for n in NETWORKS
                                                         for g in sy.network_gemms(n)}
                                                        - {f"{r['network']}:{r['layer']}" for r in rows})}
    result["machine"]["loadavg_1min_after"] = round(os.getloadavg()[0], 2)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"all equal: {result['agreement']['all_equal']}; wrote {OUT}")


if __name__ == "__main__":
    main()
