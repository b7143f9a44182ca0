"""Tests for effdl.coding: Huffman round trips, prefix-freeness and optimality
(against a heapq reference and, for small alphabets, brute force over all code
lengths), determinism; relative-index round trips, the paper's Figure 2
example and the filler formula against the exact encoder; bit packing; bad inputs."""
import doctest
import heapq
import itertools
import math

import numpy as np
import pytest

import effdl.coding as coding
from effdl.coding import (canonical_code, code_lengths, entropy_bits, expected_fillers_per_nonzero,
                          huffman_code, huffman_decode, huffman_encode, mean_code_length, pack_bits,
                          relative_index_decode, relative_index_encode, unpack_bits)


def test_docstring_examples():
    assert doctest.testmod(coding).failed == 0


# ---------------------------------------------------------------- references

def reference_huffman_cost(counts):
    """Σ count·length of an optimal code: the sum of all merged weights (textbook Huffman)."""
    heap = [c for c in counts if c > 0]
    if len(heap) == 1:
        return heap[0]                    # a lone symbol costs 1 bit each
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        cost += merged
        heapq.heappush(heap, merged)
    return cost


def brute_force_cost(counts):
    """Smallest Σ count·length over all length vectors obeying Kraft's inequality."""
    n = len(counts)
    best = math.inf
    for lengths in itertools.product(range(1, n), repeat=n):
        if sum(2.0 ** -l for l in lengths) <= 1:
            best = min(best, sum(c * l for c, l in zip(counts, lengths)))
    return best


def cost(counts, code):
    return sum(c * len(code[s]) for s, c in enumerate(counts) if c > 0)


def is_prefix_free(words):
    return not any(a != b and b.startswith(a) for a in words for b in words)


def skewed(rng, n, n_symbols=32):
    p = 0.7 ** np.arange(n_symbols)
    return rng.choice(n_symbols, size=n, p=p / p.sum())


# ---------------------------------------------------------------- Huffman

@pytest.mark.parametrize("kind", ["uniform", "skewed", "laplace", "two", "one"])
def test_huffman_round_trip(kind):
    rng = np.random.default_rng(0)
    x = {"uniform": lambda: rng.integers(0, 32, 20_000),
         "skewed": lambda: skewed(rng, 20_000),
         "laplace": lambda: np.round(rng.laplace(0, 4, 20_000)).astype(int),   # negative symbols
         "two": lambda: rng.integers(5, 7, 1000),
         "one": lambda: np.full(50, 9)}[kind]()
    counts = dict(zip(*np.unique(x, return_counts=True)))
    code = huffman_code({int(s): int(c) for s, c in counts.items()})
    data, n_bits = huffman_encode(x, code)
    assert n_bits == sum(len(code[int(s)]) for s in x)
    assert len(data) == (n_bits + 7) // 8
    for table in (code, code_lengths(code)):
        np.testing.assert_array_equal(huffman_decode(data, n_bits, table, x.size), x)


def test_single_symbol_gets_one_bit_and_two_symbols_get_zero_and_one():
    assert huffman_code({7: 3}) == {7: "0"}
    assert huffman_code([0, 4, 0]) == {1: "0"}
    assert huffman_code({3: 10, 8: 1}) == {3: "0", 8: "1"}
    data, n_bits = huffman_encode([7, 7, 7], {7: "0"})
    assert (data, n_bits) == (b"\x00", 3)


def test_bit_order_is_msb_first():
    code = {0: "0", 1: "10", 2: "11"}
    assert huffman_encode([1, 2, 2, 0, 0, 1], code) == (bytes([0b10111100, 0b10000000]), 10)


def test_empty_symbols_round_trip_but_empty_counts_fail():
    code = huffman_code([1, 2, 3])
    assert huffman_encode([], code) == (b"", 0)
    assert huffman_decode(b"", 0, code, 0).size == 0
    for counts in ({}, [], [0, 0, 0], {4: 0}):
        with pytest.raises(ValueError, match="counts must be non-empty"):
            huffman_code(counts)


@pytest.mark.parametrize("seed", range(20))
def test_huffman_is_optimal_against_heapq_reference_and_bounded_by_entropy(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 1000, size=rng.integers(2, 60))
    if seed % 2:
        counts[rng.random(counts.size) < 0.3] = 0               # unused symbols get no codeword
    counts[rng.integers(counts.size)] += 1                      # at least one positive
    code = huffman_code(counts)
    assert set(code) == set(np.flatnonzero(counts).tolist())
    assert is_prefix_free(list(code.values()))
    assert cost(counts, code) == reference_huffman_cost(counts.tolist())
    h, mean = entropy_bits(counts), mean_code_length(counts, code)
    assert h - 1e-12 <= mean < h + 1


@pytest.mark.parametrize("counts", [[1, 1], [5, 1, 1], [1, 2, 3, 4], [10, 1, 1, 1, 1],
                                    [3, 3, 3, 3, 3], [20, 9, 5, 2, 1], [1, 1, 2, 3, 5]])
def test_huffman_is_optimal_against_brute_force(counts):
    assert cost(counts, huffman_code(counts)) == brute_force_cost(counts)


def test_huffman_is_deterministic_and_canonical():
    counts = [4, 4, 4, 4, 2, 2, 1, 1]                          # many ties
    code = huffman_code(counts)
    assert all(huffman_code(list(counts)) == code for _ in range(3))
    assert huffman_code(dict(reversed(list(enumerate(counts))))) == code   # dict order is irrelevant
    assert canonical_code(code_lengths(code)) == code
    assert canonical_code([len(code[s]) for s in range(8)]) == code
    # canonical: sorted by (length, symbol), codes are consecutive binary numbers
    order = sorted(code, key=lambda s: (len(code[s]), s))
    values = [int(code[s], 2) << (20 - len(code[s])) for s in order]
    assert values == sorted(values) and values[0] == 0


def test_entropy_and_mean_length_known_values():
    assert entropy_bits([1, 1, 1, 1]) == pytest.approx(2.0)
    assert entropy_bits({3: 2, 9: 1, 11: 1}) == pytest.approx(1.5)
    assert mean_code_length([2, 1, 1], huffman_code([2, 1, 1])) == pytest.approx(1.5)   # dyadic: = H
    assert entropy_bits([0, 5]) == 0.0


def test_long_codewords_beyond_the_decode_table_and_beyond_64_bits():
    fib = [1, 1]
    while len(fib) < 70:
        fib.append(fib[-1] + fib[-2])
    for n in (25, 70):                                          # max length n - 1: 24 and 69 bits
        code = huffman_code(fib[:n])
        assert max(len(w) for w in code.values()) == n - 1
        x = np.concatenate([np.arange(n), np.random.default_rng(n).integers(0, n, 3000), [0, n - 1]])
        data, n_bits = huffman_encode(x, code)
        np.testing.assert_array_equal(huffman_decode(data, n_bits, code_lengths(code), x.size), x)


def test_decode_of_a_million_symbols():
    x = skewed(np.random.default_rng(1), 1_000_000)
    code = huffman_code(np.bincount(x))
    data, n_bits = huffman_encode(x, code)
    np.testing.assert_array_equal(huffman_decode(data, n_bits, code, x.size), x)


def test_decode_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(coding.huffman, "_CHUNK_BITS", 64)          # many chunks, codewords straddling them
    fib = [1, 1]
    while len(fib) < 22:
        fib.append(fib[-1] + fib[-2])
    code = huffman_code(fib)                                  # lengths 1 … 21: some beyond the table
    x = np.concatenate([np.random.default_rng(2).integers(0, 22, 4000), np.arange(22)])
    data, n_bits = huffman_encode(x, code)
    np.testing.assert_array_equal(huffman_decode(data, n_bits, code, x.size), x)


def test_decode_accepts_any_prefix_code_not_only_canonical():
    code = {0: "11", 1: "0", 2: "10"}                          # not canonical
    data, n_bits = huffman_encode([2, 1, 0, 0], code)
    assert huffman_decode(data, n_bits, code, 4).tolist() == [2, 1, 0, 0]


def test_decode_rejects_truncated_and_invalid_streams():
    code = huffman_code([5, 3, 1, 1])
    data, n_bits = huffman_encode([3, 3, 3], code)             # '111' x 3
    with pytest.raises(ValueError, match="n_bits must be enough"):
        huffman_decode(data, n_bits - 1, code, 3)
    with pytest.raises(ValueError, match="n_bits must be enough"):
        huffman_decode(data, n_bits, code, 4)
    with pytest.raises(ValueError, match="data must be a stream"):
        huffman_decode(b"\xff", 8, {0: "0"}, 2)                # '1' is no codeword


# ---------------------------------------------------------------- relative index

def test_paper_figure_2_example():
    # 3-bit index: positions 1, 4 and 15 are non-zero; 10 zeros between 4 and 15 exceed
    # 7, so a filler zero sits at 4 + 8 = 12. Paper's diffs 1, 3, 8, 3 (gap + 1).
    x = np.zeros(16)
    x[[1, 4, 15]] = [3.4, 0.9, 1.7]
    gaps, values, n_fillers = relative_index_encode(x, 3)
    assert gaps.tolist() == [1, 2, 7, 2]
    assert values.tolist() == [3.4, 0.9, 0.0, 1.7]
    assert n_fillers == 1
    np.testing.assert_array_equal(relative_index_decode(gaps, values, 16), x)


@pytest.mark.parametrize("zeros, fillers", [(0, 0), (7, 0), (8, 1), (15, 1), (16, 2), (24, 3)])
def test_gap_of_g_zeros_costs_g_div_8_fillers_at_3_bits(zeros, fillers):
    x = np.array([1.0] + [0.0] * zeros + [2.0])
    gaps, values, n_fillers = relative_index_encode(x, 3)
    assert n_fillers == fillers
    assert gaps.tolist() == [0] + [7] * fillers + [zeros - 8 * fillers]
    assert values.tolist() == [1.0] + [0.0] * fillers + [2.0]


@pytest.mark.parametrize("index_bits", range(1, 9))
def test_relative_index_round_trip(index_bits):
    rng = np.random.default_rng(index_bits)
    for density in (0.005, 0.05, 0.3, 0.9, 1.0):
        x = np.where(rng.random(3000) < density, rng.standard_normal(3000), 0.0).astype(np.float32)
        x[:200] = 0                                             # leading zeros
        x[-300:] = 0                                            # trailing zeros
        x[1000:1700] = 0                                        # a long run
        gaps, values, n_fillers = relative_index_encode(x, index_bits)
        assert gaps.max(initial=0) <= 2 ** index_bits - 1
        assert values.dtype == np.float32
        assert n_fillers == int((values == 0).sum())
        np.testing.assert_array_equal(relative_index_decode(gaps, values, x.size), x)


def test_relative_index_of_a_tensor_is_row_major_and_of_all_zeros_is_empty():
    w = np.array([[0, 5], [6, 0]], dtype=np.int8)
    gaps, values, _ = relative_index_encode(w, 4)
    assert gaps.tolist() == [1, 0] and values.tolist() == [5, 6]
    np.testing.assert_array_equal(relative_index_decode(gaps, values, 4).reshape(2, 2), w)
    gaps, values, n_fillers = relative_index_encode(np.zeros(100), 2)
    assert gaps.size == values.size == n_fillers == 0
    assert relative_index_decode(gaps, values, 100).tolist() == [0.0] * 100


@pytest.mark.parametrize("density, index_bits", [(0.04, 5), (0.09, 4), (0.25, 3), (0.5, 1), (0.1, 2)])
def test_filler_count_matches_the_formula_on_bernoulli_masks(density, index_bits):
    rng = np.random.default_rng(7)
    mask = rng.random(2_000_000) < density
    _, _, n_fillers = relative_index_encode(mask.astype(np.float32), index_bits)
    expected = mask.sum() * expected_fillers_per_nonzero(density, index_bits)
    print(f"d={density} b={index_bits}: {n_fillers} fillers, formula {expected:.0f}")
    assert n_fillers == pytest.approx(expected, rel=0.03)


def test_filler_formula_limits():
    assert expected_fillers_per_nonzero(1.0, 1) == 0.0
    assert expected_fillers_per_nonzero(0.5, 1) == pytest.approx(1 / 3)   # q = 1/4


# ---------------------------------------------------------------- bit packing

@pytest.mark.parametrize("bits", [1, 3, 5, 8, 12, 16])
def test_pack_unpack_round_trip(bits):
    v = np.random.default_rng(bits).integers(0, 2 ** bits, 1001)
    data = pack_bits(v, bits)
    assert len(data) == (1001 * bits + 7) // 8
    np.testing.assert_array_equal(unpack_bits(data, bits, 1001), v)
    assert pack_bits([], bits) == b"" and unpack_bits(b"", bits, 0).size == 0


def test_pack_bits_is_msb_first():
    assert pack_bits([1, 2, 3], 4) == b"\x12\x30"
    assert pack_bits([1, 0, 1], 1) == b"\xa0"


# ---------------------------------------------------------------- bad inputs

CODE = {0: "0", 1: "1"}


@pytest.mark.parametrize("call, exc, match", [
    (lambda: huffman_code({0: -1, 1: 3}), ValueError, "counts must be non-negative"),
    (lambda: huffman_code([1, -2]), ValueError, "counts must be non-negative"),
    (lambda: huffman_code([1.0, 2.0]), TypeError, "counts must be"),
    (lambda: huffman_code([True, False]), TypeError, "counts must be"),
    (lambda: huffman_code({"a": 1}), TypeError, "integer symbols"),
    (lambda: huffman_code({1.5: 1}), TypeError, "integer symbols"),
    (lambda: huffman_code({True: 1}), TypeError, "integer symbols"),
    (lambda: huffman_code({1: 2.5}), TypeError, "integer counts"),
    (lambda: huffman_code([[1, 2]]), ValueError, "counts must be"),
    (lambda: huffman_code("abc"), TypeError, "counts must be"),
    (lambda: entropy_bits([-1, 2]), ValueError, "counts must be non-negative"),
    (lambda: mean_code_length([1, 1, 1], CODE), ValueError, "code must be a codeword"),
    (lambda: huffman_encode([0.5, 1.0], CODE), TypeError, "symbols must be"),
    (lambda: huffman_encode([True], CODE), TypeError, "symbols must be"),
    (lambda: huffman_encode([0, 2], CODE), ValueError, "symbols must be all in code; got 2"),
    (lambda: huffman_encode([0], {0: "0", 1: "01"}), ValueError, "prefix-free"),
    (lambda: huffman_encode([0], {0: "", 1: "1"}), ValueError, "code must be"),
    (lambda: huffman_encode([0], {0: "02"}), ValueError, "code must be"),
    (lambda: huffman_encode([0], {0: 0}), TypeError, "code must be"),
    (lambda: huffman_encode([0], {}), ValueError, "code must be"),
    (lambda: huffman_encode([0], [0, 1]), TypeError, "code must be"),
    (lambda: huffman_decode(b"\x00", 8, {0: "0", 1: 1}, 1), TypeError, "code_or_lengths must be"),
    (lambda: huffman_decode(b"\x00", 8, "01", 1), TypeError, "code_or_lengths must be"),
    (lambda: huffman_decode("01", 2, CODE, 1), TypeError, "data must be bytes"),
    (lambda: huffman_decode(b"\x00", 9, CODE, 1), ValueError, "n_bits must be"),
    (lambda: huffman_decode(b"\x00", -1, CODE, 1), ValueError, "n_bits must be"),
    (lambda: huffman_decode(b"\x00", 8, CODE, 1.0), TypeError, "n_symbols must be an integer"),
    (lambda: huffman_decode(b"\x00", True, CODE, 1), TypeError, "n_bits must be an integer"),
    (lambda: huffman_decode(b"\x00", 8, {0: 1, 1: 1, 2: 1}, 1), ValueError, "Kraft sum"),
    (lambda: huffman_decode(b"\x00", 8, {0: 0}, 1), ValueError, "code_or_lengths must be positive"),
    (lambda: huffman_decode(b"\x00", 8, [0, 0], 1), ValueError, "code_or_lengths must be non-empty"),
    (lambda: canonical_code([1, -1]), ValueError, "lengths must be non-negative"),
    (lambda: canonical_code([1.0, 1.0]), TypeError, "lengths must be"),
    (lambda: code_lengths({0: "0", 1: "00"}), ValueError, "prefix-free"),
    (lambda: relative_index_encode([0, 1], 0), ValueError, r"index_bits must be an integer in \[1, 16\]"),
    (lambda: relative_index_encode([0, 1], 17), ValueError, r"index_bits must be an integer in \[1, 16\]"),
    (lambda: relative_index_encode([0, 1], 4.0), TypeError, "index_bits must be an integer"),
    (lambda: relative_index_encode([0, 1], True), TypeError, "index_bits must be an integer"),
    (lambda: relative_index_encode([True, False], 4), TypeError, "weight must be an array of numbers"),
    (lambda: relative_index_encode(["a"], 4), TypeError, "weight must be an array of numbers"),
    (lambda: relative_index_decode([0, 1], [1.0], 5), ValueError, "values must be a 1-D array as long"),
    (lambda: relative_index_decode([0, -1], [1.0, 2.0], 5), ValueError, "gaps must be non-negative"),
    (lambda: relative_index_decode([0.0], [1.0], 5), TypeError, "gaps must be"),
    (lambda: relative_index_decode([3, 1], [1.0, 2.0], 5), ValueError, "length must be larger"),
    (lambda: relative_index_decode([0], [1.0], -1), ValueError, "length must be"),
    (lambda: expected_fillers_per_nonzero(0.0, 4), ValueError, "density must be"),
    (lambda: expected_fillers_per_nonzero(1.5, 4), ValueError, "density must be"),
    (lambda: expected_fillers_per_nonzero(0.5, 0), ValueError, "index_bits must be"),
    (lambda: pack_bits([1, 2], 0), ValueError, r"bits must be an integer in \[1, 16\]"),
    (lambda: pack_bits([1, 2], 17), ValueError, r"bits must be an integer in \[1, 16\]"),
    (lambda: pack_bits([1, 2], 2.0), TypeError, "bits must be an integer"),
    (lambda: pack_bits([4], 2), ValueError, r"values must be in \[0, 3\]"),
    (lambda: pack_bits([-1], 2), ValueError, r"values must be in \[0, 3\]"),
    (lambda: pack_bits([0.5], 2), TypeError, "values must be"),
    (lambda: unpack_bits(b"\x00", 3, 3), ValueError, "count must be at most 2"),
    (lambda: unpack_bits(b"\x00", 17, 0), ValueError, "bits must be"),
    (lambda: unpack_bits([0], 3, 1), TypeError, "data must be bytes"),
])
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
