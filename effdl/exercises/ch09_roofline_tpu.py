"""Chapter 9, The roofline and the TPU: the checks of its graded exercises.

In ``chapters/09_roofline_tpu.ipynb``:

- ``check_fc_intensity`` tests the reader's ``my_fc_intensity``;
- ``check_fold_cycles`` tests the reader's ``my_fold_cycles``.
"""
from __future__ import annotations

import numpy as np

from ..hardware import roofline
from ..hardware import systolic
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_fc_intensity(fn, seed: int = 909) -> str:
    """Chapter 9: ``fn(n_in, n_out, batch_size, n_bits_weight) -> ops per weight byte`` of an FC layer
    (a multiply-add counts as 2 operations; weights fetched once per batch).

    Taught in chapter 09, "The roofline and the TPU".
    """
    rng = np.random.default_rng(seed)
    for _ in range(20):
        n_in, n_out = (int(v) for v in rng.integers(1, 5000, size=2))
        b, bits = int(rng.integers(1, 600)), int(rng.choice([4, 8, 16, 32]))
        got = float(fn(n_in, n_out, b, bits))
        want = roofline.fc_work(n_in, n_out, b, n_bits_weight=bits).intensity("weight")
        if np.isclose(got, want):
            continue
        if np.isclose(got, want / 2):
            fail("off by a factor of 2: count a multiply-add as two operations, like the TPU's 92 TOPS.")
        if np.isclose(got, want * bits / 8) or np.isclose(got, want * 8 / bits):
            fail("a weight of `n_bits_weight` bits takes n_bits_weight / 8 bytes: divide by bytes, not bits or 1.")
        if not np.isclose(got, want):
            fail(f"for n_in={n_in}, n_out={n_out}, batch {b}, {bits}-bit weights your intensity differs "
                  "from effdl.hardware.roofline.fc_work: count the operations of the whole batch, "
                  "divide by the bytes of the weights.")
    if not np.isclose(fn(100, 100, 8, 8), fn(3000, 10, 8, 8)):
        fail("the intensity of an FC layer does not depend on its shape, only on batch and precision.")
    return "FC intensity: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_fold_cycles(fn, seed: int = 990) -> str:
    """Chapter 9: ``fn(rows, cols, m, k, n) -> cycles`` of an (M×K)@(K×N) GEMM on a double-buffered
    weight-stationary array with unlimited weight bandwidth (effdl.hardware.systolic's model).

    Taught in chapter 09, "The roofline and the TPU".
    """
    rng = np.random.default_rng(seed)
    cases = [(4, 4, 5, 4, 4), (4, 4, 5, 6, 4), (2, 3, 1, 7, 8), (256, 256, 200, 9216, 4096)]
    cases += [tuple(int(v) for v in rng.integers(1, 300, size=5)) for _ in range(30)]
    for rows, cols, m, k, n in cases:
        cfg, gemm = systolic.SystolicConfig(rows=rows, cols=cols), systolic.Gemm(M=m, K=k, N=n)
        want = systolic.estimate(cfg, gemm)
        got = int(fn(rows, cols, m, k, n))
        if got == want.cycles:
            continue
        folds = want.n_folds
        if got == want.cycles - want.load_cycles:
            fail("the first tile's weights must be loaded before anything flows: add its load "
                  f"(min(K, rows) = {want.load_cycles} cycles); later loads hide behind computation.")
        tiles = systolic.fold_table(cfg, gemm)
        if got == want.cycles + int((tiles.r1 - tiles.r0)[1:].sum()):
            fail("with double buffering only the first load is exposed: the next tile loads while this one computes.")
        fail(f"for a {rows}×{cols} array and M={m}, K={k}, N={n} ({folds} folds) the model counts "
              f"{want.cycles} cycles, you {got}: per fold M + (rows − 1) + (columns used − 1), "
              "N-tiles of `cols` columns times K-tiles of `rows` rows.")
    return "fold cycles: all checks passed"
