"""Parsers and constraints for the coding functions' arguments (counts, codes, code lengths, arrays)."""
from __future__ import annotations

import numbers
from typing import Any, Mapping

import numpy as np

from .._validate import _fail
from ..validation import Constraint, Instance, Interval


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int_array(name: str, value: Any, what: str, *, ndim: int | None = 1) -> np.ndarray:
    """``value`` as an int64 array of integers (TypeError for floats, bools, strings)."""
    arr = np.asarray(value)
    if arr.dtype == object and arr.size and all(_is_int(v) for v in arr.ravel()):
        arr = arr.astype(np.int64)
    if arr.size == 0 and arr.dtype.kind == "f":     # [] has dtype float64
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        _fail(TypeError, name, what, value)
    if ndim is not None and arr.ndim != ndim:
        _fail(ValueError, name, what, value)
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        _fail(ValueError, name, what, value)
    return arr.astype(np.int64, copy=False)


def _as_counts(counts: Any, name: str = "counts") -> tuple[np.ndarray, np.ndarray]:
    """(symbols, counts), both int64 and sorted by symbol; zero counts kept."""
    what = "a dict {symbol: count} or a 1-D array of non-negative integer counts"
    if isinstance(counts, Mapping):
        if not all(_is_int(s) for s in counts):
            _fail(TypeError, name, "a dict with integer symbols as keys", counts)
        if not all(_is_int(c) for c in counts.values()):
            _fail(TypeError, name, "a dict with integer counts as values", counts)
        symbols = np.array(sorted(int(s) for s in counts), dtype=np.int64)
        values = np.array([int(counts[s]) for s in sorted(counts)], dtype=np.int64)
    else:
        values = _int_array(name, counts, what)
        symbols = np.arange(values.size, dtype=np.int64)
    if values.size and values.min() < 0:
        _fail(ValueError, name, "non-negative", counts)
    if not values.size or values.max() == 0:
        _fail(ValueError, name, "non-empty with at least one positive count", counts)
    return symbols, values


def _as_code(code: Any, name: str = "code") -> dict[int, str]:
    """Check a prefix code {symbol: '0101'}; return it with plain-int keys."""
    what = "a non-empty dict {integer symbol: codeword of '0'/'1' characters}"
    if not isinstance(code, Mapping) or not code:
        _fail(TypeError if not isinstance(code, Mapping) else ValueError, name, what, code)
    if not all(_is_int(s) for s in code) or not all(isinstance(w, str) for w in code.values()):
        _fail(TypeError, name, what, code)
    if any(not w or set(w) - {"0", "1"} for w in code.values()):
        _fail(ValueError, name, what, code)
    words = sorted(code.values())
    # In sorted order, a codeword that is a prefix of others is followed by one of them.
    for a, b in zip(words, words[1:]):
        if b.startswith(a):
            _fail(ValueError, name, f"prefix-free ({a!r} is a prefix of {b!r})", code)
    return {int(s): w for s, w in code.items()}


def _as_lengths(lengths: Any, name: str = "lengths") -> tuple[np.ndarray, np.ndarray]:
    """(symbols, lengths) with lengths >= 1, from a dict or a 1-D array (0 = unused)."""
    what = "a dict {symbol: code length} or a 1-D array of code lengths (0 = unused)"
    if isinstance(lengths, Mapping):
        if not all(_is_int(s) for s in lengths) or not all(_is_int(v) for v in lengths.values()):
            _fail(TypeError, name, what, lengths)
        symbols = np.array(sorted(int(s) for s in lengths), dtype=np.int64)
        values = np.array([int(lengths[s]) for s in sorted(lengths)], dtype=np.int64)
        if values.size and values.min() < 1:
            _fail(ValueError, name, "positive for every symbol of a dict", lengths)
    else:
        values = _int_array(name, lengths, what)
        if values.size and values.min() < 0:
            _fail(ValueError, name, "non-negative", lengths)
        symbols = np.flatnonzero(values).astype(np.int64)
        values = values[symbols]
    if not values.size:
        _fail(ValueError, name, "non-empty (at least one symbol with a length)", lengths)
    # Kraft's inequality, exactly, in integers: sum 2**(L_max - L) <= 2**L_max.
    top = int(values.max())
    if sum(1 << (top - int(v)) for v in values) > (1 << top):
        _fail(ValueError, name, "lengths of a prefix code (Kraft sum <= 1)", lengths)
    return symbols, values


class _Parsed(Constraint):
    """A value one of this module's parsers accepts (they raise the messages); passed on unchanged."""

    def __init__(self, parse, invalid):
        self.parse, self.invalid = parse, invalid

    def check(self, name, value):
        self.parse(value, name)
        return value

    def invalid_values(self):
        return self.invalid


COUNTS = _Parsed(lambda v, name: _as_counts(v, name),
                 [("abc", TypeError), ({1.5: 2}, TypeError), ({1: -1}, ValueError), ([0, 0], ValueError),
                  ([], ValueError), (None, TypeError)])
CODE = _Parsed(lambda v, name: _as_code(v, name),
               [({}, ValueError), ([1], TypeError), ({0: "0", 1: "01"}, ValueError), ({0: "2"}, ValueError),
                (None, TypeError)])
LENGTHS = _Parsed(lambda v, name: _as_lengths(v, name),
                  [({0: 0}, ValueError), ([1, 1, 1], ValueError), ([], ValueError), ("x", TypeError)])
INTS = _Parsed(lambda v, name: _int_array(name, v, "an array of integers", ndim=None),
               [([1.5], TypeError), ("ab", TypeError), (None, TypeError)])
INTS_1D = _Parsed(lambda v, name: _int_array(name, v, "a 1-D array of integers"),
                  [([1.5], TypeError), ([[1]], ValueError), (None, TypeError)])
NUMBERS = _Parsed(lambda v, name: _numeric_array(name, v), [("ab", TypeError), ([True], TypeError)])
BYTES = Instance((bytes, bytearray, memoryview), "bytes")
N_BITS_INDEX = Interval(int, 1, 16)
N_BITS_PACKED = Interval(int, 1, 16)



def _numeric_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        _fail(TypeError, name, "an array of numbers (not bool)", value)
    return arr
