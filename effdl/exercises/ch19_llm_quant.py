"""Chapter 19, Quantizing a language model: the checks of its graded exercises.

In ``chapters/19_llm_quantization.ipynb``:

- ``check_group_rtn`` tests the reader's ``my_group_rtn``;
- ``check_smooth_scales`` tests the reader's ``my_smooth_scales``.
"""
from __future__ import annotations

import numpy as np
import torch

from ._common import fail
from ..validation import Callable, Seed, validate_params


def _group_rtn(w: torch.Tensor, n_bits: int, g: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The exercise's grid, in float64: asymmetric min-max per group of g columns (0 always on the grid)."""
    rows, cols = w.shape
    x = w.double().reshape(rows, cols // g, g)
    lo, hi = x.amin(-1, keepdim=True).clamp(max=0), x.amax(-1, keepdim=True).clamp(min=0)
    scale = (hi - lo) / (2 ** n_bits - 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero = torch.round(-lo / scale)
    q = torch.clamp(torch.round(x / scale) + zero, 0, 2 ** n_bits - 1)
    return ((q - zero) * scale).reshape(rows, cols), scale.expand_as(x).reshape(rows, cols)


@validate_params(fn=Callable(), seed=Seed())
def check_group_rtn(fn, seed: int = 0) -> str:
    """Chapter 19: ``fn(weight, n_bits, group_size) -> weight_hat``, round-to-nearest on an asymmetric grid
    per group of ``group_size`` consecutive input columns of each row: ``scale = (max(w, 0) − min(w, 0)) /
    (2ⁿ − 1)``, ``zero_point = round(−min(w, 0) / scale)``, codes clamped to ``[0, 2ⁿ − 1]``, values
    ``(q − zero_point)·scale``. ``weight`` (out, in) float32; a tensor of the same shape out.

    Taught in chapter 19, "Quantizing a language model".
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        g = int(rng.choice([4, 8, 16]))
        rows, cols, n_bits = int(rng.integers(1, 9)), g * int(rng.integers(1, 6)), int(rng.integers(2, 9))
        w = torch.randn(rows, cols, generator=gen) * float(rng.choice([0.02, 1.0, 30.0]))
        if rng.random() < 0.3:
            w = w.abs()                                           # all positive: 0 must stay on the grid
        want, step = _group_rtn(w, n_bits, g)
        got = fn(w.clone(), n_bits, g)
        if not isinstance(got, torch.Tensor) or got.shape != w.shape:
            fail(f"return a tensor of shape {tuple(w.shape)}; got {getattr(got, 'shape', type(got).__name__)}.")
        diff = (got.double() - want).abs()
        if (diff > 1e-4 * step).float().mean() > 0.01 or (diff > 1.01 * step).any():
            per_row, _ = _group_rtn(w, n_bits, cols)
            if cols > g and torch.allclose(got.double(), per_row, atol=1e-5 * float(step.max())):
                fail("your grid covers the whole row: each group of group_size consecutive columns has its own "
                     "scale and zero point (reshape to (rows, cols // group_size, group_size)).")
            if len(torch.unique(got[0, :g])) > 2 ** n_bits:
                fail(f"one group of your output has more than 2^{n_bits} distinct values: round and clamp the "
                     "codes to [0, 2ⁿ − 1] before dequantizing.")
            fail(f"for a {rows}×{cols} weight, {n_bits} bits, groups of {g} your values differ from the grid's "
                 "nearest points: is 0 inside each group's range (min(w, 0), max(w, 0))? Is the zero point "
                 "rounded to an integer before it is added?")
    return "group round-to-nearest: correct on 10 random weights"


@validate_params(fn=Callable(), seed=Seed())
def check_smooth_scales(fn, seed: int = 0) -> str:
    """Chapter 19: ``fn(act_max, weight, alpha) -> s``, SmoothQuant's per-input-channel factors
    ``s_j = act_max_j^α / max_i |weight_ij|^(1−α)`` for ``act_max`` (in,) and ``weight`` (out, in); (in,) out.

    Taught in chapter 19, "Quantizing a language model".
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    for _ in range(8):
        rows, cols = int(rng.integers(2, 12)), int(rng.integers(2, 12))
        if rows == cols:
            cols += 1                                          # rows ≠ cols: the wrong axis shows as a shape error
        act_max = torch.rand(cols, generator=gen) * 10 + 0.1
        weight = torch.randn(rows, cols, generator=gen)
        alpha = float(rng.choice([0.25, 0.5, 0.8]))
        want = act_max.double() ** alpha / weight.double().abs().amax(0) ** (1 - alpha)
        got = fn(act_max.clone(), weight.clone(), alpha)
        if not isinstance(got, torch.Tensor) or got.shape != (cols,):
            fail(f"return one factor per input channel, shape ({cols},); got "
                 f"{getattr(got, 'shape', type(got).__name__)} (the weight's input channels are its columns).")
        if not torch.allclose(got.double(), want, rtol=1e-4):
            swapped = act_max.double() ** (1 - alpha) / weight.double().abs().amax(0) ** alpha
            if torch.allclose(got.double(), swapped, rtol=1e-4):
                fail("α weighs the activations: s_j = act_max_j^α / max|W_:,j|^(1−α), not the other way round.")
            fail(f"for alpha={alpha} your factors differ from act_max^α / max_i |weight[i, j]|^(1−α): the weight's "
                 "maximum is over its rows (dim 0), one per input channel j.")
    return "SmoothQuant factors: correct on 8 random layers"
