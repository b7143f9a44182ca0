"""The relative-index sparse format with filler entries (Deep Compression §4, Figure 2) and fixed-width bit packing."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import _fail
from ..validation import Interval, validate_params
from .checks import BYTES, INTS_1D, NUMBERS, N_BITS_INDEX, N_BITS_PACKED, _int_array, _numeric_array


# ---------------------------------------------------------------------------
# Relative-index sparse encoding (Deep Compression §4, Figure 2)
# ---------------------------------------------------------------------------

@validate_params(weight=NUMBERS, index_bits=N_BITS_INDEX)
def relative_index_encode(weight: Any, index_bits: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Relative-index (gap, value) encoding of the non-zeros of ``weight``.

    Parameters
    ----------
    weight : array-like of numbers, any shape
        Flattened in row-major (C) order; 0 marks a pruned entry.
    index_bits : int in [1, 16]
        Width of a stored gap; gaps range over ``0 … 2**index_bits − 1``.

    Returns
    -------
    gaps : np.ndarray of int64, shape (n_entries,)
        Zeros skipped before each stored entry (since the previous one).
    values : np.ndarray, shape (n_entries,), dtype of ``weight``
        The non-zeros in order, with a 0 for each filler entry.
    n_fillers : int
        Number of filler zeros, ``Σ g // 2**index_bits`` over the gaps ``g``
        before the non-zeros.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    arr = _numeric_array("weight", weight).ravel()
    span = 1 << index_bits                           # a filler sits `span` positions on
    nz = np.flatnonzero(arr)                         # (n_nonzero,) positions of stored values
    gap = np.diff(nz, prepend=-1) - 1                # zeros before each non-zero
    fillers = gap // span                            # fillers bridging each gap
    n_entries = nz.size + int(fillers.sum())
    where = np.cumsum(fillers + 1) - 1               # entry index of each non-zero
    gaps = np.full(n_entries, span - 1, dtype=np.int64)   # fillers: the largest gap
    gaps[where] = gap - fillers * span               # zeros left after the last filler
    values = np.zeros(n_entries, dtype=arr.dtype)
    values[where] = arr[nz]
    return gaps, values, int(fillers.sum())


@validate_params(gaps=INTS_1D, values=NUMBERS, length=Interval(int, 0, None))
def relative_index_decode(gaps: Any, values: Any, length: int) -> np.ndarray:
    """Inverse of :func:`relative_index_encode`: the flat array of ``length`` entries.

    Parameters
    ----------
    gaps : 1-D array of non-negative int
    values : 1-D array of numbers, same length as ``gaps``
    length : int
        Length of the flat array (the stream does not record trailing zeros).
        Reshape the result (row-major) to recover a tensor.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    gaps = _int_array("gaps", gaps, "a 1-D array of non-negative integer gaps")
    values = _numeric_array("values", values)
    if values.ndim != 1 or values.size != gaps.size:
        _fail(ValueError, "values", f"a 1-D array as long as gaps ({gaps.size})", values)
    if gaps.size and gaps.min() < 0:
        _fail(ValueError, "gaps", "non-negative", gaps)
    position = np.cumsum(gaps + 1) - 1               # entry k sits at prev + gap + 1
    if position.size and position[-1] >= length:
        _fail(ValueError, "length", f"larger than the last stored position ({int(position[-1])})",
              length)
    out = np.zeros(length, dtype=values.dtype)
    out[position] = values
    return out


@validate_params(density=Interval(float, 0, 1, closed="right"), index_bits=N_BITS_INDEX)
def expected_fillers_per_nonzero(density: float, index_bits: int) -> float:
    """Expected filler zeros per non-zero when positions are i.i.d. Bernoulli(density).

    The zeros before a non-zero number ``G`` with ``P(G >= g) = (1−d)**g``,
    and ``G`` zeros cost ``floor(G / 2**b)`` fillers, so the expectation is
    ``Σ_{j>=1} P(G >= j·2**b) = q / (1 − q)`` with ``q = (1−d)**(2**b)``.

    >>> round(expected_fillers_per_nonzero(0.09, 4), 4)    # AlexNet fc6
    0.2839

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    # q = (1 − d)^(2^b) and 1 − q, through log1p/expm1: exact enough for a tiny density
    # (1 − 1e-17 is 1.0 in floating point, which would make 1 − q zero)
    log_q = (1 << index_bits) * math.log1p(-density) if density < 1 else -math.inf
    return math.exp(log_q) / -math.expm1(log_q)


# ---------------------------------------------------------------------------
# Fixed-width bit packing
# ---------------------------------------------------------------------------

@validate_params(values=INTS_1D, n_bits=N_BITS_PACKED)
def pack_bits(values: Any, n_bits: int) -> bytes:
    """Pack non-negative integers, ``n_bits`` each, MSB-first into bytes (zero-padded).

    >>> pack_bits([1, 2, 3], 4)
    b'\\x120'

    Behind chapter 04, "Huffman coding and Deep Compression".
    """
    values = _int_array("values", values, "a 1-D array of non-negative integers")
    bits = n_bits
    if values.size and (values.min() < 0 or values.max() >= 1 << bits):
        _fail(ValueError, "values", f"in [0, {(1 << bits) - 1}] for {bits} bits",
              int(values.min() if values.min() < 0 else values.max()))
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)            # MSB first
    matrix = ((values[:, None] >> shifts[None, :]) & 1).astype(np.uint8)  # (n, bits)
    return np.packbits(matrix.ravel()).tobytes()


@validate_params(data=BYTES, n_bits=N_BITS_PACKED, count=Interval(int, 0, None))
def unpack_bits(data: bytes, n_bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``count`` integers of ``n_bits`` bits each, as int64.

    Behind chapter 04, "Huffman coding and Deep Compression".
    """
    bits = n_bits
    if count * bits > 8 * len(data):
        _fail(ValueError, "count", f"at most {8 * len(data) // bits} for {len(data)} bytes of "
              f"{bits}-bit values", count)
    flat = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))[:count * bits]
    weights = (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))
    return flat.reshape(count, bits).astype(np.int64) @ weights
