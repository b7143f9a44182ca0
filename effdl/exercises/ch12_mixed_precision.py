"""Chapter 12, Mixed precision: the checks of its graded exercises.

In ``chapters/12_mixed_precision.ipynb``:

- ``check_underflow_fraction`` tests the reader's ``my_underflow_fraction``;
- ``check_loss_scale_update`` tests the reader's ``my_loss_scale_update``.
"""
from __future__ import annotations

import random

import torch

from ..training.mixed_precision import LossScaler
from ..training.mixed_precision import underflow_fraction
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_underflow_fraction(fn, seed: int = 14) -> str:
    """Chapter 12: ``fn(grads, scale) -> float``, the fraction of non-zero gradient values that become
    zero when ``scale · g`` is stored in fp16.

    Taught in chapter 12, "Mixed precision".
    """
    gen = torch.Generator().manual_seed(seed)
    for trial in range(12):
        g = torch.randn(2000, generator=gen) * 10.0 ** torch.randint(-12, 0, (2000,), generator=gen).float()
        g[torch.rand(2000, generator=gen) < 0.1] = 0.0
        scale = 2.0 ** int(torch.randint(0, 24, (1,), generator=gen))
        got, want = float(fn(g.clone(), scale)), underflow_fraction(g, scale)
        if abs(got - want) > 1e-9:
            if abs(got - underflow_fraction(g[g != 0], 1.0 * scale) * (g != 0).float().mean()) < 1e-9:
                fail("divide by the number of non-zero values: a gradient that is already 0 cannot underflow.")
            fail(f"scale 2^{int(torch.log2(torch.tensor(scale)))}: expected {want:.4f}, got {got:.4f}; cast "
                  "scale · g to torch.float16 and count the values that became 0.")
    return "fp16 underflow: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_loss_scale_update(fn, seed: int = 13) -> str:
    """Chapter 12: ``fn(scale, good_steps, found_inf) -> (scale, good_steps)``, one step of dynamic loss
    scaling with torch.amp.GradScaler's defaults (×2 after 2000 good steps, ×0.5 on inf/NaN).

    Taught in chapter 12, "Mixed precision".
    """
    rng = random.Random(seed)
    for trial in range(20):
        ref = LossScaler(2.0 ** rng.randint(0, 24))
        scale, good = ref.scale, 0
        for step in range(rng.randint(1, 4500)):
            found_inf = rng.random() < (0.0005 if trial % 2 else 0.02)
            ref.update(found_inf)
            got = fn(scale, good, found_inf)
            if not isinstance(got, tuple) or len(got) != 2:
                fail("return a tuple (new_scale, new_good_steps).")
            scale, good = float(got[0]), int(got[1])
            if scale != ref.scale or good != ref.good_steps:
                what = "an overflow halves the scale and resets the count" if found_inf else \
                    "a good step counts; the 2000th in a row doubles the scale and resets the count"
                fail(f"step {step}: expected (scale {ref.scale}, good steps {ref.good_steps}), got "
                      f"({scale}, {good}): {what}.")
    return "dynamic loss scaling: all checks passed"
