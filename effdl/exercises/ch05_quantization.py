"""Chapter 5, Quantization: the checks of its graded exercises.

In ``chapters/05_quantization.ipynb``:

- ``check_fixed_point_frac_bits`` tests the reader's ``my_frac_bits``;
- ``check_fake_quantize_ste`` tests the reader's ``my_fake_quantize``;
- ``check_rounding_shift`` tests the reader's ``my_rounding_shift``.
"""
from __future__ import annotations

import torch

from .. import quantization as Q
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_fixed_point_frac_bits(fn, seed: int = 55) -> str:
    """Chapter 5: ``fn(x, n_bits) -> int``, the radix point of a signed ``n_bits`` word for tensor ``x``.

    The answer is the largest number of fraction bits whose format still
    covers ``[min(x), max(x)]`` (it may be negative, or exceed the word).

    Taught in chapter 05, "Quantization".
    """
    gen = torch.Generator().manual_seed(seed)
    for n_bits, spread in [(8, 1.0), (4, 0.05), (16, 300.0), (2, 0.7), (6, 1e4), (12, 1e-4)]:
        x = (torch.randn(500, generator=gen, dtype=torch.float64) + 0.3) * spread
        f = fn(x.clone(), n_bits)
        if isinstance(f, bool) or not isinstance(f, int):
            fail(f"return the number of fraction bits as a Python int; got {f!r}.")
        qmin, qmax = -2 ** (n_bits - 1), 2 ** (n_bits - 1) - 1
        step = 2.0 ** -f
        if not (qmin * step <= float(x.min()) and float(x.max()) <= qmax * step):
            fail(f"{n_bits} bits with {f} fraction bits represent [{qmin * step:g}, {qmax * step:g}], which "
                  f"does not cover the data's range [{float(x.min()):g}, {float(x.max()):g}].")
        finer = step / 2
        if qmin * finer <= float(x.min()) and float(x.max()) <= qmax * finer:
            fail(f"{f + 1} fraction bits would still cover the data ({n_bits} bits): choose the finest "
                  "radix point that fits.")
        if fn(2 * x, n_bits) != f - 1:
            fail("doubling every value must move the radix point one bit to the right (one fraction bit less).")
        if f != Q.choose_fixed_point(x, n_bits, signed=True).frac_bits:
            fail("on fresh random data your radix point differs from effdl.quantization.choose_fixed_point.")
    return "radix point: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_fake_quantize_ste(fn, seed: int = 5) -> str:
    """Chapter 5: ``fn(x, scale, zero_point, qmin, qmax)`` fake quantization with a straight-through gradient.

    Forward: ``(clamp(round(x / scale) + zero_point, qmin, qmax) − zero_point) · scale``.
    Backward: 1 for values inside the representable range, 0 for values that saturate.

    Taught in chapter 05, "Quantization".
    """
    gen = torch.Generator().manual_seed(seed)
    for scale, zero_point, n_bits, signed in [(0.25, 0, 4, True), (0.1, 3, 4, False), (0.02, 128, 8, False),
                                              (1.0, 0, 2, True)]:
        qmin, qmax = Q.qrange(n_bits, signed)
        lo, hi = (qmin - zero_point) * scale, (qmax - zero_point) * scale
        x = ((torch.rand(3000, generator=gen) * 1.6 - 0.3) * (hi - lo) + lo).requires_grad_()   # 30 % beyond each end
        y = fn(x, scale, zero_point, qmin, qmax)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            fail("return a tensor of x's shape.")
        want = Q.fake_quantize(x.detach(), scale, zero_point, n_bits, signed=signed)
        off = (y.detach() - want).abs() > 1e-6 * max(1.0, abs(hi))
        if int(off.sum()) > 3 or bool(((y.detach() - want).abs() > 1.001 * scale).any()):
            fail("the forward values differ from quantize-then-dequantize: round x / scale, add the zero point, "
                  "clamp to [qmin, qmax], subtract the zero point and multiply by the scale.")
        if not y.requires_grad:
            fail("the output carries no gradient: torch.round's gradient is zero almost everywhere, so route the "
                  "gradient around the rounding (the straight-through estimator).")
        y.backward(torch.ones_like(y))
        g, xd = x.grad, x.detach()
        inside = (xd > lo + scale / 2) & (xd < hi - scale / 2)
        outside = (xd < lo - scale / 2) | (xd > hi + scale / 2)
        if g is None or not torch.all(g[inside] == 1):
            fail("inside the representable range the gradient must pass straight through (equal to 1).")
        if not torch.all(g[outside] == 0):
            fail("values beyond the range saturate: their gradient must be 0, as for a clamp.")
        if not torch.all((g == 0) | (g == 1)):
            fail("the straight-through gradient is 0 or 1 everywhere.")
    return "fake quantization with STE: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_rounding_shift(fn, seed: int = 31) -> str:
    """Chapter 5: ``fn(v, shift)``: ``round(v / 2**shift)``, ties to even, with integer operations only.

    Taught in chapter 05, "Quantization".
    """
    gen = torch.Generator().manual_seed(seed)
    for shift in (1, 3, 8, 20):
        v = torch.randint(-2 ** 40, 2 ** 40, (5000,), generator=gen)
        ties = torch.arange(-6, 7) * 2 ** (shift - 1)                 # exact halves (and integers)
        v = torch.cat([v, ties, ties + 1, ties - 1])
        out = fn(v.clone(), shift)
        if not isinstance(out, torch.Tensor) or out.dtype != torch.int64 or out.shape != v.shape:
            fail("return an int64 tensor of v's shape.")
        want = torch.round(v.double() / 2 ** shift).long()               # exact here: |v| < 2^53
        if not torch.equal(out, want):
            bad = int((out != want).nonzero()[0])
            fail(f"round({int(v[bad])} / 2^{shift}) should be {int(want[bad])}; you return {int(out[bad])}. "
                  "Remember: halves go to the even neighbour, and >> rounds towards −∞.")
    big = torch.tensor([2 ** 55 + 3, -(2 ** 55) - 3, 2 ** 61 + 2 ** 20 + 2 ** 19])
    want = torch.tensor([2 ** 54 + 2, -(2 ** 54) - 2, 2 ** 60 + 2 ** 19 + 2 ** 18])
    if not torch.equal(fn(big.clone(), 1), want):
        fail("on integers beyond 2^53 the answer is off: float64 cannot hold them exactly, so stay in integers "
              "(shifts, masks, additions).")
    return "rounding right shift: all checks passed"
