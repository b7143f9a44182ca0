"""Chapter 16, Appendix: measured on a GPU: the checks of its graded exercises.

In ``chapters/16_gpu_appendix.ipynb``:

- ``check_matmul_intensity`` tests the reader's ``my_matmul_intensity``;
- ``check_two_four_mask`` tests the reader's ``my_two_four_mask``.
"""
from __future__ import annotations

import math

import torch

from ..hardware import gpu_bench
from ..hardware import roofline
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_matmul_intensity(fn, seed: int = 1601) -> str:
    """Chapter 16: ``fn(m, k, n, bytes_per_element) -> FLOP per DRAM byte`` of ``(m×k) @ (k×n)``.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    gen = torch.Generator().manual_seed(seed)
    for _ in range(20):
        m, k, n = (int(v) for v in torch.randint(1, 20000, (3,), generator=gen))
        nbytes = [1, 2, 4][int(torch.randint(0, 3, (1,), generator=gen))]
        want = roofline.fc_work(k, n, batch_size=m, n_bits_weight=8 * nbytes, n_bits_act=8 * nbytes).intensity("dram")
        got = fn(m, k, n, nbytes)
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            fail(f"return a number (FLOP per byte); got {type(got).__name__}.")
        if not math.isclose(got, want, rel_tol=1e-9):
            fail(f"for m={m}, k={k}, n={n} at {nbytes} byte(s) per element the intensity is off: count 2 FLOPs "
                  "per multiply-add, and read A and B and write C once each.")
    return "matmul intensity: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_two_four_mask(fn, seed: int = 1600) -> str:
    """Chapter 16: ``fn(weight) -> bool mask`` keeping exactly 2 of every 4 consecutive weights by magnitude.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    gen = torch.Generator().manual_seed(seed)
    for shape in [(8, 16), (3, 4, 8), (12,), (1, 4)]:
        w = torch.randn(shape, generator=gen)
        mask = fn(w.clone())
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != w.shape:
            fail(f"return a bool tensor of the weight's shape {tuple(w.shape)} (True = kept).")
        kept = mask.reshape(-1, 4).sum(dim=1)
        if not torch.all(kept == 2):
            fail("keep exactly 2 of every group of 4 consecutive weights along the last dimension "
                  f"(found groups keeping {sorted(set(kept.tolist()))}).")
        groups, m = w.abs().reshape(-1, 4), mask.reshape(-1, 4)
        if torch.any(groups[m].reshape(-1, 2).min(dim=1).values < groups[~m].reshape(-1, 2).max(dim=1).values):
            fail("in some group a kept weight is smaller in magnitude than a pruned one: rank by |w|.")
        if not torch.equal(mask, gpu_bench.two_four_mask(w)):
            fail("your mask differs from the 2:4 rule on random weights.")
        if not torch.equal(fn(w * mask), mask):
            fail("applying the mask and masking again must keep the same weights.")
    return "2:4 mask: all checks passed"
