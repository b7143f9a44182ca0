"""Huffman coding and sparse encoding — chapter 4, "Huffman coding and Deep Compression".

Implements the last two stages of Han, Mao & Dally, "Deep Compression:
Compressing Deep Neural Networks with Pruning, Trained Quantization and Huffman
Coding", ICLR 2016: the relative-index sparse format of §4 (Figure 2) and the
Huffman coding of §5, plus fixed-width bit packing for the compressed file.

**Huffman coding.** :func:`huffman_code` builds an optimal prefix code from
symbol counts and returns it in *canonical* form (DEFLATE's convention: codes
of equal length are consecutive binary numbers in symbol order, shorter codes
come first). A canonical code is fully described by its code lengths
(:func:`code_lengths` / :func:`canonical_code`), so a file stores one small
integer per symbol instead of a tree. Ties in the Huffman merge are broken
by node order (symbols first, by value; then merged nodes, oldest first), so
the same counts always give the same code. A lone symbol gets the
1-bit code ``"0"``. :func:`huffman_encode` packs codewords MSB-first into
bytes; :func:`huffman_decode` is its bit-exact inverse, driven by a lookup
table on the next ``min(max_len, 16)`` bits.

>>> code = huffman_code({0: 5, 1: 2, 2: 1, 3: 1})
>>> code
{0: '0', 1: '10', 2: '110', 3: '111'}
>>> data, n_bits = huffman_encode([0, 2, 1, 3, 0], code)    # 0 110 10 111 0
>>> data.hex(), n_bits
('6b80', 10)
>>> huffman_decode(data, n_bits, code_lengths(code), 5).tolist()
[0, 2, 1, 3, 0]

**Relative index.** Deep Compression stores a pruned layer as (index, value)
pairs, where the index is the *gap* to the previous stored entry in a fixed
``index_bits`` width (Figure 2). Here the gap is the number of zeros between
two stored entries (the first entry counts the zeros from the start of the
array), so it lies in ``0 … 2**index_bits − 1`` and entry ``k`` sits at
position ``prev + gap + 1``. The paper's "diff" is a position difference,
this gap plus one (3-bit index: diffs 1 … 8; its Figure 2 prints 1, 3, 8, 3
for the example below). When more than ``2**index_bits − 1`` zeros precede a
non-zero, a *filler* entry — value 0, gap ``2**index_bits − 1`` — is stored at
position ``prev + 2**index_bits``, as often as needed: ``g`` zeros before a
non-zero cost ``g // 2**index_bits`` fillers. Trailing zeros cost nothing (the
decoder knows the length). Zero means "pruned", so encode the weights and
then map the stored values to cluster indexes for the file; a filler's value
decodes to 0 again.

>>> x = [0, 3.4, 0, 0, 0.9] + [0] * 10 + [1.7]           # paper, Figure 2
>>> gaps, values, n_fillers = relative_index_encode(x, 3)
>>> gaps.tolist(), values.tolist(), n_fillers
([1, 2, 7, 2], [3.4, 0.9, 0.0, 1.7], 1)

An array of any shape is flattened in row-major (C) order: that is how torch
lays out a weight, so ``weight.flatten()`` and ``reshape`` are the whole
conversion, and for a ``Linear`` weight of shape ``(out, in)`` it is one row
per output neuron, i.e. the paper's CSR. The stream runs on across row
boundaries, so no row pointers are needed (nor counted). For CSC (EIE's layout, one column per input activation)
encode ``weight.T``. Under the usual model of pruning as independent
Bernoulli(density) draws the order does not change the expected size.
"""
from __future__ import annotations

import heapq
import math
import numbers
from typing import Any, Mapping

import numpy as np

from ._validate import _fail
from .validation import Constraint, Instance, Interval, OneOf, validate_params

__all__ = [
    "huffman_code", "huffman_encode", "huffman_decode", "code_lengths", "canonical_code",
    "entropy_bits", "mean_code_length", "relative_index_encode", "relative_index_decode",
    "expected_fillers_per_nonzero", "pack_bits", "unpack_bits",
]

_TABLE_BITS = 16          # the decoder's lookup table covers codewords up to this length
_CHUNK_BITS = 1 << 23     # bit positions handled per decoder chunk (bounds memory)


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


# ---------------------------------------------------------------------------
# Huffman code construction
# ---------------------------------------------------------------------------

def _huffman_lengths(counts: np.ndarray) -> np.ndarray:
    """Code lengths of an optimal prefix code for positive ``counts`` (in symbol order)."""
    n = counts.size
    if n == 1:
        return np.ones(1, dtype=np.int64)            # a lone symbol still needs one bit
    # Heap of (weight, node id). Leaves are 0..n-1 in symbol order, merged nodes
    # n, n+1, ... in creation order, so equal weights pop in a fixed order.
    heap = [(int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent = [0] * (2 * n - 1)
    node = n
    while len(heap) > 1:
        w1, a = heapq.heappop(heap)
        w2, b = heapq.heappop(heap)
        parent[a] = parent[b] = node
        heapq.heappush(heap, (w1 + w2, node))
        node += 1
    # The root is the last node; every parent was created after its children.
    depth = [0] * (2 * n - 1)
    for i in range(2 * n - 3, -1, -1):
        depth[i] = depth[parent[i]] + 1
    return np.array(depth[:n], dtype=np.int64)


def _canonical(symbols: np.ndarray, lengths: np.ndarray) -> dict[int, str]:
    code: dict[int, str] = {}
    value, prev = 0, int(lengths.min())
    for k in np.lexsort((symbols, lengths)):         # by length, then symbol
        length = int(lengths[k])
        value <<= length - prev                      # next code, left-aligned to the new length
        prev = length
        code[int(symbols[k])] = format(value, f"0{length}b")
        value += 1
    return code


@validate_params(counts=COUNTS)
def huffman_code(counts: Mapping[int, int] | Any) -> dict[int, str]:
    """Optimal prefix code for the given symbol counts, in canonical form.

    Parameters
    ----------
    counts : dict {symbol: count} or 1-D array of int, shape (n_symbols,)
        Non-negative integer counts; for an array, symbol ``i`` has count
        ``counts[i]`` (e.g. ``np.bincount(symbols)``). Symbols with count 0
        get no codeword. At least one count must be positive.

    Returns
    -------
    dict {int: str}
        Codeword of each symbol with a positive count, as a string of '0'
        and '1'. Deterministic: equal counts are tie-broken by symbol.
    """
    symbols, values = _as_counts(counts)
    keep = values > 0
    symbols, values = symbols[keep], values[keep]
    return _canonical(symbols, _huffman_lengths(values))


@validate_params(code=CODE)
def code_lengths(code: Mapping[int, str]) -> dict[int, int]:
    """``{symbol: len(codeword)}`` — all a canonical code needs to be stored."""
    return {s: len(w) for s, w in _as_code(code).items()}


@validate_params(lengths=LENGTHS)
def canonical_code(lengths: Mapping[int, int] | Any) -> dict[int, str]:
    """The canonical prefix code with the given code lengths.

    ``lengths`` is a dict ``{symbol: length}`` or a 1-D array (symbol ``i``
    has length ``lengths[i]``, 0 meaning no codeword). The lengths must obey
    Kraft's inequality. ``canonical_code(code_lengths(huffman_code(c)))``
    returns ``huffman_code(c)``.
    """
    return _canonical(*_as_lengths(lengths))


@validate_params(counts=COUNTS)
def entropy_bits(counts: Mapping[int, int] | Any) -> float:
    """Shannon entropy ``H = −Σ p log2 p`` of the count distribution, bits per symbol."""
    _, values = _as_counts(counts)
    p = values[values > 0] / values.sum()
    return float(-(p * np.log2(p)).sum())


@validate_params(counts=COUNTS, code=CODE)
def mean_code_length(counts: Mapping[int, int] | Any, code: Mapping[int, str]) -> float:
    """Average codeword length ``Σ count·len / Σ count`` in bits per symbol.

    Every symbol with a positive count must have a codeword. For a Huffman
    code, ``H <= mean_code_length < H + 1``.
    """
    symbols, values = _as_counts(counts)
    code = _as_code(code)
    missing = [int(s) for s, c in zip(symbols, values) if c > 0 and int(s) not in code]
    if missing:
        _fail(ValueError, "code", f"a codeword for every counted symbol (missing {missing[:5]})", code)
    lengths = np.array([len(code.get(int(s), "")) for s in symbols], dtype=np.int64)
    return float((values * lengths).sum() / values.sum())


# ---------------------------------------------------------------------------
# Huffman encoding and decoding
# ---------------------------------------------------------------------------

def _code_arrays(code: dict[int, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbols (sorted), lengths, and codeword bits (n_codes, max_len) uint8, zero-padded."""
    symbols = np.array(sorted(code), dtype=np.int64)
    lengths = np.array([len(code[s]) for s in symbols.tolist()], dtype=np.int64)
    bits = np.zeros((symbols.size, int(lengths.max())), dtype=np.uint8)
    for k, s in enumerate(symbols.tolist()):
        bits[k, :lengths[k]] = np.frombuffer(code[s].encode(), dtype=np.uint8) - ord("0")
    return symbols, lengths, bits


def _symbol_index(code_syms: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """Index of each symbol in the sorted ``code_syms`` (clipped; caller checks membership)."""
    lo, span = int(code_syms[0]), int(code_syms[-1]) - int(code_syms[0]) + 1
    if span <= 1 << 20:                              # small alphabet: a direct lookup table
        lut = np.zeros(span, dtype=np.int64)
        lut[code_syms - lo] = np.arange(code_syms.size)
        return lut[np.clip(symbols - lo, 0, span - 1)]
    return np.minimum(np.searchsorted(code_syms, symbols), code_syms.size - 1)


@validate_params(symbols=INTS, code=CODE)
def huffman_encode(symbols: Any, code: Mapping[int, str]) -> tuple[bytes, int]:
    """Concatenate the codewords of ``symbols``, packed MSB-first into bytes.

    Parameters
    ----------
    symbols : array-like of int
        Any shape; read in row-major order. Every value must have a codeword.
    code : dict {int: str}
        A prefix code, e.g. from :func:`huffman_code`.

    Returns
    -------
    (bytes, int)
        The packed stream (the last byte padded with zero bits) and the
        number of meaningful bits, ``Σ len(code[s])``.
    """
    symbols = _int_array("symbols", symbols, "an array of integer symbols", ndim=None).ravel()
    code_syms, lengths, bits = _code_arrays(_as_code(code))
    if symbols.size == 0:
        return b"", 0
    idx_c = _symbol_index(code_syms, symbols)        # (n,) row of each symbol in the code
    bad = code_syms[idx_c] != symbols
    if bad.any():
        _fail(ValueError, "symbols", "all in code", int(symbols[np.argmax(bad)]))
    sym_len = lengths[idx_c]                         # (n,) bits of each codeword
    n_bits = int(sym_len.sum())
    starts = np.cumsum(sym_len) - sym_len            # (n,) first bit of each codeword
    if bits.shape[1] <= 64:
        values = bits.astype(np.uint64) @ (np.uint64(1) << np.arange(bits.shape[1] - 1, -1, -1,
                                                                     dtype=np.uint64))
        values >>= (bits.shape[1] - lengths).astype(np.uint64)   # codeword as an integer
        return _pack_words(values[idx_c], sym_len, starts, n_bits), n_bits
    owner = np.repeat(idx_c, sym_len)                # (n_bits,) code index of each output bit
    offset = np.arange(n_bits, dtype=np.int64) - np.repeat(starts, sym_len)
    return np.packbits(bits[owner, offset]).tobytes(), n_bits


def _pack_words(value: np.ndarray, length: np.ndarray, start: np.ndarray, n_bits: int) -> bytes:
    """Write ``value[i]`` (``length[i]`` <= 64 bits) at bit ``start[i]`` of a big-endian stream.

    Codewords do not overlap, so OR-ing them into 64-bit words is a sum, and a
    codeword touches its own word and at most the next one. Starts are
    increasing, so each word's contributions are contiguous: ``np.add.reduceat``.
    """
    u64 = np.uint64
    word = start >> 6                                # (n,) word holding the first bit
    offset = start & 63                              # bit of that word, from the MSB
    spill = offset + length - 64                     # > 0: bits that go into word + 1
    fits = spill <= 0
    head_shift = np.where(fits, 64 - offset - length, 0).astype(u64)
    tail_shift = np.where(fits, 0, spill).astype(u64)
    head = (value >> tail_shift) << head_shift       # part in `word`
    tail = np.where(fits, u64(0), (value & ((u64(1) << tail_shift) - u64(1)))
                    << (u64(64) - np.where(fits, u64(1), tail_shift)))  # part in `word + 1`
    n_words = (n_bits + 63) // 64
    words = np.zeros(n_words + 1, dtype=u64)
    first = np.flatnonzero(np.diff(word, prepend=-1))       # first codeword of each word
    words[word[first]] += np.add.reduceat(head, first)
    has_tail = np.flatnonzero(~fits)
    words[word[has_tail] + 1] += tail[has_tail]             # at most one spill per word
    return words[:n_words].astype(">u8").tobytes()[:(n_bits + 7) // 8]


def _decode_table(code: dict[int, str], width: int):
    """Lookup on the next ``width`` bits: codeword length (0 = longer or invalid) and index."""
    symbols, lengths, _ = _code_arrays(code)
    table_len = np.zeros(1 << width, dtype=np.uint8)
    table_idx = np.zeros(1 << width, dtype=np.int64)
    long_codes: dict[tuple[int, int], int] = {}
    for k, s in enumerate(symbols.tolist()):
        word, length = code[s], int(lengths[k])
        if length <= width:
            start = int(word, 2) << (width - length)  # every window that begins with `word`
            table_len[start:start + (1 << (width - length))] = length
            table_idx[start:start + (1 << (width - length))] = k
        else:
            long_codes[(length, int(word, 2))] = k
    return symbols, table_len, table_idx, long_codes, int(lengths.max())


def _windows(padded: np.ndarray, b0: int, m: int, width: int) -> np.ndarray:
    """The ``width``-bit value starting at each bit position b0 … b0+m-1 (b0 a multiple of 8)."""
    i0, n_bytes = b0 // 8, -(-m // 8)
    p = padded[i0:i0 + n_bytes + 2].astype(np.uint32)
    word = (p[:n_bytes] << 16) | (p[1:n_bytes + 1] << 8) | p[2:n_bytes + 2]  # 24 bits from byte i
    shifts = (24 - width - np.arange(8, dtype=np.uint32))                     # bit r of the byte
    win = (word[:, None] >> shifts[None, :]) & np.uint32((1 << width) - 1)    # (n_bytes, 8)
    return win.ravel()[:m]


@validate_params(data=BYTES, n_bits=Interval(int, 0, None), code_or_lengths=OneOf(CODE, LENGTHS),
                 n_symbols=Interval(int, 0, None))
def huffman_decode(data: bytes, n_bits: int, code_or_lengths: Any, n_symbols: int) -> np.ndarray:
    """Decode ``n_symbols`` codewords from the first ``n_bits`` bits of ``data``.

    Parameters
    ----------
    data : bytes
        MSB-first packed stream, as returned by :func:`huffman_encode`.
    n_bits : int
        Number of meaningful bits; every codeword must end within them.
    code_or_lengths : dict {int: str}, dict {int: int} or 1-D array of int
        The prefix code itself, or the code lengths of a canonical code (see
        :func:`canonical_code`).
    n_symbols : int
        Number of symbols to decode.

    Returns
    -------
    np.ndarray of int64, shape (n_symbols,)
    """
    data = bytes(data)
    if n_bits > 8 * len(data):
        _fail(ValueError, "n_bits", f"at most the {8 * len(data)} bits of data", n_bits)
    if isinstance(code_or_lengths, Mapping) and code_or_lengths and \
            all(isinstance(v, str) for v in code_or_lengths.values()):
        code = _as_code(code_or_lengths, "code_or_lengths")
    else:
        code = _canonical(*_as_lengths(code_or_lengths, "code_or_lengths"))
    return _decode(data, n_bits, code, n_symbols)


def _decode(data: bytes, n_bits: int, code: dict[int, str], n_symbols: int) -> np.ndarray:
    if n_symbols == 0:
        return np.zeros(0, dtype=np.int64)
    max_len = max(len(w) for w in code.values())
    width = min(max_len, _TABLE_BITS)
    symbols, table_len, table_idx, long_codes, max_len = _decode_table(code, width)
    padded = np.concatenate([np.frombuffer(data, dtype=np.uint8), np.zeros(3, dtype=np.uint8)])

    def slow(pos: int) -> tuple[int, int]:
        # Bit by bit, for codewords longer than the table and for invalid input.
        value = 0
        for length in range(1, max_len + 1):
            q = pos + length - 1
            if q >= n_bits:
                _fail(ValueError, "n_bits", f"enough for {n_symbols} codewords (stream ends "
                      f"inside a codeword at bit {pos})", n_bits)
            value = (value << 1) | ((data[q >> 3] >> (7 - (q & 7))) & 1)
            if length > width and (length, value) in long_codes:
                return long_codes[(length, value)], length
        _fail(ValueError, "data", f"a stream of this code's codewords (none matches at bit {pos})",
              data[pos >> 3:(pos >> 3) + 8])

    out = np.empty(n_symbols, dtype=np.int64)        # indexes into `symbols`
    k, pos = 0, 0
    while k < n_symbols:
        if pos >= n_bits:
            _fail(ValueError, "n_bits", f"enough for {n_symbols} codewords (only {k} fit)", n_bits)
        b0 = (pos // 8) * 8
        m = min(_CHUNK_BITS, n_bits - b0)
        win = _windows(padded, b0, m, width)        # (m,) next `width` bits at each position
        lens = table_len[win].tobytes()              # codeword length starting at each position
        p, k0, run, longs = pos - b0, k, [], {}
        append = run.append
        # The one sequential step: the next codeword starts where this one ends.
        while p < m and k < n_symbols:
            length = lens[p]
            if not length:
                longs[k - k0], length = slow(b0 + p)
            append(length)
            p += length
            k += 1
        steps = np.array(run, dtype=np.int64)
        starts = (pos - b0) + np.cumsum(steps) - steps
        idx = table_idx[win[starts]]
        for j, long_idx in longs.items():
            idx[j] = long_idx
        out[k0:k] = idx
        pos = b0 + p
    if pos > n_bits:
        _fail(ValueError, "n_bits", f"enough for {n_symbols} codewords (the last one ends at bit "
              f"{pos})", n_bits)
    return symbols[out]


# ---------------------------------------------------------------------------
# Relative-index sparse encoding (Deep Compression §4, Figure 2)
# ---------------------------------------------------------------------------

def _numeric_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        _fail(TypeError, name, "an array of numbers (not bool)", value)
    return arr


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
    """Inverse of :func:`pack_bits`: ``count`` integers of ``n_bits`` bits each, as int64."""
    bits = n_bits
    if count * bits > 8 * len(data):
        _fail(ValueError, "count", f"at most {8 * len(data) // bits} for {len(data)} bytes of "
              f"{bits}-bit values", count)
    flat = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))[:count * bits]
    weights = (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))
    return flat.reshape(count, bits).astype(np.int64) @ weights
