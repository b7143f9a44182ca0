"""Chapter 1, Number representations: the checks of its graded exercises.

In ``chapters/01_number_representations.ipynb``:

- ``check_decode_float`` tests the reader's ``my_decode_float``;
- ``check_round_fixed`` tests the reader's ``my_round_fixed``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import numerics
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_decode_float(fn, seed: int = 0) -> str:
    """Chapter 1: ``fn(bits, exponent_bits, mantissa_bits) -> float``, the value of an IEEE-style
    bit string (sign, biased exponent, mantissa; subnormals, ±0, ±inf and NaN included).

    Behind chapter 02, "Pruning".
    """
    rng = np.random.default_rng(seed)

    def reference(bits, e, m):
        if (e, m) == (5, 10):
            return float(np.array([int(bits, 2)], dtype=np.uint16).view(np.float16)[0])
        if (e, m) == (8, 23):
            return float(np.array([int(bits, 2)], dtype=np.uint32).view(np.float32)[0])
        return numerics.decode_bits(bits, numerics.FloatFormat("f", e, m))

    special = ["0" * 16, "1" + "0" * 15, "0" + "11111" + "0" * 10, "1" + "11111" + "0" * 10,
               "0" + "11111" + "0" * 9 + "1", "0" + "00000" + "0" * 9 + "1", "0" + "00000" + "1" * 10,
               "0" + "00001" + "0" * 10, "0" + "11110" + "1" * 10, "0" + "10101" + "1001000000"]
    cases = [(b, 5, 10) for b in special]
    cases += [(format(int(v), "016b"), 5, 10) for v in rng.integers(0, 2 ** 16, size=40)]
    cases += [(format(int(v), "032b"), 8, 23) for v in rng.integers(0, 2 ** 32, size=20)]
    for _ in range(40):
        e, m = int(rng.integers(2, 9)), int(rng.integers(1, 11))
        cases.append((format(int(rng.integers(0, 2 ** (1 + e + m))), f"0{1 + e + m}b"), e, m))
    for bits, e, m in cases:
        want, got = reference(bits, e, m), float(fn(bits, e, m))
        if math.isnan(want) and math.isnan(got):
            continue
        if got == want and math.copysign(1, got) == math.copysign(1, want):
            continue
        field = int(bits[1:1 + e], 2)
        where = f"{bits[0]} {bits[1:1 + e]} {bits[1 + e:]} (exponent {e} bits, mantissa {m} bits)"
        if field == 2 ** e - 1:
            fail(f"{where}: an all-ones exponent field means ±inf (mantissa 0) or NaN (otherwise).")
        if field == 0:
            fail(f"{where}: an all-zero exponent field is a subnormal (or zero): no implicit leading 1, "
                  f"and the exponent is that of the smallest normal, 1 − bias.")
        if got == -want:
            fail(f"{where}: the first bit is the sign; 1 means negative.")
        fail(f"{where}: you decode {got!r}. A normal number is (−1)^s · 1.M · 2^(E − bias), "
              f"bias = 2^(e−1) − 1.")
    return "float decoding: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_round_fixed(fn, seed: int = 0) -> str:
    """Chapter 1: ``fn(x, int_bits, frac_bits) -> array``: ``x`` rounded to signed fixed point
    Q``int_bits``.``frac_bits``, to the nearest step (ties to even), saturating at the range's ends.

    Behind chapter 02, "Pruning".
    """
    rng = np.random.default_rng(seed)
    for m, n in [(0, 7), (3, 4), (7, 0), (2, 10), (0, 1)] + [(int(rng.integers(0, 8)), int(rng.integers(1, 12)))
                                                            for _ in range(10)]:
        fmt = numerics.FixedPointFormat(m, n)
        step = 2.0 ** -n
        x = rng.uniform(fmt.min * 1.5 - 1, fmt.max * 1.5 + 1, size=500)
        ties = (np.arange(-8, 8) + 0.5) * step                        # exactly half-way between two steps
        x = np.concatenate([x, ties[(ties > fmt.min) & (ties < fmt.max)], [fmt.min, fmt.max, 0.0]])
        got = np.asarray(fn(x.copy(), m, n), dtype=float)
        if got.shape != x.shape:
            fail(f"return an array of x's shape {x.shape}.")
        want = numerics.round_to_format(x, fmt)
        if np.array_equal(got, want):
            continue
        bad = np.flatnonzero(got != want)[0]
        v = x[bad]
        where = f"Q{m}.{n}, x = {float(v)!r}: you return {float(got[bad])!r}"
        if v > fmt.max or v < fmt.min:
            fail(f"{where}; a value beyond the range saturates to the nearest end, "
                  f"−2^{m} or 2^{m} − 2^−{n}.")
        if np.isclose(abs(v / step) % 1, 0.5):
            fail(f"{where}; a value exactly half-way between two steps rounds to the even one.")
        if abs(got[bad] - v) > step / 2:
            fail(f"{where}, more than half a step (2^−{n} / 2) away: round to the nearest multiple of 2^−{n}.")
        fail(f"{where}: every result must be a multiple of 2^−{n} within the range.")
    return "fixed-point rounding: all checks passed"
