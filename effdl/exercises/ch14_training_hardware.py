"""Chapter 14, Hardware for training: the checks of its graded exercises.

In ``chapters/14_training_hardware.ipynb``:

- ``check_training_days`` tests the reader's ``my_training_days``;
- ``check_tensor_core_fp32_mma`` tests the reader's ``my_tensor_core_step``.
"""
from __future__ import annotations

import math

import torch

from ..hardware import specs
from ..training import mixed_precision as mp
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_training_days(fn, seed: int = 1400) -> str:
    """Chapter 14: ``fn(total_flops, peak_tflops, utilization) -> days`` to train on one chip.

    Taught in chapter 14, "Hardware for training".
    """
    gen = torch.Generator().manual_seed(seed)
    for _ in range(20):
        flops = 10.0 ** float(torch.empty(1).uniform_(15, 23, generator=gen))
        peak = float(torch.empty(1).uniform_(1, 200, generator=gen))
        util = float(torch.empty(1).uniform_(0.05, 1.0, generator=gen))
        want = specs.training_time_s(flops, peak, util) / 86400
        got = fn(flops, peak, util)
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            fail(f"return a number of days (a float); got {type(got).__name__}.")
        if not math.isclose(got, want, rel_tol=1e-9):
            if math.isclose(got, want * 86400, rel_tol=1e-9):
                fail("that is seconds, not days: a day has 86,400 seconds.")
            fail(f"for {flops:.3g} FLOPs on a {peak:.3g}-TFLOPS chip at utilization {util:.2f} the time is off: "
                  "divide the work by the rate the chip actually sustains (peak × 10¹² × utilization).")
    for bad in (0.0, -0.5, 1.5):
        try:
            fn(1e18, 10.0, bad)
        except ValueError:
            continue
        fail(f"utilization must be in (0, 1]: raise ValueError for {bad}.")
    return "training days: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_tensor_core_fp32_mma(fn, seed: int = 1401) -> str:
    """Chapter 14: ``fn(a, b, c) -> d``, one 4×4×4 Tensor Core step: fp16 inputs, exact products, fp32 sums.

    Taught in chapter 14, "Hardware for training".
    """
    gen = torch.Generator().manual_seed(seed)

    def call(a, b, c):
        d = fn(a.clone(), b.clone(), c.clone())
        if not isinstance(d, torch.Tensor) or d.shape != (4, 4):
            fail("return a 4×4 tensor D = A·B + C.")
        return d.double()

    for _ in range(10):                                   # agrees with effdl's emulation on fresh inputs
        a, b, c = (torch.randn(4, 4, generator=gen) for _ in range(3))
        want = mp.tensor_core_mma(a, b, c).double()
        if not torch.allclose(call(a, b, c), want, rtol=1e-6, atol=1e-6):
            fail("D differs from a Tensor Core's result on random inputs: round A and B to fp16, multiply, "
                  "and add the products to C in fp32.")
    a = torch.full((4, 4), 1.0 + 2.0 ** -13)              # not representable in fp16: rounds to 1.0
    b, c = torch.ones(4, 4), torch.zeros(4, 4)
    if torch.allclose(call(a, b, c), (a.double() @ b.double()), rtol=0, atol=1e-6):
        fail("the inputs must be rounded to fp16 first (a Tensor Core reads fp16 A and B).")
    a = torch.full((4, 4), 0.25)
    b = torch.full((4, 4), 0.25)
    c = torch.full((4, 4), 2048.0)                         # fp16 spacing at 2048 is 2: the products vanish in fp16
    if not torch.allclose(call(a, b, c), torch.full((4, 4), 2048.25, dtype=torch.float64)):
        fail("accumulate in fp32: 2048 + 4 × 0.0625 is 2048.25 in fp32 but 2048 if each sum is stored in fp16.")
    return "Tensor Core MMA with fp32 accumulation: all checks passed"
