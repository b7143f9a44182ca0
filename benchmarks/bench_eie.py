#!/usr/bin/env python
"""Speed of effdl.hardware.eie's event-level simulator on the paper's Alex-6, against scipy.

Alex-6 (9216 inputs, 4096 outputs, 9 % weights, 35.1 % activations; Han et al.,
ISCA 2016, Table III) as a random layer, 64 PEs, queue depth 8. Times, on one
core (the process is pinned to CPU 0): building the layer (random positions,
k-means codebook, EIE encoding), ``simulate(method="event")`` (the cycle
schedule, the functional output and the action counts), and, as the
reference, a scipy.sparse CSC mat-vec of the same decoded matrix. Checks
that both give the same output. The goal of the issue: the simulation under
2 s. Writes benchmarks/results/eie.json.
"""
import json
import os
import platform
import timeit
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from effdl.hardware import eie

OUT = Path(__file__).resolve().parent / "results" / "eie.json"


def best(fn, repeat=5):
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    config = eie.EIEConfig(n_pes=64, queue_depth=8)
    build = best(lambda: eie.benchmark_layer("Alex-6", config), repeat=3)
    layer, a = eie.benchmark_layer("Alex-6", config)
    simulate = best(lambda: eie.simulate(config, layer, a), repeat=5)
    result = eie.simulate(config, layer, a)

    rows, cols, values = (np.concatenate(parts) for parts in zip(*[
        (layer.entry_rows(p), layer.entry_columns(p), layer.codebook[layer.virtual_weight[p]])
        for p in range(layer.n_pes)]))
    csc = sp.csc_array((values, (rows, cols)), shape=layer.shape)
    csc.eliminate_zeros()                                   # the fillers
    scipy_matvec = best(lambda: csc @ a, repeat=50)
    np.testing.assert_allclose(csc @ a, result.preactivation, rtol=1e-9, atol=1e-9)

    out = {
        "layer": "Alex-6",
        "shape": list(layer.shape),
        "nonzeros": layer.n_nonzeros,
        "fillers": layer.n_fillers,
        "active_inputs": int(np.count_nonzero(a)),
        "config": {"n_pes": config.n_pes, "queue_depth": config.queue_depth, "clock_mhz": config.clock_mhz},
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, pinned to one core",
        "simulated": {"cycles": result.cycles, "latency_us": round(result.latency_us, 3),
                      "load_balance": round(result.load_balance, 4)},
        "seconds": {"build_layer": round(build, 3), "simulate_event": round(simulate, 4),
                    "scipy_csc_matvec": round(scipy_matvec, 6)},
        "simulate_over_scipy_matvec": round(simulate / scipy_matvec, 1),
        "goal_simulate_under_s": 2.0,
    }
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
