"""Tests for effdl.numerics: oracles (numpy.finfo/iinfo, torch.finfo, numpy and
torch casts bit for bit), an exhaustive nearest-value oracle for small formats,
round trips, known bit patterns and bad inputs."""
import doctest
import itertools
import json
import math

import numpy as np
import pytest
import torch

import effdl.numerics as nm
from effdl.numerics import (BF16, FP8_E5M2, FP16, FP32, INT8, INT16, INT32, Q3_4, UINT8, FixedPointFormat,
                            FloatFormat, IntFormat, bit_fields, decode_bits, format_table, get_format,
                            numbers_report, quantization_error, round_to_format)


def test_docstring_examples():
    assert doctest.testmod(nm).failed == 0


# ---------------------------------------------------------------- format properties

@pytest.mark.parametrize("fmt, np_type", [(FP32, np.float32), (FP16, np.float16), (FloatFormat("fp64", 11, 52), np.float64)])
def test_float_properties_match_numpy_finfo(fmt, np_type):
    fi = np.finfo(np_type)
    assert fmt.bits == fi.bits
    assert fmt.mantissa_bits == fi.nmant and fmt.exponent_bits == fi.nexp
    assert fmt.max == float(fi.max)
    assert fmt.min_normal == float(fi.smallest_normal)
    assert fmt.min_subnormal == float(fi.smallest_subnormal)
    assert fmt.eps == float(fi.eps)
    assert fmt.emax == fi.maxexp - 1 and fmt.emin == fi.minexp


@pytest.mark.parametrize("fmt, torch_type", [(BF16, torch.bfloat16), (FP16, torch.float16),
                                             (FP32, torch.float32), (FP8_E5M2, torch.float8_e5m2)])
def test_float_properties_match_torch_finfo(fmt, torch_type):
    ti = torch.finfo(torch_type)
    assert (fmt.bits, fmt.max, fmt.min_normal, fmt.eps) == (ti.bits, ti.max, ti.smallest_normal, ti.eps)


def test_fp16_textbook_values():
    assert FP16.max == 65504.0
    assert FP16.min_normal == pytest.approx(6.1035e-05, rel=1e-4)
    assert FP16.min_subnormal == 2.0 ** -24
    assert FP16.bias == 15 and BF16.bias == FP32.bias == 127


def test_ieee_style_e4m3_is_not_ocp_e4m3():
    e4m3 = FloatFormat("e4m3_ieee", 4, 3)
    assert (e4m3.bits, e4m3.max, e4m3.min_normal, e4m3.min_subnormal) == (8, 240.0, 2.0 ** -6, 2.0 ** -9)
    assert e4m3.max != torch.finfo(torch.float8_e4m3fn).max  # OCP e4m3fn: 448, no inf


@pytest.mark.parametrize("fmt, np_type", [(INT32, np.int32), (INT16, np.int16), (INT8, np.int8), (UINT8, np.uint8)])
def test_int_properties_match_numpy_iinfo(fmt, np_type):
    ii = np.iinfo(np_type)
    assert (fmt.min, fmt.max, fmt.bits, fmt.resolution) == (ii.min, ii.max, ii.bits, 1)


@pytest.mark.parametrize("int_bits, frac_bits, signed, bits, lo, hi", [
    (3, 4, True, 8, -8.0, 7.9375),
    (0, 7, True, 8, -1.0, 1 - 2 ** -7),   # "Q7"
    (7, 8, True, 16, -128.0, 128 - 2 ** -8),
    (3, 4, False, 7, 0.0, 7.9375),
    (7, 0, True, 8, -128.0, 127.0),       # int8 is Q7.0
])
def test_fixed_point_properties(int_bits, frac_bits, signed, bits, lo, hi):
    q = FixedPointFormat(int_bits, frac_bits, signed)
    assert (q.bits, q.min, q.max, q.resolution) == (bits, lo, hi, 2.0 ** -frac_bits)


def test_get_format_names():
    assert get_format("fp16") is FP16 and get_format("BF16") is BF16 and get_format("uint8") is UINT8
    assert get_format("q3.4") == Q3_4
    assert get_format("uq0.8") == FixedPointFormat(0, 8, signed=False)
    assert get_format(get_format("q7.8").name) == FixedPointFormat(7, 8)


def test_format_table():
    rows = format_table()
    assert [r["name"] for r in rows] == ["fp32", "fp16", "bf16", "int32", "int16", "int8", "q3.4"]
    assert len({tuple(r) for r in rows}) == 1  # same keys in every row
    fp16, int8, q = rows[1], rows[5], rows[6]
    assert (fp16["max"], fp16["min"], fp16["eps"], fp16["resolution"]) == (65504.0, -65504.0, 2 ** -10, None)
    assert (int8["min"], int8["max"], int8["integer_bits"], int8["min_normal"]) == (-128, 127, 7, None)
    assert (q["bits"], q["sign_bits"], q["integer_bits"], q["fraction_bits"], q["resolution"]) == (8, 1, 3, 4, 0.0625)
    json.dumps(rows)


# ---------------------------------------------------------------- rounding oracles

def _random_floats(rng, n, lo_exp, hi_exp):
    """Random float64 values with log-uniform magnitudes and random signs."""
    mag = np.exp2(rng.uniform(lo_exp, hi_exp, n)) * rng.uniform(1, 2, n)
    return mag * rng.choice([-1.0, 1.0], n)


def _midpoints(values, np_type):
    """Exact float64 midpoints between each value of np_type and the next one up: ties."""
    v = np.asarray(values, dtype=np_type)
    up = np.nextafter(v, np_type(np.inf))
    ok = np.isfinite(up)
    return (v[ok].astype(np.float64) + up[ok].astype(np.float64)) / 2


def test_fp16_rounding_bit_exact_vs_numpy():
    rng = np.random.default_rng(0)
    fi = np.finfo(np.float16)
    grid = rng.integers(0, 0x7C00, 4000).astype(np.uint16).view(np.float16)  # every finite positive pattern kind
    x = np.concatenate([
        _random_floats(rng, 20000, -30, 17),                   # subnormal, normal, overflow
        _midpoints(grid, np.float16), -_midpoints(grid, np.float16),  # exact ties, incl. subnormal ties
        grid.astype(np.float64) * (1 + 1e-9), grid.astype(np.float64) * (1 - 1e-9),
        [0.0, -0.0, np.inf, -np.inf, 65504.0, 65519.99, 65520.0, -65520.0, 1e300,
         2.0 ** -25, 2.0 ** -25 * 1.0001, -2.0 ** -25, 3 * 2.0 ** -25, 5e-324, float(fi.smallest_normal)],
    ])
    ours = np.asarray(round_to_format(x, FP16, overflow="inf"))
    with np.errstate(over="ignore"):  # overflow to inf is what we compare against
        ref = x.astype(np.float16)
    assert np.array_equal(ours.astype(np.float16).view(np.uint16), ref.view(np.uint16))
    assert np.array_equal(ours, ref.astype(np.float64))  # our result is exactly an fp16 value


def test_fp32_rounding_bit_exact_vs_numpy():
    rng = np.random.default_rng(1)
    grid = rng.integers(0, 0x7F800000, 4000, dtype=np.uint32).view(np.float32)
    x = np.concatenate([_random_floats(rng, 20000, -155, 130), _midpoints(grid, np.float32),
                        [np.finfo(np.float32).max * (1 + 2.0 ** -25), 2.0 ** -150, 2.0 ** -149 * 1.5]])
    ours = np.asarray(round_to_format(x, "fp32", overflow="inf"))
    with np.errstate(over="ignore"):
        ref = x.astype(np.float32)
    assert np.array_equal(ours.astype(np.float32).view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("fmt, torch_type, n_patterns", [(BF16, torch.bfloat16, 0x7F80),
                                                         (FP8_E5M2, torch.float8_e5m2, 0x7C)])
def test_rounding_bit_exact_vs_torch(fmt, torch_type, n_patterns):
    # Inputs are float32: torch rounds float64 -> bfloat16 via float32 (twice),
    # while round_to_format rounds once from float64, so the two agree on float32 input.
    rng = np.random.default_rng(2)
    grid = torch.from_numpy(rng.integers(0, n_patterns, 3000).astype(np.int16 if fmt.bits == 16 else np.uint8))
    grid = grid.view(torch_type).to(torch.float64).numpy()
    codes = rng.integers(0, n_patterns - 1, 1000)  # positive finite codes; code + 1 is the next value up
    down = np.array([decode_bits(format(int(c), f"0{fmt.bits}b"), fmt) for c in codes])
    up = np.array([decode_bits(format(int(c) + 1, f"0{fmt.bits}b"), fmt) for c in codes])
    x = np.concatenate([_random_floats(rng, 20000, fmt.emin - fmt.mantissa_bits - 3, fmt.emax + 2),
                        (up + down) / 2, -(up + down) / 2, grid, [0.0, -0.0, np.inf, -np.inf, np.nan],
                        [fmt.max, fmt._overflow_threshold, np.nextafter(fmt._overflow_threshold, 0)]])
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    ours = np.asarray(round_to_format(x32, fmt, overflow="inf"))
    ref = torch.from_numpy(x32).to(torch_type).to(torch.float64).numpy()
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(ours), nan)
    assert np.array_equal(ours[~nan], ref[~nan])
    assert np.array_equal(np.signbit(ours[~nan]), np.signbit(ref[~nan]))  # −0.0 kept


def test_bf16_from_float64_rounds_once_unlike_torch():
    x = 1 + 2.0 ** -8 + 2.0 ** -40  # just above a bf16 tie; float32 drops the 2^-40
    assert round_to_format(x, BF16) == 1 + 2.0 ** -7
    assert torch.tensor(x, dtype=torch.float64).to(torch.bfloat16).item() == 1.0  # double rounding


def _all_values(fmt):
    vals = [decode_bits("".join(b), fmt) for b in itertools.product("01", repeat=fmt.bits)]
    return np.unique([v for v in vals if math.isfinite(v)])


@pytest.mark.parametrize("fmt", [FloatFormat("e4m3_ieee", 4, 3), FloatFormat("e2m1", 2, 1),
                                 FloatFormat("e3m4", 3, 4), INT8, UINT8, Q3_4, FixedPointFormat(2, 3, False)])
def test_rounding_picks_nearest_value_ties_to_even(fmt):
    """Exhaustive oracle: enumerate the format's values; the nearest wins, a tie goes to the even code."""
    values = _all_values(fmt)
    assert values[0] == (-fmt.max if fmt.kind == "float" else fmt.min) and values[-1] == fmt.max
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(values[0], values[-1], 3000), (values[1:] + values[:-1]) / 2, values])
    ours = np.asarray(round_to_format(x, fmt))
    dist = np.abs(x[:, None] - values[None, :])
    best = dist.min(axis=1)
    for xi, r, b in zip(x, ours, best):
        cands = values[np.abs(np.abs(xi - values) - b) == 0]
        if len(cands) == 1:
            assert r == cands[0], (xi, r, cands)
        else:  # a tie: the candidate whose bit pattern ends in 0
            assert len(cands) == 2 and r in cands
            assert bit_fields(r, fmt).bits[-1] == "0", (xi, r, cands)


# ---------------------------------------------------------------- ints, fixed point, overflow

def test_int_rounding_half_even_and_saturation():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.6, 127.5, 200.0, -128.5, -129.0, -1e9, -0.3])
    assert round_to_format(x, INT8).tolist() == [0, 2, 2, 0, -2, -2, 127, 127, 127, -128, -128, -128, 0]
    r = round_to_format(x, INT8)
    assert not np.signbit(r[r == 0]).any()  # integers have no −0
    assert round_to_format([-3.0, 255.5, 254.5], UINT8).tolist() == [0, 255, 254]
    assert round_to_format(np.inf, INT16) == 32767.0 and round_to_format(-np.inf, INT32) == -2.0 ** 31
    assert round_to_format(3.14159, Q3_4) == 3.125 and round_to_format(-100.0, Q3_4) == -8.0
    assert round_to_format(0.03125, Q3_4) == 0.0 and round_to_format(0.09375, Q3_4) == 0.125  # ties to even


def test_float_saturate_is_default():
    assert round_to_format(1e6, FP16) == 65504.0 and round_to_format(-np.inf, FP16) == -65504.0
    assert round_to_format(1e6, FP16, overflow="inf") == np.inf
    assert math.isnan(round_to_format(np.nan, FP16))


@pytest.mark.parametrize("fmt, x", [(FP16, [1.0, 65520.0]), (BF16, [np.inf]), (INT8, [127.5]),
                                    (Q3_4, [-8.04]), (UINT8, [-1.0])])
def test_overflow_error_names_x(fmt, x):
    with pytest.raises(ValueError, match=r"^round_to_format: x must be within the range of"):
        round_to_format(x, fmt, overflow="error")


def test_overflow_error_passes_values_in_range():
    assert round_to_format(65519.0, FP16, overflow="error") == 65504.0
    assert round_to_format(-8.03, Q3_4, overflow="error") == -8.0


def test_round_to_format_types_and_shapes():
    assert isinstance(round_to_format(1, FP16), float)
    assert isinstance(round_to_format(np.float32(0.1), FP16), float)
    out = round_to_format(np.ones((2, 3), dtype=np.float32) / 3, "bf16")
    assert out.shape == (2, 3) and out.dtype == np.float64
    assert np.array_equal(round_to_format(torch.tensor([0.1, 0.2]), FP16), round_to_format([0.1, 0.2], FP16))
    assert round_to_format(np.array([], dtype=np.float64), INT8).shape == (0,)
    x = np.array([0.1, 0.2])
    round_to_format(x, INT8)
    assert x.tolist() == [0.1, 0.2]  # input untouched


@pytest.mark.parametrize("fmt", [FP32, FP16, BF16, FP8_E5M2, INT8, UINT8, Q3_4, FixedPointFormat(0, 15)])
def test_round_trips(fmt):
    rng = np.random.default_rng(4)
    lo = -fmt.max if fmt.kind == "float" else fmt.min
    x = rng.uniform(max(lo, -1e4), min(fmt.max, 1e4), 2000)
    once = round_to_format(x, fmt)
    assert np.array_equal(round_to_format(once, fmt), once)  # idempotent
    # error bound: half a step (relative for floats' normal range, absolute otherwise)
    if fmt.kind == "float":
        normal = np.abs(x) >= fmt.min_normal
        assert (np.abs(once - x)[normal] <= np.abs(x[normal]) * fmt.eps / 2).all()
        assert (np.abs(once - x)[~normal] <= fmt.min_subnormal / 2).all()
    else:
        assert (np.abs(once - x) <= fmt.resolution / 2).all()
    for v in once[:200]:  # encode -> decode
        b = bit_fields(v, fmt)
        assert decode_bits(b.bits, fmt) == b.stored == v and b.abs_error == 0.0


# ---------------------------------------------------------------- bit fields

@pytest.mark.parametrize("value, fmt, fields", [
    (1.0, FP32, {"sign": "0", "exponent": "01111111", "mantissa": "0" * 23}),
    (-2.5, FP16, {"sign": "1", "exponent": "10000", "mantissa": "0100000000"}),
    (65504.0, FP16, {"sign": "0", "exponent": "11110", "mantissa": "1" * 10}),
    (2.0 ** -24, FP16, {"sign": "0", "exponent": "00000", "mantissa": "0000000001"}),
    (-0.0, FP16, {"sign": "1", "exponent": "00000", "mantissa": "0" * 10}),
    (1.0, BF16, {"sign": "0", "exponent": "01111111", "mantissa": "0000000"}),
    (0.1, FP32, {"sign": "0", "exponent": "01111011", "mantissa": "10011001100110011001101"}),
    (-1, INT8, {"sign": "1", "integer": "1111111"}),
    (-128, INT8, {"sign": "1", "integer": "0000000"}),
    (200, UINT8, {"integer": "11001000"}),
    (-2.5, Q3_4, {"sign": "1", "integer": "101", "fraction": "1000"}),
    (7.9375, Q3_4, {"sign": "0", "integer": "111", "fraction": "1111"}),
])
def test_bit_fields_known_values(value, fmt, fields):
    b = bit_fields(value, fmt)
    assert b.fields == fields and b.bits == "".join(fields.values()) and len(b.bits) == fmt.bits
    assert b.format == fmt.name


def test_bit_fields_against_numpy_bit_patterns():
    rng = np.random.default_rng(5)
    for v in _random_floats(rng, 300, -26, 14.9):  # below fp16's max: numpy would give inf
        b = bit_fields(v, FP16)
        assert int(b.bits, 2) == int(np.float16(v).view(np.uint16))
    for v in rng.integers(-128, 128, 100):
        assert int(bit_fields(int(v), INT8).bits, 2) == int(np.int8(v).view(np.uint8))


def test_bit_fields_errors():
    b = bit_fields(0.1, FP16)
    assert b.stored == float(np.float16(0.1)) and b.abs_error == abs(b.stored - 0.1)
    assert b.rel_error == pytest.approx(b.abs_error / 0.1)
    assert bit_fields(0.0, INT8).rel_error == 0.0
    assert bit_fields(1e6, FP16).stored == 65504.0
    over = bit_fields(1e6, FP16, overflow="inf")
    assert over.fields["exponent"] == "11111" and over.stored == math.inf and decode_bits(over.bits, FP16) == math.inf
    assert math.isnan(decode_bits("0111111000000000", FP16))


# ---------------------------------------------------------------- quantisation error, report

def test_quantization_error_hand_computed():
    w = np.array([0.5, 0.01, -20.0, 0.1])
    r = quantization_error(w, Q3_4)
    q = np.array([0.5, 0.0, -8.0, 0.125])
    assert r["format"] == "q3.4" and r["bits"] == 8
    assert r["mean_abs_error"] == pytest.approx(np.abs(q - w).mean())
    assert r["max_abs_error"] == pytest.approx(12.0)
    assert r["rel_rms_error"] == pytest.approx(np.linalg.norm(q - w) / np.linalg.norm(w))
    assert r["fraction_saturated"] == 0.25 and r["fraction_flushed_to_zero"] == 0.25
    json.dumps(r)


def test_quantization_error_shrinks_with_bits():
    w = torch.randn(300, 100, generator=torch.Generator().manual_seed(0)) * 0.05  # LeNet-like scale
    errs = [quantization_error(w, FixedPointFormat(0, n))["rel_rms_error"] for n in (3, 5, 7, 11)]
    assert errs == sorted(errs, reverse=True) and errs[-1] < 0.01
    assert quantization_error(w, FP32)["rel_rms_error"] < 1e-7
    assert quantization_error(np.zeros(5), INT8)["rel_rms_error"] == 0.0


def test_numbers_report_shape_and_values():
    r = numbers_report()
    json.dumps(r)
    assert set(r) == {"formats", "fixed_point"}
    assert set(r["formats"]) == {"fp32", "fp16", "bf16", "int32", "int16", "int8"}
    float_keys = {"bits", "sign_bits", "exponent_bits", "mantissa_bits", "max", "min_normal", "min_subnormal", "eps"}
    assert set(r["formats"]["fp32"]) == set(r["formats"]["fp16"]) == float_keys | {"matches_numpy"}
    assert set(r["formats"]["bf16"]) == float_keys | {"matches_torch"}
    for name in ("int32", "int16", "int8"):
        assert set(r["formats"][name]) == {"bits", "min", "max", "matches_numpy"}
        assert isinstance(r["formats"][name]["min"], int) and r["formats"][name]["matches_numpy"] is True
    assert r["formats"]["fp32"]["matches_numpy"] is True and r["formats"]["fp16"]["matches_numpy"] is True
    assert r["formats"]["bf16"]["matches_torch"] is True
    assert r["formats"]["fp16"]["max"] == 65504.0 and r["formats"]["bf16"]["eps"] == 2 ** -7
    assert r["fixed_point"] == {"format": "q3.4", "bits": 8, "sign_bits": 1, "integer_bits": 3, "fraction_bits": 4,
                                "min": -8.0, "max": 7.9375, "resolution": 0.0625}


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("args, exc, match", [
    (("x", 5, 10), None, None),
    (("", 5, 10), ValueError, "^FloatFormat: name must be a non-empty string"),
    ((16, 5, 10), TypeError, "^FloatFormat: name must be a non-empty string"),
    (("f", 1, 10), ValueError, r"^FloatFormat: exponent_bits must be an integer in \[2, 11\]; got 1\."),
    (("f", 12, 10), ValueError, "exponent_bits"),
    (("f", 5, 0), ValueError, "mantissa_bits"),
    (("f", 5, 53), ValueError, "mantissa_bits"),
    (("f", True, 10), TypeError, r"^FloatFormat: exponent_bits must be an integer in \[2, 11\]; got True\.$"),
    (("f", 5, 10.0), TypeError, "mantissa_bits must be an integer"),
])
def test_float_format_bad_args(args, exc, match):
    if exc is None:
        assert FloatFormat(*args).bits == 16
    else:
        with pytest.raises(exc, match=match):
            FloatFormat(*args)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: IntFormat("i", 1), ValueError, "bits must be an integer in"),
    (lambda: IntFormat("i", 33), ValueError, "bits"),
    (lambda: IntFormat("i", True), TypeError, r"^IntFormat: bits must be an integer in \[2, 32\]; got True\.$"),
    (lambda: IntFormat("i", 8, signed=1), TypeError, "^IntFormat: signed must be True or False"),
    (lambda: FixedPointFormat(-1, 4), ValueError, "int_bits"),
    (lambda: FixedPointFormat(3, 32), ValueError, "frac_bits"),
    (lambda: FixedPointFormat(20, 20), ValueError, r"^FixedPointFormat: .* must be in \[2, 32\]; got 41\."),
    (lambda: FixedPointFormat(1, 0, signed=False), ValueError, r"in \[2, 32\]; got 1\."),
    (lambda: FixedPointFormat(3, False), TypeError, "frac_bits must be an integer"),
    (lambda: FixedPointFormat(3.0, 4), TypeError, "int_bits must be an integer"),
])
def test_int_and_fixed_format_bad_args(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_formats_are_frozen():
    with pytest.raises(AttributeError):
        FP16.mantissa_bits = 3


@pytest.mark.parametrize("name, exc", [("fp8", ValueError), ("int4x", ValueError), ("q3", ValueError),
                                       ("q3.4.1", ValueError), ("", ValueError), (16, TypeError),
                                       (None, TypeError), (FP16, TypeError)])
def test_get_format_bad_names(name, exc):
    with pytest.raises(exc, match="^get_format: name must be"):
        get_format(name)


def test_get_format_error_lists_known_names():
    with pytest.raises(ValueError, match=r"'bf16'.*'fp16'.*'int8'.*q<int>\.<frac>"):
        get_format("fp12")


@pytest.mark.parametrize("x, fmt, kwargs, exc, match", [
    ("1.0", FP16, {}, TypeError, "^round_to_format: x must be a real number"),
    (None, FP16, {}, TypeError, "^round_to_format: x must be a real number"),
    (True, FP16, {}, TypeError, "^round_to_format: x must be a real number"),
    (np.array([True, False]), INT8, {}, TypeError, "^round_to_format: x must be a real number"),
    (torch.tensor([True]), INT8, {}, TypeError, "^round_to_format: x must be a real number"),
    (1 + 2j, FP16, {}, TypeError, "^round_to_format: x must be a real number"),
    ([[1.0], [1.0, 2.0]], FP16, {}, TypeError, "^round_to_format: x must be a real number"),
    (1.0, "fp12", {}, ValueError, "^round_to_format: fmt must be one of"),
    (1.0, 16, {}, TypeError, "^round_to_format: fmt must be a format name"),
    (1.0, np.float16, {}, TypeError, "^round_to_format: fmt must be a format name"),
    (1.0, FP16, {"overflow": "wrap"}, ValueError, "^round_to_format: overflow must be one of"),
    (1.0, FP16, {"overflow": None}, TypeError, "^round_to_format: overflow must be a string"),
    (1.0, INT8, {"overflow": "inf"}, ValueError, "^round_to_format: overflow must be 'saturate' or 'error'"),
    (np.nan, INT8, {}, ValueError, "^round_to_format: x must be free of NaN"),
    ([1.0, np.nan], Q3_4, {}, ValueError, "^round_to_format: x must be free of NaN"),
])
def test_round_to_format_bad_inputs(x, fmt, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        round_to_format(x, fmt, **kwargs)


@pytest.mark.parametrize("value, fmt, exc, match", [
    ("1", FP16, TypeError, "^bit_fields: value must be a real number"),
    (True, FP16, TypeError, "^bit_fields: value must be a real number"),
    (np.nan, FP16, ValueError, "^bit_fields: value must be finite"),
    (np.inf, INT8, ValueError, "^bit_fields: value must be finite"),
    ([1.0], FP16, TypeError, "^bit_fields: value must be a real number"),
    (1.0, "nope", ValueError, "^bit_fields: fmt must be one of"),
])
def test_bit_fields_bad_inputs(value, fmt, exc, match):
    with pytest.raises(exc, match=match):
        bit_fields(value, fmt)


@pytest.mark.parametrize("bits, fmt, exc", [("0101", FP16, ValueError), ("2" * 16, FP16, ValueError),
                                            (0b0101, INT8, TypeError), ("0" * 8, 3, TypeError)])
def test_decode_bits_bad_inputs(bits, fmt, exc):
    with pytest.raises(exc, match="must be"):
        decode_bits(bits, fmt)


@pytest.mark.parametrize("weights, fmt, exc, match", [
    ([], INT8, ValueError, "^quantization_error: weights must be non-empty"),
    ([1.0, np.inf], FP16, ValueError, "^quantization_error: weights must be finite"),
    ([1.0, np.nan], FP16, ValueError, "^quantization_error: weights must be finite"),
    (["a"], FP16, TypeError, "^quantization_error: weights must be a real number"),
    ([True], FP16, TypeError, "^quantization_error: weights must be a real number"),
    ([1.0], "q3", ValueError, "^quantization_error: fmt must be one of"),
    ([1.0], INT8, TypeError, None),  # overflow, below
])
def test_quantization_error_bad_inputs(weights, fmt, exc, match):
    if match is None:
        with pytest.raises(TypeError, match="^quantization_error: overflow must be"):
            quantization_error(weights, fmt, overflow=1)
        with pytest.raises(ValueError, match="^quantization_error: weights must be within"):
            quantization_error([1000.0], fmt, overflow="error")
    else:
        with pytest.raises(exc, match=match):
            quantization_error(weights, fmt)
