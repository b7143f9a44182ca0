"""Chapter 0, Why efficiency: the checks of its graded exercises.

In ``chapters/00_why_efficiency.ipynb``:

- ``check_conv_counts`` tests the reader's ``my_conv_counts``;
- ``check_energy_per_image`` tests the reader's ``my_energy_per_image``.
"""
from __future__ import annotations

import numpy as np

from .. import architectures as arch
from ..hardware import energy
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_conv_counts(fn, seed: int = 0) -> str:
    """Chapter 0: ``fn(in_ch, out_ch, kernel, out_h, out_w) -> (params, macs)`` of a stride-1
    ``kernel × kernel`` convolution with a bias, producing an ``out_h × out_w`` output per channel.

    Behind chapter 02, "Pruning".
    """
    rng = np.random.default_rng(seed)
    cases = [(1, 6, 5, 28, 28), (3, 96, 11, 55, 55), (1, 1, 1, 1, 1)]
    cases += [tuple(int(v) for v in (rng.integers(1, 65), rng.integers(1, 129), rng.choice([1, 3, 5, 7]),
                                     rng.integers(1, 60), rng.integers(1, 60))) for _ in range(25)]
    for c, k, r, h, w in cases:
        layer = arch.Conv2d(c, k, r)
        want_params = arch.count_params(layer)                       # torch.nn.Conv2d agrees (tests)
        want_macs = arch.count_macs(layer, (c, h + r - 1, w + r - 1))
        got = fn(c, k, r, h, w)
        if not isinstance(got, tuple) or len(got) != 2:
            fail("return a tuple (params, macs).")
        params, macs = (int(v) for v in got)
        what = f"a {r}×{r} conv from {c} to {k} channels with a {h}×{w} output"
        if params != want_params:
            if params == want_params - k:
                fail(f"{what}: each output channel also has one bias.")
            fail(f"{what}: you count {params:,} parameters, which differs from torch.nn.Conv2d's: one "
                  "in_ch × kernel × kernel filter per output channel, plus the biases.")
        if macs != want_macs:
            if macs == 2 * want_macs:
                fail(f"{what}: a multiply-accumulate counts once, not as two operations.")
            if macs == want_macs + k * h * w:
                fail(f"{what}: adding the bias is not a multiply-accumulate; count the products only.")
            fail(f"{what}: you count {macs:,} MACs. Every output value (out_ch × out_h × out_w of them) "
                  "takes one MAC per filter weight.")
    return "conv counts: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_energy_per_image(fn, seed: int = 0) -> str:
    """Chapter 0: ``fn(macs, weights, batch_size, weight_memory) -> µJ per image``: fp32 MACs
    plus 32-bit weight reads from ``"dram"`` or ``"sram"``, each weight read once per batch.

    Behind chapter 02, "Pruning".
    """
    rng = np.random.default_rng(seed)
    cases = [(724e6, 61e6, 1, "dram"), (266_200, 266_610, 1, "sram")]
    cases += [(float(rng.integers(1, 10 ** 10)), float(rng.integers(1, 10 ** 8)), int(rng.integers(1, 513)),
               str(rng.choice(["dram", "sram"]))) for _ in range(30)]
    for macs, weights, b, memory in cases:
        got = float(fn(macs, weights, b, memory))
        want = energy.inference_energy(macs, weights / b, weight_memory=memory)["total_uj"]
        if np.isclose(got, want, rtol=1e-9):
            continue
        one = energy.inference_energy(macs, weights, weight_memory=memory)
        if np.isclose(got, want * 1e6, rtol=1e-9):
            fail("the table is in picojoules; return microjoules (1 µJ = 10⁶ pJ).")
        if b > 1 and np.isclose(got, one["total_uj"], rtol=1e-9):
            fail(f"with batch_size={b}, one fetch of each weight serves {b} images: divide the weight "
                  "reads (not the MACs) by the batch.")
        if np.isclose(got, want - one["compute_uj"], rtol=1e-9):
            fail("add the arithmetic: every MAC costs one fp32 multiply and one fp32 add.")
        fail(f"{macs:,.0f} MACs, {weights:,.0f} weights in {memory}, batch {b}: your energy differs from "
              "energy.inference_energy: (mult + add) per MAC, plus one 32-bit read per weight and batch.")
    return "energy per image: all checks passed"
