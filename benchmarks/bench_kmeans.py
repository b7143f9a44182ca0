#!/usr/bin/env python
"""Speed and quality of effdl.sharing.kmeans_1d against scikit-learn's KMeans, in the same run.

1,000,000 weights, k = 32 (5-bit weight sharing), two data sets: N(0, 1)
samples (numpy default_rng(0)), and LeNet-300-100's fc1 weights from the zoo
checkpoint (235,200 values, tiled to 1,000,000 with np.resize). Three
comparisons per data set:

- ``same_start``: sklearn ``KMeans(n_clusters=32, init=<our linear
  centroids>, n_init=1)`` — Lloyd from the same start; sklearn stops at its
  default tolerance (1e-4), ours when no point changes cluster;
- ``sklearn_default``: ``KMeans(n_clusters=32)`` (k-means++, n_init="auto",
  i.e. one run), against our linear init;
- our density and random (Forgy) inits, for reference.

Reports inertia (Σ squared distance to the centroid) and wall time; ratios
are ours ÷ sklearn's (inertia: < 1 is better; time: < 1 is faster). Best of
3 runs for ours, 1 run for sklearn (seconds each). Writes
benchmarks/results/kmeans.json.
"""
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.cluster import KMeans

from effdl import zoo
from effdl.sharing import kmeans_1d

OUT = Path(__file__).resolve().parent / "results" / "kmeans.json"
N, K = 1_000_000, 32


def inertia(x: np.ndarray, codebook: np.ndarray, labels: np.ndarray) -> float:
    return float(((x - codebook[labels]) ** 2).sum())


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def ours(x: np.ndarray, init: str) -> dict:
    (codebook, labels), seconds = timed(lambda: kmeans_1d(x, K, init), repeat=3)
    return {"inertia": inertia(x, codebook, labels), "seconds": round(seconds, 4)}


def theirs(x: np.ndarray, **kwargs) -> dict:
    km, seconds = timed(lambda: KMeans(n_clusters=K, random_state=0, **kwargs).fit(x[:, None]))
    return {"inertia": float(km.inertia_), "seconds": round(seconds, 4), "n_iter": int(km.n_iter_)}


def compare(x: np.ndarray) -> dict:
    mine = {init: ours(x, init) for init in ("linear", "density", "random")}
    start = np.linspace(x.min(), x.max(), K)[:, None]          # our linear init, as sklearn's init array
    same = theirs(x, init=start, n_init=1)
    default = theirs(x)
    ratio = lambda a, b: {"inertia": round(a["inertia"] / b["inertia"], 6),    # noqa: E731
                          "time": round(a["seconds"] / b["seconds"], 4)}
    return {
        "effdl": mine,
        "sklearn_same_start": same,
        "sklearn_default": default,
        "ratio_same_start": ratio(mine["linear"], same),
        "ratio_vs_sklearn_default": ratio(mine["linear"], default),
        "best_effdl_init_vs_sklearn_default": ratio(min(mine.values(), key=lambda r: r["inertia"]), default),
    }


def main() -> None:
    normal = np.random.default_rng(0).normal(size=N)
    fc1 = zoo.load("lenet300").fc1.weight.detach().numpy().astype(np.float64).ravel()
    result = {
        "n_values": N,
        "k": K,
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "sklearn": sklearn.__version__,
        "data": {"normal": "numpy default_rng(0).normal(size=1e6)",
                 "lenet300_fc1": "zoo lenet300 fc1.weight (235,200 values) tiled to 1e6 with np.resize"},
        "results": {"normal": compare(normal), "lenet300_fc1": compare(np.resize(fc1, N))},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
