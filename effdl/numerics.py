"""Number formats, rounding and fixed point — chapter 1, "Number representations".

Every property of a format here is derived from its bit layout alone; the
tests (and :func:`numbers_report`) check the results against ``numpy.finfo``,
``numpy.iinfo`` and ``torch.finfo``, and check :func:`round_to_format` bit for
bit against numpy's ``float16`` cast and torch's ``bfloat16`` cast.

Three kinds of format:

- :class:`FloatFormat` — IEEE-754-style binary floating point: 1 sign bit,
  ``exponent_bits`` biased exponent bits, ``mantissa_bits`` stored fraction
  bits (the leading 1 is implicit), subnormals, and the all-ones exponent
  reserved for inf/NaN. fp32, fp16, bf16 and fp8 e5m2 are of this kind.
  NVIDIA/OCP fp8 *e4m3* is not (it has no inf and reuses the top exponent for
  finite values, max 448); ``FloatFormat("e4m3_ieee", 4, 3)`` is its
  IEEE-style cousin with max 240.
- :class:`IntFormat` — two's-complement (signed) or unsigned integers.
- :class:`FixedPointFormat` — Q notation. ``Qm.n`` has ``m`` integer bits and
  ``n`` fraction bits, and **the sign bit is counted separately**: signed
  Q3.4 is 1 + 3 + 4 = 8 bits, unsigned UQ3.4 is 3 + 4 = 7 bits. The stored
  word is a two's-complement integer ``k`` and the value is ``k · 2^-n``, so a
  signed ``int8`` is Q7.0.

Rounding is always round-to-nearest, ties to even (IEEE-754's default).
What happens to a value beyond the format's range is the caller's choice
(``overflow=``); the default is ``"saturate"`` (clamp to ±max), the usual
choice when quantising weights; ``"inf"`` is IEEE-754 behaviour for floats.

References: IEEE 754-2008; Micikevicius et al., "FP8 formats for deep
learning", 2022 (e5m2, e4m3).

Longer than 600 lines because each number format, its rounding and its bit fields form one
model (chapter 1); splitting would separate a format from the rounding that defines it.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch

from effdl._validate import _fail
from effdl.validation import (Bool, Constraint, Instance, Interval, Module, Options, Tensor, check_fields,
                              check_part, validate_params)


__all__ = [
    "FloatFormat", "IntFormat", "FixedPointFormat", "BitFields",
    "FP32", "FP16", "BF16", "FP8_E5M2", "INT32", "INT16", "INT8", "UINT8", "Q3_4",
    "get_format", "format_table", "round_to_format", "bit_fields", "decode_bits",
    "quantization_error", "numbers_report", "OVERFLOW_MODES",
]

OVERFLOW_MODES = ("saturate", "inf", "error")


class _NonEmptyString(Instance):
    def __init__(self):
        super().__init__(str, "a non-empty string")

    def check(self, name, value):
        if super().check(name, value) == "":
            _fail(ValueError, name, self.what, value)
        return value

    def invalid_values(self):
        return super().invalid_values() + [("", ValueError)]


_NAME = _NonEmptyString()


# ---------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FloatFormat:
    """An IEEE-754-style binary floating-point format.

    Parameters
    ----------
    name : str
        Short name, e.g. ``"fp16"``.
    exponent_bits : int
        Width of the biased exponent field, 2..11.
    mantissa_bits : int
        Stored fraction bits (the implicit leading 1 not counted), 1..52.

    Examples
    --------
    >>> fp16 = FloatFormat("fp16", 5, 10)
    >>> fp16.bits, fp16.bias, fp16.max, fp16.eps
    (16, 15, 65504.0, 0.0009765625)

    Taught in chapter 01, "Number representations".
    """

    name: str
    exponent_bits: int
    mantissa_bits: int

    kind = "float"
    sign_bits = 1

    def __post_init__(self):
        # 2 exponent bits is the least that leaves a normal binade between the
        # subnormal field (0) and the inf/NaN field (all ones); 11 and 52 are
        # float64's widths, the most the float64 arithmetic below holds exactly.
        check_fields(self, name=_NAME, exponent_bits=Interval(int, 2, 11), mantissa_bits=Interval(int, 1, 52))

    @property
    def bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def bias(self) -> int:
        return 2 ** (self.exponent_bits - 1) - 1

    @property
    def emax(self) -> int:
        """Largest unbiased exponent of a finite value (field all ones minus one)."""
        return self.bias

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal value (field 1)."""
        return 1 - self.bias

    @property
    def max(self) -> float:
        """Largest finite value: (2 − 2^-m) · 2^emax."""
        return math.ldexp(2.0 - math.ldexp(1.0, -self.mantissa_bits), self.emax)

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value: 2^emin."""
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value: 2^(emin − m)."""
        return math.ldexp(1.0, self.emin - self.mantissa_bits)

    @property
    def eps(self) -> float:
        """Gap between 1.0 and the next larger value: 2^-m."""
        return math.ldexp(1.0, -self.mantissa_bits)

    @property
    def _overflow_threshold(self) -> float:
        # max + half an ulp; under ties-to-even this tie goes up (max's last
        # mantissa bit is 1, odd), so |x| >= threshold overflows.
        try:
            return math.ldexp(2.0 - math.ldexp(1.0, -self.mantissa_bits - 1), self.emax)
        except OverflowError:  # fp64's threshold is past float64's range
            return math.inf


@dataclass(frozen=True)
class IntFormat:
    """A binary integer format: two's complement if ``signed``, else unsigned.

    Parameters
    ----------
    name : str
        Short name, e.g. ``"int8"``.
    bits : int
        Word width, 2..32 (float64 holds every such integer exactly).
    signed : bool, default True

    Examples
    --------
    >>> INT8.min, INT8.max, UINT8.max
    (-128, 127, 255)

    Behind chapter 01, "Number representations".
    """

    name: str
    bits: int
    signed: bool = True

    kind = "int"
    resolution = 1.0
    fraction_bits = 0

    def __post_init__(self):
        check_fields(self, name=_NAME, bits=Interval(int, 2, 32), signed=Bool())

    @property
    def sign_bits(self) -> int:
        return 1 if self.signed else 0

    @property
    def integer_bits(self) -> int:
        return self.bits - self.sign_bits

    @property
    def min(self) -> int:
        return -(2 ** (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2 ** self.bits - 1


@dataclass(frozen=True)
class FixedPointFormat:
    """A binary fixed-point format in Q notation, sign bit counted separately.

    Signed ``Qm.n`` has 1 sign + ``m`` integer + ``n`` fraction bits and holds
    ``k · 2^-n`` for every two's-complement integer ``k`` of ``1 + m + n``
    bits; unsigned ``UQm.n`` has ``m + n`` bits and no sign bit.

    Parameters
    ----------
    int_bits : int
        Integer bits ``m``, 0..31 (not counting the sign bit).
    frac_bits : int
        Fraction bits ``n``, 0..31.
    signed : bool, default True

    Examples
    --------
    >>> q = FixedPointFormat(3, 4)
    >>> q.name, q.bits, q.min, q.max, q.resolution
    ('q3.4', 8, -8.0, 7.9375, 0.0625)

    Taught in chapter 01, "Number representations".
    """

    int_bits: int
    frac_bits: int
    signed: bool = True

    kind = "fixed"

    def __post_init__(self):
        check_fields(self, int_bits=Interval(int, 0, 31), frac_bits=Interval(int, 0, 31), signed=Bool())
        if not 2 <= self.bits <= 32:
            raise ValueError(f"FixedPointFormat: int_bits + frac_bits + sign bit must be in [2, 32]; got {self.bits}.")

    @property
    def name(self) -> str:
        return f"{'' if self.signed else 'u'}q{self.int_bits}.{self.frac_bits}"

    @property
    def sign_bits(self) -> int:
        return 1 if self.signed else 0

    @property
    def integer_bits(self) -> int:
        return self.int_bits

    @property
    def fraction_bits(self) -> int:
        return self.frac_bits

    @property
    def bits(self) -> int:
        return self.sign_bits + self.int_bits + self.frac_bits

    @property
    def resolution(self) -> float:
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def min(self) -> float:
        return -math.ldexp(1.0, self.int_bits) if self.signed else 0.0

    @property
    def max(self) -> float:
        return math.ldexp(1.0, self.int_bits) - self.resolution


Format = Union[FloatFormat, IntFormat, FixedPointFormat]

FP32 = FloatFormat("fp32", 8, 23)
FP16 = FloatFormat("fp16", 5, 10)
BF16 = FloatFormat("bf16", 8, 7)
FP8_E5M2 = FloatFormat("fp8_e5m2", 5, 2)  # IEEE-style, = torch.float8_e5m2
INT32 = IntFormat("int32", 32)
INT16 = IntFormat("int16", 16)
INT8 = IntFormat("int8", 8)
UINT8 = IntFormat("uint8", 8, signed=False)
Q3_4 = FixedPointFormat(3, 4)  # the book's fixed-point example, 8 bits

_NAMED = {f.name: f for f in (FP32, FP16, BF16, FP8_E5M2, INT32, INT16, INT8, UINT8)}
_Q_NAME = re.compile(r"(u?)q(\d+)\.(\d+)")


@validate_params(name=Instance(str, "a format name (str)"))
def get_format(name: str) -> Format:
    """Return the format called ``name`` (case-insensitive).

    Known names: ``fp32 fp16 bf16 fp8_e5m2 int32 int16 int8 uint8`` and fixed
    point ``q<m>.<n>`` (signed) or ``uq<m>.<n>`` (unsigned), e.g. ``"q3.4"``.

    >>> get_format("q3.4").bits
    8

    Behind chapter 01, "Number representations".
    """
    return _format_named(name, "name")


def _format_named(name: str, label: str) -> Format:
    """The format called ``name``; a ValueError naming the parameter ``label`` if none is."""
    key = name.lower()
    if key in _NAMED:
        return _NAMED[key]
    m = _Q_NAME.fullmatch(key)
    if m:
        try:
            return FixedPointFormat(int(m.group(2)), int(m.group(3)), signed=not m.group(1))
        except ValueError as err:  # q40.40: a Q name, but no format of 2..32 bits
            _fail(ValueError, label, f"a format of 2 to 32 bits ({err})", name)
    _fail(ValueError, label, f"one of {sorted(_NAMED)} or 'q<int>.<frac>' / 'uq<int>.<frac>'", name)


class _FormatArg(Constraint):
    """A format object, or a name :func:`get_format` knows (converted to the format)."""

    what = "a format name or a FloatFormat, IntFormat or FixedPointFormat"

    def describe(self):
        return self.what

    def check(self, name, value):
        if isinstance(value, str):
            return _format_named(value, name)
        if not isinstance(value, (FloatFormat, IntFormat, FixedPointFormat)):
            _fail(TypeError, name, self.what, value)
        return value

    def invalid_values(self):
        return [("fp12", ValueError), ("q3", ValueError), (16, TypeError), (np.float16, TypeError),
                (None, TypeError)]


class _Reals(Constraint):
    """A real number or an array / tensor / nested list of real numbers (not bools), read as a float64 array."""

    def __init__(self, *, finite: bool = False, nonempty: bool = False):
        self.finite, self.nonempty = finite, nonempty

    def describe(self):
        return "a real number or an array of real numbers"

    def check(self, name, value):
        arr = _as_real_array(name, value)
        if self.nonempty and arr.size == 0:
            _fail(ValueError, name, "non-empty", value)
        if self.finite:
            Tensor(dtype=None, nonempty=False).check(name, torch.from_numpy(arr))  # names the first NaN/inf
        return arr

    def invalid_values(self):
        bad = [("1.0", TypeError), (True, TypeError), (None, TypeError), (1 + 2j, TypeError),
               ([[1.0], [1.0, 2.0]], TypeError), (torch.tensor([True]), TypeError)]
        if self.nonempty:
            bad.append(([], ValueError))
        if self.finite:
            bad += [([1.0, float("nan")], ValueError), ([float("inf")], ValueError)]
        return bad


FORMAT = _FormatArg()
OVERFLOW = Options(OVERFLOW_MODES)
_FINITE = _Reals(finite=True)


def _check_overflow(overflow: str, f: Format) -> None:
    """``overflow="inf"`` needs a float format (an int or fixed-point one has no inf)."""
    if overflow == "inf" and f.kind != "float":
        _fail(ValueError, "overflow", f"'saturate' or 'error' for {f.kind} format {f.name} (it has no inf)",
              overflow)


@validate_params(fmt=FORMAT)
def format_row(fmt: Format | str) -> dict:
    """One format's fields and range as a dict (a row of :func:`format_table`).

    Keys: ``name, kind, bits, sign_bits, exponent_bits, mantissa_bits,
    integer_bits, fraction_bits, min`` (most negative value), ``max`` (largest
    finite value), ``min_normal`` and ``eps`` (floats), ``resolution`` (ints
    and fixed point); a field that does not apply to the kind is ``None``.

    Behind chapter 01, "Number representations".
    """
    f = fmt  # a format object: the declared constraint converted a name
    is_float = f.kind == "float"
    return {
        "name": f.name, "kind": f.kind, "bits": f.bits, "sign_bits": f.sign_bits,
        "exponent_bits": f.exponent_bits if is_float else None,
        "mantissa_bits": f.mantissa_bits if is_float else None,
        "integer_bits": None if is_float else f.integer_bits,
        "fraction_bits": None if is_float else f.fraction_bits,
        "min": -f.max if is_float else f.min,
        "max": f.max,
        "min_normal": f.min_normal if is_float else None,
        "eps": f.eps if is_float else None,
        "resolution": None if is_float else f.resolution,
    }


@validate_params()
def format_table() -> list[dict]:
    """Chapter 1's comparison table: :func:`format_row` of fp32, fp16, bf16, int32, int16, int8, q3.4.

    Taught in chapter 01, "Number representations".
    """
    return [format_row(f) for f in (FP32, FP16, BF16, INT32, INT16, INT8, Q3_4)]


# ---------------------------------------------------------------------------
# Rounding
# ---------------------------------------------------------------------------

def _as_real_array(name: str, x: Any) -> np.ndarray:
    """``x`` as a float64 array; TypeError unless it holds real numbers (not bools)."""
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool or x.is_complex():
            _fail(TypeError, name, "a real number or an array of real numbers", x)
        x = x.detach().cpu().to(torch.float64).numpy()
    try:
        arr = np.asarray(x)
    except Exception:  # ragged nested lists and the like
        _fail(TypeError, name, "a real number or an array of real numbers", x)
    if arr.dtype.kind not in "iuf":
        _fail(TypeError, name, "a real number or an array of real numbers", x)
    return arr.astype(np.float64)


def _round_float(x: np.ndarray, f: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
    """Round-to-nearest-even onto ``f``; returns (rounded, overflowed mask).

    Overflowed entries (|x| rounds past max, or is inf) are returned as ±inf.
    """
    a = np.abs(x)
    overflow = a >= f._overflow_threshold  # NaN compares False: passed through
    safe = np.where(overflow | np.isnan(a), 0.0, a)
    # a = frac · 2^k with frac in [0.5, 1)  →  a in [2^e, 2^(e+1)) with e = k − 1
    _, k = np.frexp(safe)
    e = np.maximum(k - 1, f.emin)  # subnormals share the quantum of the lowest binade
    # quantum (ulp) = 2^(e − m); a / ulp is exact (a power-of-two scaling),
    # and np.rint rounds half to even.
    n = np.rint(np.ldexp(safe, f.mantissa_bits - e))
    r = np.ldexp(n, e - f.mantissa_bits)
    r = np.where(overflow, np.inf, np.where(np.isnan(a), np.nan, r))
    return np.copysign(r, x), overflow  # copysign keeps −0.0 and negative underflow


def _round_grid(x: np.ndarray, f: IntFormat | FixedPointFormat, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Round-half-even onto the grid k · 2^-frac; returns (unclamped, overflowed mask)."""
    if np.isnan(x).any():
        _fail(ValueError, name, f"free of NaN to round to {f.name}", float(x[np.isnan(x)][0]))
    k = np.rint(np.ldexp(x, f.fraction_bits))  # stored integer k = round(x · 2^n); ±inf stays ±inf
    lo, hi = f.min * 2 ** f.fraction_bits, f.max * 2 ** f.fraction_bits
    overflow = (k < lo) | (k > hi)
    return np.ldexp(k, -f.fraction_bits) + 0.0, overflow  # + 0.0 turns −0.0 into 0.0


def _round(x: np.ndarray, f: Format, overflow: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Core of :func:`round_to_format` on clean input; returns (rounded, overflowed).

    ``name`` is how an error names the values (the running public function prefixes it).
    """
    r, over = _round_float(x, f) if f.kind == "float" else _round_grid(x, f, name)
    if over.any():
        if overflow == "error":
            bad = float(x[over][0])
            _fail(ValueError, name, f"within the range of {f.name} [{-f.max if f.kind == 'float' else f.min}, "
                                   f"{f.max}] after rounding (overflow='error')", bad)
        if overflow == "saturate":
            lo = -f.max if f.kind == "float" else f.min
            r = np.where(over, np.where(x > 0, float(f.max), float(lo)), r)
    return r, over


@validate_params(x=_Reals(), fmt=FORMAT, overflow=OVERFLOW)
def round_to_format(x: Any, fmt: Format | str, overflow: str = "saturate"):
    """Round ``x`` to the nearest value representable in ``fmt``, ties to even.

    Parameters
    ----------
    x : float, int, array_like or torch.Tensor of real numbers
        Values to round, read as float64 (bools are rejected). Rounding is
        done once, from float64.
    fmt : format or str
        A :class:`FloatFormat`, :class:`IntFormat`, :class:`FixedPointFormat`
        or a name for :func:`get_format`.
    overflow : {"saturate", "inf", "error"}, default "saturate"
        What happens to a value that lies beyond ±max once rounded (an input
        of ±inf included):

        - ``"saturate"`` (default): clamp to the largest / smallest finite
          value — what weight quantisers do, so a single outlier cannot
          become inf.
        - ``"inf"``: become ±inf, as IEEE-754 and numpy's / torch's casts
          do. Floats only.
        - ``"error"``: raise ``ValueError`` naming ``x``.

        NaN stays NaN in a float format; in an int or fixed-point format it
        raises ``ValueError``. Integers have no −0, so ``-0.3`` → ``0.0``.

    Returns
    -------
    float or numpy.ndarray
        A Python float for scalar input, else a float64 array of ``x``'s shape.
        Every value is exactly representable in ``fmt``.

    Examples
    --------
    >>> round_to_format(1.0 + 2**-11, "fp16")       # a tie: rounds to even
    1.0
    >>> round_to_format(70000.0, "fp16"), round_to_format(70000.0, "fp16", overflow="inf")
    (65504.0, inf)
    >>> round_to_format([2.5, 3.5, 200.0], "int8").tolist()
    [2.0, 4.0, 127.0]

    Taught in chapter 01, "Number representations".
    """
    _check_overflow(overflow, fmt)
    r, _ = _round(x, fmt, overflow, "x")
    return float(r) if r.ndim == 0 else r


# ---------------------------------------------------------------------------
# Bit patterns
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BitFields:
    """A value's stored bit pattern in one format, split into fields.

    ``fields`` maps field name → bit string, most significant first:
    ``sign, exponent, mantissa`` for floats; ``sign`` (signed only),
    ``integer`` and ``fraction`` (fixed point only) for ints and fixed point,
    whose whole word is two's complement. ``bits`` is the fields joined.

    Behind chapter 01, "Number representations".
    """

    format: str
    value: float          # the input
    stored: float         # the nearest representable value
    fields: dict
    bits: str
    abs_error: float      # |stored − value|
    rel_error: float      # abs_error / |value|; 0.0 when value is 0


def _float_fields(s: float, f: FloatFormat) -> dict:
    m = f.mantissa_bits
    sign = int(math.copysign(1.0, s) < 0)
    a = abs(s)
    if math.isinf(a):
        exp_field, man = 2 ** f.exponent_bits - 1, 0
    elif a < f.min_normal:  # zero or subnormal: field 0, a = man · 2^(emin − m)
        exp_field, man = 0, int(math.ldexp(a, m - f.emin))
    else:                   # normal: a = (1 + man / 2^m) · 2^e
        e = math.frexp(a)[1] - 1
        exp_field, man = e + f.bias, int(math.ldexp(a, m - e)) - 2 ** m
    return {"sign": str(sign), "exponent": format(exp_field, f"0{f.exponent_bits}b"),
            "mantissa": format(man, f"0{m}b")}


def _grid_fields(s: float, f: IntFormat | FixedPointFormat) -> dict:
    k = int(math.ldexp(s, f.fraction_bits))
    word = format(k % 2 ** f.bits, f"0{f.bits}b")  # two's complement
    fields = {}
    if f.signed:
        fields["sign"] = word[0]
    body = word[f.sign_bits:]
    fields["integer"] = body[:f.integer_bits]
    if f.kind == "fixed":
        fields["fraction"] = body[f.integer_bits:]
    return fields


@validate_params(value=Interval(float, None, None), fmt=FORMAT, overflow=OVERFLOW)
def bit_fields(value: Any, fmt: Format | str, overflow: str = "saturate") -> BitFields:
    """Round ``value`` into ``fmt`` and show the stored bits field by field.

    The pure function behind chapter 1's bit-width widget.

    Parameters
    ----------
    value : float
        A finite real number.
    fmt : format or str
    overflow : {"saturate", "inf", "error"}, default "saturate"
        As in :func:`round_to_format`.

    Examples
    --------
    >>> b = bit_fields(-2.5, "fp16")
    >>> b.fields
    {'sign': '1', 'exponent': '10000', 'mantissa': '0100000000'}
    >>> bit_fields(0.1, "q3.4").stored, bit_fields(-1, "int8").bits
    (0.125, '11111111')

    Taught in chapter 01, "Number representations".
    """
    f = fmt
    _check_overflow(overflow, f)
    stored, _ = _round(np.array(value), f, overflow, "value")
    stored = float(stored)
    fields = _float_fields(stored, f) if f.kind == "float" else _grid_fields(stored, f)
    err = abs(stored - value)
    return BitFields(format=f.name, value=value, stored=stored, fields=fields,
                     bits="".join(fields.values()), abs_error=err,
                     rel_error=err / abs(value) if value != 0 else 0.0)


@validate_params(bits=Instance(str, "a string of '0' and '1'"), fmt=FORMAT)
def decode_bits(bits: str, fmt: Format | str) -> float:
    """The value a bit string (``'0'``/``'1'``, MSB first) stands for in ``fmt``.

    The inverse of :func:`bit_fields`: ``decode_bits(bit_fields(v, f).bits, f)``
    equals ``bit_fields(v, f).stored``. An all-ones float exponent decodes to
    ±inf (zero mantissa) or NaN.

    >>> decode_bits("0" + "01111111" + "0" * 23, "fp32")
    1.0

    Behind chapter 01, "Number representations".
    """
    f = fmt
    if len(bits) != f.bits or set(bits) - {"0", "1"}:
        _fail(ValueError, "bits", f"{f.bits} characters, each '0' or '1', for {f.name}", bits)
    if f.kind == "float":
        sign = -1.0 if bits[0] == "1" else 1.0
        exp_field = int(bits[1:1 + f.exponent_bits], 2)
        man = int(bits[1 + f.exponent_bits:], 2)
        if exp_field == 2 ** f.exponent_bits - 1:
            return sign * math.inf if man == 0 else math.nan
        if exp_field == 0:
            return sign * math.ldexp(man, f.emin - f.mantissa_bits)
        return sign * math.ldexp(2 ** f.mantissa_bits + man, exp_field - f.bias - f.mantissa_bits)
    k = int(bits, 2)
    if f.signed and bits[0] == "1":
        k -= 2 ** f.bits
    return math.ldexp(k, -f.fraction_bits)


# ---------------------------------------------------------------------------
# Quantisation error and the chapter's report
# ---------------------------------------------------------------------------

@validate_params(weights=_Reals(finite=True, nonempty=True), fmt=FORMAT, overflow=OVERFLOW)
def quantization_error(weights: Any, fmt: Format | str, overflow: str = "saturate") -> dict:
    """How much storing ``weights`` in ``fmt`` changes them.

    Parameters
    ----------
    weights : array_like or torch.Tensor
        Any shape, non-empty, finite.
    fmt : format or str
    overflow : {"saturate", "error"} (or "inf" for floats), default "saturate"

    Returns
    -------
    dict
        ``format``, ``bits``; ``mean_abs_error`` and ``max_abs_error`` (in the
        weights' units); ``rel_rms_error`` = ‖q − w‖₂ / ‖w‖₂ (0 if all
        weights are 0); ``fraction_saturated`` (share of weights beyond the
        range, clamped or sent to inf); ``fraction_flushed_to_zero`` (share of
        weights that are non-zero but stored as 0). Both shares are of all
        weights.

    Examples
    --------
    >>> quantization_error([0.5, 0.01, 20.0], "q3.4")["fraction_saturated"]
    0.3333333333333333

    Taught in chapter 01, "Number representations".
    """
    f = fmt
    _check_overflow(overflow, f)
    w = weights.ravel()
    q, over = _round(w, f, overflow, "weights")
    err = np.abs(q - w)
    norm = math.sqrt(float(np.sum(w * w)))
    return {
        "format": f.name,
        "bits": f.bits,
        "mean_abs_error": float(err.mean()),
        "max_abs_error": float(err.max()),
        "rel_rms_error": math.sqrt(float(np.sum(err * err))) / norm if norm > 0 else 0.0,
        "fraction_saturated": float(over.mean()),
        "fraction_flushed_to_zero": float(((q == 0) & (w != 0)).mean()),
    }


def _float_entry(f: FloatFormat) -> dict:
    return {"bits": f.bits, "sign_bits": f.sign_bits, "exponent_bits": f.exponent_bits,
            "mantissa_bits": f.mantissa_bits, "max": f.max, "min_normal": f.min_normal,
            "min_subnormal": f.min_subnormal, "eps": f.eps}


@validate_params()
def numbers_report() -> dict:
    """Chapter 1's headline numbers as a JSON-able dict (``effdl reproduce numbers``).

    Every value is computed from the bit layout; the ``matches_numpy`` /
    ``matches_torch`` flags say whether it equals ``numpy.finfo`` /
    ``numpy.iinfo`` (fp32, fp16, ints) or ``torch.finfo`` (bf16, which numpy
    lacks; torch.finfo has no smallest subnormal, so that one is not compared).

    Shape::

        {"formats": {"fp32": {bits, sign_bits, exponent_bits, mantissa_bits, max,
                              min_normal, min_subnormal, eps, matches_numpy},
                     "fp16": {... same ...},
                     "bf16": {... same, but matches_torch},
                     "int32": {bits, min, max, matches_numpy}, "int16": ..., "int8": ...},
         "fixed_point": {format, bits, sign_bits, integer_bits, fraction_bits,
                         min, max, resolution}}

    Taught in chapter 01, "Number representations".
    """

    formats = {}
    for f, np_type in ((FP32, np.float32), (FP16, np.float16)):
        fi = np.finfo(np_type)
        entry = _float_entry(f)
        entry["matches_numpy"] = bool(
            f.max == float(fi.max) and f.min_normal == float(fi.smallest_normal)
            and f.min_subnormal == float(fi.smallest_subnormal) and f.eps == float(fi.eps)
            and f.bits == fi.bits and f.mantissa_bits == fi.nmant and f.exponent_bits == fi.nexp)
        formats[f.name] = entry
    ti = torch.finfo(torch.bfloat16)
    entry = _float_entry(BF16)
    entry["matches_torch"] = bool(BF16.max == ti.max and BF16.min_normal == ti.smallest_normal
                                  and BF16.eps == ti.eps and BF16.bits == ti.bits)
    formats["bf16"] = entry
    for f, np_type in ((INT32, np.int32), (INT16, np.int16), (INT8, np.int8)):
        ii = np.iinfo(np_type)
        formats[f.name] = {"bits": f.bits, "min": f.min, "max": f.max,
                           "matches_numpy": bool(f.min == int(ii.min) and f.max == int(ii.max)
                                                 and f.bits == ii.bits)}
    q = Q3_4
    fixed = {"format": q.name, "bits": q.bits, "sign_bits": q.sign_bits, "integer_bits": q.int_bits,
             "fraction_bits": q.frac_bits, "min": q.min, "max": q.max, "resolution": q.resolution}
    return {"formats": formats, "fixed_point": fixed}


@validate_params(model=Module(), fmt=FORMAT, overflow=OVERFLOW)
def round_model(model, fmt: Format | str, overflow: str = "saturate"):
    """A copy of a torch model with every parameter rounded to ``fmt``.

    Storage-only rounding (arithmetic stays fp32): the simplest experiment of
    chapter 1, before chapter 5's quantisation with chosen scales. Every
    parameter must be finite (a NaN or inf weight is refused, naming it).

    Taught in chapter 01, "Number representations".
    """
    _check_overflow(overflow, fmt)
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in rounded.named_parameters():
            label = f"model's parameter {name}"
            values, _ = _round(check_part("round_model", _FINITE, label, p), fmt, overflow, label)
            p.copy_(torch.as_tensor(np.asarray(values), dtype=p.dtype))
    return rounded
