"""Chapter 15, Wrap-up: what reproduced: the checks of its graded exercises.

In ``chapters/15_wrap_up.ipynb``:

- ``check_accuracy_stderr`` tests the reader's ``my_accuracy_stderr``;
- ``check_geomean_speedup`` tests the reader's ``my_geomean_speedup``.
"""
from __future__ import annotations

import math

import torch

from ..train import accuracy_stderr
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_accuracy_stderr(fn, seed: int = 1515) -> str:
    """Chapter 15: ``fn(accuracy, n_images) -> float``, the binomial standard error in percentage points.

    Taught in chapter 15, "Wrap-up: what reproduced".
    """
    gen = torch.Generator().manual_seed(seed)
    for _ in range(6):
        acc = float(torch.empty(1).uniform_(50.0, 99.5, generator=gen))
        n = int(torch.randint(200, 20000, (1,), generator=gen))
        got = fn(acc, n)
        if not isinstance(got, (int, float)) or isinstance(got, bool) or not math.isfinite(got):
            fail(f"return a finite number (percentage points); got {got!r}.")
        if not math.isclose(got, accuracy_stderr(acc, n), rel_tol=1e-6):
            if math.isclose(got, accuracy_stderr(acc, n) / 100, rel_tol=1e-6):
                fail("work in percentage points: the accuracy comes in percent, so should the error.")
            fail(f"for accuracy={acc:.2f} % on n_images={n} your value is off; "
                  "use the spread of a Bernoulli(p) mean over n draws.")
        if not math.isclose(fn(acc, 4 * n), got / 2, rel_tol=1e-6):
            fail("four times as many test images must halve the standard error.")
        if not math.isclose(fn(100 - acc, n), got, rel_tol=1e-6):
            fail("an accuracy of p and one of 100 − p must have the same standard error.")
    # against simulation: the spread of accuracies measured on fresh test sets
    p, n = 0.9, 1000
    draws = torch.bernoulli(torch.full((4000, n), p), generator=gen).mean(dim=1) * 100
    if abs(float(draws.std()) - fn(90.0, n)) > 0.05:
        fail("your standard error does not match the spread of simulated test sets.")
    return "accuracy standard error: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_geomean_speedup(fn, seed: int = 1516) -> str:
    """Chapter 15: ``fn(baseline_times, new_times) -> float``, the geometric mean of baseline/new over layers.

    Taught in chapter 15, "Wrap-up: what reproduced".
    """
    gen = torch.Generator().manual_seed(seed)
    for n in (1, 3, 9):
        base = (torch.rand(n, generator=gen) * 1000 + 1).tolist()
        new = (torch.rand(n, generator=gen) * 10 + 0.1).tolist()
        got = fn(base, new)
        want = math.exp(sum(math.log(b / t) for b, t in zip(base, new)) / n)
        if not isinstance(got, (int, float)) or isinstance(got, bool) or not math.isclose(got, want, rel_tol=1e-9):
            fail(f"for {n} layers your value is off: average the speedups' logarithms, then exponentiate.")
        if n > 1:
            order = torch.randperm(n, generator=gen).tolist()
            if not math.isclose(fn([base[i] for i in order], [new[i] for i in order]), got, rel_tol=1e-9):
                fail("the order of the layers must not matter.")
            if got > sum(b / t for b, t in zip(base, new)) / n + 1e-9:
                fail("a geometric mean is never above the arithmetic mean of the speedups.")
        if not math.isclose(fn([3 * b for b in base], new), 3 * got, rel_tol=1e-9):
            fail("a baseline three times slower on every layer must give a speedup three times larger.")
    return "geometric-mean speedup: all checks passed"
