"""Chapter 11, Parallelization: the checks of its graded exercises.

In ``chapters/11_parallelism.ipynb``:

- ``check_split_ranges`` tests the reader's ``my_split_ranges``;
- ``check_staleness`` tests the reader's ``my_staleness``.
"""
from __future__ import annotations

import random

from ..training.parallel import split_ranges
from ..training.parallel import staleness_of
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_split_ranges(fn, seed: int = 11) -> str:
    """Chapter 11: ``fn(n, world_size) -> [(start, stop), …]``, the outputs each process of a
    model-parallel layer computes: contiguous, covering ``range(n)``, sizes differing by at most 1.

    Taught in chapter 11, "Parallelization".
    """
    rng = random.Random(seed)
    cases = [(10, 3), (300, 2), (7, 7), (50, 4), (5, 1)] + [(rng.randint(1, 500), rng.randint(1, 9)) for _ in range(40)]
    for n, w in cases:
        if w > n:
            continue
        got = [tuple(int(v) for v in r) for r in fn(n, w)]
        if len(got) != w:
            fail(f"n={n}, world_size={w}: return one (start, stop) per process; you returned {len(got)}.")
        if got[0][0] != 0 or got[-1][1] != n or any(a[1] != b[0] for a, b in zip(got, got[1:])):
            fail(f"n={n}, world_size={w}: the ranges must be contiguous and cover 0…{n - 1} exactly; got {got}.")
        sizes = [b - a for a, b in got]
        if max(sizes) - min(sizes) > 1:
            fail(f"n={n}, world_size={w}: sizes {sizes} are unbalanced; they may differ by at most 1.")
        if got != split_ranges(n, w):
            fail(f"n={n}, world_size={w}: balanced, but give the extra outputs to the first processes "
                  f"(n % world_size of them get one more), as effdl does.")
    return "split ranges: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_staleness(fn, seed: int = 12) -> str:
    """Chapter 11: ``fn(order) -> [staleness of each update]`` for an asynchronous parameter server,
    ``order`` the worker id of each update in the order the server applied them.

    Taught in chapter 11, "Parallelization".
    """
    rng = random.Random(seed)
    for trial in range(60):
        n_workers = rng.randint(1, 5)
        order = [rng.randint(1, n_workers) for _ in range(rng.randint(1, 30))]
        got = list(fn(list(order)))
        want = staleness_of(order)
        if got == want:
            continue
        if n_workers == 1 or len(set(order)) == 1:
            fail(f"with a single worker every gradient is computed on the latest weights: all zeros; got {got}.")
        first = order.index(order[-1])
        fail(f"order {order}: expected {want}, got {got}. A worker's gradient was computed on the weights the "
              f"server sent right after that worker's previous update (the initial weights before its first, "
              f"e.g. update {first} is stale by {want[first]}).")
    return "staleness: all checks passed"
