"""Chapter 4, Huffman coding and Deep Compression: the checks of its graded exercises.

In ``chapters/04_deep_compression.ipynb``:

- ``check_huffman_code`` tests the reader's ``my_huffman_code``;
- ``check_relative_index`` tests the reader's ``my_relative_index``.
"""
from __future__ import annotations

import numpy as np

from .. import coding
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_huffman_code(fn, seed: int = 404) -> str:
    """Chapter 4: ``fn(counts: dict symbol -> count) -> dict symbol -> '0'/'1' string``, an optimal prefix code.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    rng = np.random.default_rng(seed)
    cases = [{0: 5, 1: 2, 2: 1, 3: 1}, {7: 1, 9: 1}]
    cases += [{int(s): int(c) for s, c in enumerate(rng.integers(1, 1000, size=n))} for n in (3, 16, 40)]
    cases.append({int(s): int(c) for s, c in enumerate(rng.geometric(0.3, size=32))})
    for counts in cases:
        code = fn(dict(counts))
        if not isinstance(code, dict) or set(code) != set(counts):
            fail("return a dict with one codeword per symbol of counts.")
        words = sorted(code.values())
        if any(not w or set(w) - {"0", "1"} for w in words):
            fail("codewords are non-empty strings of '0' and '1'.")
        if any(b.startswith(a) for a, b in zip(words, words[1:])):
            fail("one codeword is a prefix of another: the decoder could not tell where a symbol ends.")
        ours = coding.mean_code_length(counts, coding.huffman_code(counts))
        theirs = coding.mean_code_length(counts, code)
        if theirs > ours + 1e-9:
            fail(f"the code is decodable but not optimal: {theirs:.4f} bits per symbol on average where "
                  f"{ours:.4f} is possible. Merge the two least frequent nodes, repeatedly.")
        symbols = rng.choice(list(counts), size=200)
        data, n_bits = coding.huffman_encode(symbols, code)
        if n_bits != sum(len(code[int(s)]) for s in symbols):
            fail("encoding must spend exactly len(codeword) bits per symbol.")
        if not np.array_equal(coding.huffman_decode(data, n_bits, code, len(symbols)), symbols):
            fail("a message encoded with your code does not decode back to itself.")
    return "Huffman code: prefix-free and optimal on every case"


@validate_params(fn=Callable(), seed=Seed())
def check_relative_index(fn, seed: int = 505) -> str:
    """Chapter 4: ``fn(weight_1d, index_bits) -> (gaps, values)`` with filler zeros, as Deep Compression.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    rng = np.random.default_rng(seed)
    for n, density, bits in [(16, 0.3, 3), (200, 0.05, 3), (500, 0.02, 4), (64, 1.0, 2), (40, 0.0, 3), (300, 0.1, 1)]:
        w = np.where(rng.random(n) < density, rng.normal(size=n), 0.0)
        gaps, values = (np.asarray(a) for a in fn(w.copy(), bits))
        if gaps.shape != values.shape or gaps.ndim != 1:
            fail("return two 1-D arrays of the same length: the gap before each stored entry, and its value.")
        if gaps.size and (gaps.min() < 0 or gaps.max() >= 2 ** bits):
            fail(f"with index_bits={bits} a gap must fit in 0 … {2 ** bits - 1}; "
                  f"got gaps from {gaps.min()} to {gaps.max()}. Insert a filler zero when a gap is too long.")
        if not np.array_equal(coding.relative_index_decode(gaps, values, n), w):
            fail("decoding your (gaps, values) does not give the weights back: entry k sits at "
                  "previous position + gap + 1 (the first counts from -1).")
        ref, _, _ = coding.relative_index_encode(w, bits)
        if gaps.size > ref.size:
            fail(f"you store {gaps.size} entries where {ref.size} suffice: add a filler only when the "
                  "gap does not fit, and each filler should skip as far as the width allows.")
    return "relative index: round trip exact and no entry wasted on every case"
