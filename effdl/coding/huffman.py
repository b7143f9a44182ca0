"""Huffman codes in canonical form: construction, encoding and a table-driven decoder (Deep Compression §5)."""
from __future__ import annotations

import heapq
from typing import Any, Mapping

import numpy as np

from .._validate import _fail
from ..validation import Interval, OneOf, validate_params
from .checks import BYTES, CODE, COUNTS, INTS, LENGTHS, _as_code, _as_counts, _as_lengths, _int_array


_TABLE_BITS = 16          # the decoder's lookup table covers codewords up to this length
_CHUNK_BITS = 1 << 23     # bit positions handled per decoder chunk (bounds memory)


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

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    symbols, values = _as_counts(counts)
    keep = values > 0
    symbols, values = symbols[keep], values[keep]
    return _canonical(symbols, _huffman_lengths(values))


@validate_params(code=CODE)
def code_lengths(code: Mapping[int, str]) -> dict[int, int]:
    """``{symbol: len(codeword)}`` — all a canonical code needs to be stored.

    Behind chapter 04, "Huffman coding and Deep Compression".
    """
    return {s: len(w) for s, w in _as_code(code).items()}


@validate_params(lengths=LENGTHS)
def canonical_code(lengths: Mapping[int, int] | Any) -> dict[int, str]:
    """The canonical prefix code with the given code lengths.

    ``lengths`` is a dict ``{symbol: length}`` or a 1-D array (symbol ``i``
    has length ``lengths[i]``, 0 meaning no codeword). The lengths must obey
    Kraft's inequality. ``canonical_code(code_lengths(huffman_code(c)))``
    returns ``huffman_code(c)``.

    Behind chapter 04, "Huffman coding and Deep Compression".
    """
    return _canonical(*_as_lengths(lengths))


@validate_params(counts=COUNTS)
def entropy_bits(counts: Mapping[int, int] | Any) -> float:
    """Shannon entropy ``H = −Σ p log2 p`` of the count distribution, bits per symbol.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    _, values = _as_counts(counts)
    p = values[values > 0] / values.sum()
    return float(-(p * np.log2(p)).sum())


@validate_params(counts=COUNTS, code=CODE)
def mean_code_length(counts: Mapping[int, int] | Any, code: Mapping[int, str]) -> float:
    """Average codeword length ``Σ count·len / Σ count`` in bits per symbol.

    Every symbol with a positive count must have a codeword. For a Huffman
    code, ``H <= mean_code_length < H + 1``.

    Taught in chapter 04, "Huffman coding and Deep Compression".
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

    Taught in chapter 04, "Huffman coding and Deep Compression".
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

    Taught in chapter 04, "Huffman coding and Deep Compression".
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
