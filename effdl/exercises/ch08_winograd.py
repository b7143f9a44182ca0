"""Chapter 8, Winograd convolution: the checks of its graded exercises.

In ``chapters/08_winograd.ipynb``:

- ``check_winograd_f23`` tests the reader's ``my_winograd_f23``;
- ``check_winograd_conv`` tests the reader's ``my_winograd_conv``.
"""
from __future__ import annotations

import numpy as np

from ._common import fail
from ..validation import Callable, Seed, validate_params


class _Counted:
    """A number that counts the multiplications of two non-constant operands it takes part in."""

    __slots__ = ("value", "counter")

    def __init__(self, value, counter):
        self.value, self.counter = float(value), counter

    @staticmethod
    def _unwrap(other):
        return other.value if isinstance(other, _Counted) else other

    def _new(self, value):
        return _Counted(value, self.counter)

    def __add__(self, other):
        return self._new(self.value + self._unwrap(other))

    __radd__ = __add__

    def __sub__(self, other):
        return self._new(self.value - self._unwrap(other))

    def __rsub__(self, other):
        return self._new(self._unwrap(other) - self.value)

    def __neg__(self):
        return self._new(-self.value)

    def __pos__(self):
        return self

    def conjugate(self):                      # NumPy's object-dtype dot products ask for it
        return self

    def __mul__(self, other):
        if isinstance(other, _Counted):
            self.counter[0] += 1
        return self._new(self.value * self._unwrap(other))

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, _Counted):
            self.counter[0] += 1
        return self._new(self.value / self._unwrap(other))

    def __rtruediv__(self, other):
        self.counter[0] += 1
        return self._new(self._unwrap(other) / self.value)


def _count_mults(fn, *arrays):
    """Call ``fn`` on object arrays of counted numbers; return (result as float array, multiplications)."""
    counter = [0]
    wrapped = []
    for a in arrays:
        w = np.empty(a.shape, dtype=object)
        for i, v in np.ndenumerate(a):
            w[i] = _Counted(v, counter)
        wrapped.append(w)
    try:
        out = fn(*wrapped)
    except (TypeError, ValueError) as err:
        fail("the check counts your multiplications by passing NumPy arrays of dtype=object; your function "
              f"failed on them ({type(err).__name__}: {err}). Use +, −, * and / on the array elements or "
              "NumPy products (@, *, np.pad), keep the input's dtype for new arrays, and avoid float().")
    values = np.vectorize(lambda v: v.value if isinstance(v, _Counted) else float(v), otypes=[float])
    return values(np.asarray(out, dtype=object)), counter[0]


@validate_params(fn=Callable(), seed=Seed())
def check_winograd_f23(fn, seed: int = 0) -> str:
    """Chapter 8: ``fn(d, g) -> y``: the two outputs of a 3-tap correlation of the 4-vector ``d``
    with ``g`` (``np.correlate(d, g, "valid")``) computed with Winograd's 4 multiplications.

    Behind chapter 02, "Pruning".
    """
    rng = np.random.default_rng(seed)
    for _ in range(20):
        d, g = rng.normal(size=4), rng.normal(size=3)
        y = np.asarray(fn(d.copy(), g.copy()), dtype=float)
        if y.shape != (2,):
            fail("return the two outputs, shape (2,).")
        if not np.allclose(y, np.correlate(d, g, "valid")):
            fail("your outputs differ from np.correlate(d, g, 'valid'): y[i] = d[i]·g[0] + d[i+1]·g[1] + d[i+2]·g[2].")
    y, n_mults = _count_mults(fn, d, g)
    if not np.allclose(y, np.correlate(d, g, "valid")):
        fail("on arrays of dtype=object your outputs differ from np.correlate(d, g, 'valid').")
    if n_mults > 4:
        fail(f"correct, but with {n_mults} multiplications of data by filter values; F(2, 3) needs only 4 "
              "(multiplications by constants such as ½ do not count).")
    return f"F(2, 3): correct with {n_mults} multiplications"


@validate_params(fn=Callable(), seed=Seed())
def check_winograd_conv(fn, seed: int = 0) -> str:
    """Chapter 8: ``fn(x, g) -> y``, the valid 3×3 correlation of one channel ``x`` (H, W) with ``g``,
    shape (H − 2, W − 2), computed tile by tile with F(2×2, 3×3) (edge tiles padded).

    Behind chapter 02, "Pruning".
    """
    # deferred: scipy.signal takes about 0.6 s to import, and every chapter imports effdl.exercises
    from scipy.signal import correlate2d

    rng = np.random.default_rng(seed)
    sizes = [(4, 4), (3, 3), (5, 7), (10, 10), (9, 4)] + [tuple(int(v) for v in rng.integers(3, 17, size=2))
                                                           for _ in range(6)]
    for h, w in sizes:
        x, g = rng.normal(size=(h, w)), rng.normal(size=(3, 3))
        y = np.asarray(fn(x.copy(), g.copy()), dtype=float)
        if y.shape != (h - 2, w - 2):
            fail(f"a {h}×{w} input gives a ({h - 2}, {w - 2}) valid output; got {y.shape}. "
                  "Crop the padded edge tiles.")
        if not np.allclose(y, correlate2d(x, g, "valid"), atol=1e-9):
            fail(f"for a {h}×{w} input your output differs from the direct correlation: each 2×2 output tile "
                  "reads the 4×4 input tile starting at its top-left corner; pad the input with zeros so the "
                  "last tiles are whole.")
    for h, w in [(6, 6), (7, 5)]:
        x, g = rng.normal(size=(h, w)), rng.normal(size=(3, 3))
        y, n_mults = _count_mults(fn, x, g)
        if not np.allclose(y, correlate2d(x, g, "valid"), atol=1e-9):
            fail("on arrays of dtype=object your output differs from the direct correlation.")
        tiles = -(-(h - 2) // 2) * -(-(w - 2) // 2)
        if n_mults > 16 * tiles:
            fail(f"a {h}×{w} input has {tiles} output tiles, at most 16 multiplications each with Winograd; you "
                  f"use {n_mults}. Transform the filter once (G g Gᵀ) and each input tile (Bᵀ d B), then "
                  "multiply element-wise.")
    return "Winograd F(2×2, 3×3) convolution: all checks passed"
