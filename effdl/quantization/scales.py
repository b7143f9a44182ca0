"""Scale and zero-point math: bit-width ranges, fixed-point formats, ``quantize`` / ``dequantize`` / ``fake_quantize``.

Taught in chapter 5, "Quantization" (steps 2 and the element-wise primitives of step 3).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ..numerics import FixedPointFormat
from .._validate import _fail
from ..validation import Bool, Instance, Interval, OneOf, Options, Tensor, check_part, validate_params
from .common import BITS, PERCENTILE, VALUES, _as_float, _int_dtype, _qrange, _refuse_nan
from .stats import TensorStats, _clipped_range, tensor_stats

# ---------------------------------------------------------------------------
# 2. Choosing the format: radix point, or scale and zero point
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FixedPoint:
    """A fixed-point format with its radix point anywhere: value = k · 2^-frac_bits.

    ``n_bits`` includes the sign bit when ``signed``. ``int_bits = n_bits −
    sign − frac_bits`` may be negative (the radix point left of the word:
    small weights) or exceed the word (a negative ``frac_bits``): this is
    dynamic fixed point, where each tensor gets its own radix point. When
    both are non-negative, :meth:`to_format` gives chapter 1's
    :class:`effdl.numerics.FixedPointFormat`.

    >>> FixedPoint(8, 9, True).name, FixedPoint(8, 9, True).max
    ('q-2.9', 0.248046875)

    Behind chapter 05, "Quantization".
    """

    n_bits: int
    frac_bits: int
    signed: bool = True

    def __post_init__(self):
        object.__setattr__(self, "n_bits", check_part("FixedPoint", BITS, "n_bits", self.n_bits))
        object.__setattr__(self, "frac_bits", check_part("FixedPoint", Interval(int, -126, 126), "frac_bits",
                                                         self.frac_bits))
        check_part("FixedPoint", Bool(), "signed", self.signed)

    @property
    def int_bits(self) -> int:
        return self.n_bits - int(self.signed) - self.frac_bits

    @property
    def scale(self) -> float:
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def qmin(self) -> int:
        return _qrange(self.n_bits, self.signed)[0]

    @property
    def qmax(self) -> int:
        return _qrange(self.n_bits, self.signed)[1]

    @property
    def min(self) -> float:
        return self.qmin * self.scale

    @property
    def max(self) -> float:
        return self.qmax * self.scale

    @property
    def name(self) -> str:
        return f"{'' if self.signed else 'u'}q{self.int_bits}.{self.frac_bits}"

    def to_format(self):
        """This format as :class:`effdl.numerics.FixedPointFormat` (needs int_bits, frac_bits ≥ 0)."""
        if self.int_bits < 0 or self.frac_bits < 0:
            raise ValueError(f"FixedPoint.to_format: the format must be one with int_bits ≥ 0 and frac_bits ≥ 0 "
                             f"to convert; got {self.name!r}.")
        return FixedPointFormat(self.int_bits, self.frac_bits, self.signed)


def _next_pow2(s: torch.Tensor) -> torch.Tensor:
    """Smallest power of two ≥ s (s > 0), exactly: frexp gives s = m · 2^e with m in [0.5, 1)."""
    m, e = torch.frexp(s)
    e = torch.where(m == 0.5, e - 1, e)
    return torch.ldexp(torch.ones_like(s), e)


def _choose_scale_core(lo: torch.Tensor, hi: torch.Tensor, n_bits: int, symmetric: bool,
                       power_of_two: bool) -> tuple[torch.Tensor, torch.Tensor]:
    lo = torch.clamp(lo.double(), max=0.0)  # the range must contain 0, so that 0 is exact (Jacob et al.)
    hi = torch.clamp(hi.double(), min=0.0)
    qmin, qmax = _qrange(n_bits, symmetric)
    if symmetric:
        scale = torch.maximum(hi / qmax, lo / qmin)  # cover both ends of the two's-complement grid
    else:
        scale = (hi - lo) / (qmax - qmin)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero range: any scale works
    if power_of_two:
        scale = _next_pow2(scale)
    if symmetric:
        zero_point = torch.zeros_like(scale, dtype=torch.int64)
    else:
        zero_point = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax).to(torch.int64)
    return scale, zero_point


RANGE_END = OneOf(Interval(float, None, None), VALUES)    # a number (per tensor) or a tensor (e.g. per channel)


@validate_params(min_val=RANGE_END, max_val=RANGE_END, n_bits=BITS, symmetric=Bool(), power_of_two=Bool())
def choose_scale(min_val: Any, max_val: Any, n_bits: int, *, symmetric: bool = True,
                 power_of_two: bool = False):
    """Scale and zero point of an affine quantizer covering ``[min_val, max_val]``.

    The range is first widened to contain 0 (so that zero — ReLU's output,
    padding — is exactly representable).

    - ``symmetric=True``: signed range ``[−2^(n−1), 2^(n−1) − 1]``,
      ``zero_point = 0``, ``scale = max(max/qmax, min/qmin)``.
    - ``symmetric=False``: unsigned range ``[0, 2^n − 1]``,
      ``scale = (max − min) / (2^n − 1)``, ``zero_point = −round(min / scale)``.
    - ``power_of_two=True`` rounds the scale up to a power of two: a radix
      point (see :func:`choose_fixed_point`).

    An all-zero range gets ``scale = 1``.

    Parameters
    ----------
    min_val, max_val : float or tensor
        Scalars (per-tensor) or tensors of one shape (e.g. per channel).
    n_bits : int, 2..32

    Returns
    -------
    (scale, zero_point)
        ``(float, int)`` for scalar input, else ``(float64 tensor, int64 tensor)``.

    >>> choose_scale(-1.0, 1.0, 8, power_of_two=True)    # 1/127 rounded up to 2^-6
    (0.015625, 0)
    >>> choose_scale(-0.5, 2.0, 8, symmetric=False)      # 2.5 / 255, and 0.0 ↦ 51
    (0.00980392156862745, 51)

    Taught in chapter 05, "Quantization".
    """
    scalar = isinstance(min_val, float) and isinstance(max_val, float)   # numbers were converted to float
    lo = torch.as_tensor(min_val, dtype=torch.float64) if isinstance(min_val, float) else min_val.double()
    hi = torch.as_tensor(max_val, dtype=torch.float64) if isinstance(max_val, float) else max_val.double()
    if lo.shape != hi.shape:
        _fail(ValueError, "max_val", f"the same shape as min_val {tuple(lo.shape)}", tuple(hi.shape))
    if bool((lo > hi).any()):
        _fail(ValueError, "min_val", "≤ max_val", min_val)
    scale, zero_point = _choose_scale_core(lo, hi, n_bits, symmetric, power_of_two)
    if scalar:
        return float(scale), int(zero_point)
    return scale, zero_point


@validate_params(data=OneOf(Instance(TensorStats, "a TensorStats"), VALUES), n_bits=BITS, signed=Bool(optional=True),
                 percentile=PERCENTILE)
def choose_fixed_point(data: Any, n_bits: int, *, signed: bool | None = None,
                       percentile: float | None = None) -> FixedPoint:
    """The radix point for ``data`` in an ``n_bits`` word: the finest one covering its range.

    Chooses the most fraction bits such that ``[min, max]`` (or the
    percentile-clipped range ``[P(100 − p), P(p)]``) fits the word — the
    lecture's "decide the radix point from the statistics". Values beyond a
    clipped range saturate.

    Parameters
    ----------
    data : tensor, array_like or TensorStats
    n_bits : int, 2..32 (sign bit included when signed)
    signed : bool, optional
        Default: signed exactly when the data has negative values.
    percentile : float in (50, 100], optional
        Clip to this percentile instead of min/max (needs it in the stats).

    >>> w = torch.tensor([-0.3, 0.05, 0.2])
    >>> fp = choose_fixed_point(w, 8)
    >>> fp.name, fp.scale, fp.min
    ('q-1.8', 0.00390625, -0.5)
    >>> choose_fixed_point(torch.tensor([0.0, 5.0]), 8).name   # unsigned: 3 integer, 5 fraction bits
    'uq3.5'

    Taught in chapter 05, "Quantization".
    """
    stats = data if isinstance(data, TensorStats) else tensor_stats(
        data, () if percentile is None else (100.0 - percentile, percentile))
    lo, hi = _clipped_range(stats, percentile)
    if signed is None:
        signed = lo < 0
    if not signed:
        lo = 0.0
    scale, _ = _choose_scale_core(torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64),
                                  n_bits, signed, True)
    return FixedPoint(n_bits, -int(torch.frexp(scale)[1]) + 1, signed)


WEIGHT_CLIPS = ("minmax", "mse")
_MSE_SHRINK = tuple(2.0 ** (-j / 2) for j in range(9))   # candidate ranges: α · [min, max], α = 1 … 1/16


@validate_params(weight=Tensor(dtype=None, convert=False), n_bits=BITS, per_channel=Bool(), symmetric=Bool(),
                 power_of_two=Bool(), clip=Options(WEIGHT_CLIPS))
def weight_qparams(weight: torch.Tensor, n_bits: int, *, per_channel: bool = True, symmetric: bool = True,
                   power_of_two: bool = False, clip: str = "minmax") -> tuple[torch.Tensor, torch.Tensor]:
    """Scale(s) and zero point(s) for a weight tensor.

    ``clip="minmax"`` covers the weights' whole range; ``clip="mse"`` tries
    the ranges ``α · [min, max]`` for α = 1, 2^-½, …, 2^-4 and keeps, per
    channel, the one with the least squared quantization error (ties: the
    wider range) — at 2–4 bits clipping a few large weights beats rounding
    most of them to zero (Qiu et al., FPGA 2016, likewise choose each
    layer's radix point to minimise the weights' quantization error, there
    the absolute error). ``per_channel=True``: one scale per output
    channel (dim 0), shapes (out,); else 0-d tensors.

    Returns ``(float64 scale, int64 zero_point)``.

    Behind chapter 05, "Quantization".
    """
    return _weight_qparams(_as_float(weight), n_bits, per_channel, symmetric, power_of_two, clip)


def _weight_qparams(weight, n_bits, per_channel, symmetric, power_of_two, clip="minmax"):
    w = weight.detach().double()
    per_channel = per_channel and w.ndim > 1
    flat = w.flatten(1) if per_channel else w.reshape(1, -1)   # (out, in · kh · kw), or (1, numel)
    lo, hi = flat.amin(1), flat.amax(1)                        # (out,)
    scale, zero_point = _choose_scale_core(lo, hi, n_bits, symmetric, power_of_two)
    if clip == "mse":
        qmin, qmax = _qrange(n_bits, symmetric)
        best = None
        for alpha in _MSE_SHRINK:
            s, z = _choose_scale_core(lo * alpha, hi * alpha, n_bits, symmetric, power_of_two)
            q = (torch.round(flat / s[:, None]) + z[:, None]).clamp(qmin, qmax)
            err = ((q - z[:, None]) * s[:, None] - flat).square().sum(1)          # (out,)
            if best is None:
                best, scale, zero_point = err, s, z
            else:
                better = err < best
                best = torch.where(better, err, best)
                scale, zero_point = torch.where(better, s, scale), torch.where(better, z, zero_point)
    if not per_channel:
        return scale.reshape(()), zero_point.reshape(())
    return scale, zero_point


# ---------------------------------------------------------------------------
# 3. Quantize, dequantize, fake quantize (straight-through estimator)
# ---------------------------------------------------------------------------

# scale, zero_point and axis, declared; how they fit x (lengths, the integer range) is checked by _check_qparams
SCALE = OneOf(Interval(float, 0, None, closed="neither"), Tensor(dtype=None))
ZERO_POINT = OneOf(Interval(int, None, None), Tensor(dtype="int", finite=False))
AXIS = Interval(int, None, None, optional=True)


def _check_qparams(x: torch.Tensor, scale: Any, zero_point: Any, qmin: int, qmax: int,
                   axis: Any) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    """(scale, zero_point), declared as SCALE / ZERO_POINT / AXIS, as float64 / int64 tensors shaped to
    broadcast against x."""
    if axis is not None:
        if x.ndim == 0:
            _fail(ValueError, "axis", "None for a 0-d tensor", axis)
        if not -x.ndim <= axis < x.ndim:
            _fail(ValueError, "axis", f"an integer in [{-x.ndim}, {x.ndim - 1}]", axis)
        axis %= x.ndim
    s = torch.as_tensor(scale).detach().double().cpu()
    if bool((s <= 0).any()):
        _fail(ValueError, "scale", "positive and finite", scale)
    z = torch.as_tensor(zero_point).detach().cpu().to(torch.int64)
    if bool(((z < qmin) | (z > qmax)).any()):
        _fail(ValueError, "zero_point", f"in the integer range [{qmin}, {qmax}]", zero_point)
    if axis is None:
        if s.numel() != 1 or z.numel() != 1:
            _fail(ValueError, "scale", "a single value without axis (pass axis= for per-channel scales)",
                  tuple(s.shape))
        return s.reshape(()), z.reshape(()), None
    n = x.shape[axis]
    if s.numel() == 1:
        s = s.reshape(1).expand(n)
    if z.numel() == 1:
        z = z.reshape(1).expand(n)
    if s.ndim != 1 or s.numel() != n:
        _fail(ValueError, "scale", f"of length {n} (x.shape[{axis}]) for per-channel quantization",
              tuple(s.shape))
    if z.ndim != 1 or z.numel() != n:
        _fail(ValueError, "zero_point", f"of length {n} (x.shape[{axis}]) for per-channel quantization",
              tuple(z.shape))
    shape = [1] * x.ndim
    shape[axis] = n
    return s.reshape(shape), z.reshape(shape), axis


def _quantize_core(x, scale, zero_point, qmin, qmax):
    # q = clamp(round(x / s) + z, qmin, qmax), in float64 (exact for |q| < 2^53), ties to even
    q = torch.round(x.double() / scale.to(x.device)) + zero_point.to(x.device)
    return q.clamp(qmin, qmax).to(_int_dtype(qmin, qmax))


@validate_params(x=Tensor(dtype=None, finite=False), scale=SCALE, zero_point=ZERO_POINT, n_bits=BITS, signed=Bool(),
                 axis=AXIS)
def quantize(x: Any, scale: Any, zero_point: Any = 0, n_bits: int = 8, *, signed: bool = True,
             axis: int | None = None) -> torch.Tensor:
    """Integers ``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` (round half to even).

    Parameters
    ----------
    x : tensor or array_like
        Values; NaN raises, ±inf saturates.
    scale : positive float, or tensor of ``x.shape[axis]`` positive floats
    zero_point : int or int tensor, default 0
        Within the integer range.
    n_bits : int, 2..32
    signed : bool, default True
        ``[−2^(n−1), 2^(n−1) − 1]`` if True, else ``[0, 2^n − 1]``.
    axis : int, optional
        The channel axis for per-channel scales (e.g. 0 for weights).

    Returns
    -------
    torch.Tensor
        Of ``x``'s shape, in the smallest integer dtype that holds the range
        (int8 / uint8 up to 8 bits, int16, int32, int64).

    >>> quantize(torch.tensor([-1.0, 0.26, 0.5, 9.0]), 0.5, 0, 4)
    tensor([-2,  1,  1,  7], dtype=torch.int8)

    Taught in chapter 05, "Quantization".
    """
    x = _as_float(x)
    _refuse_nan("quantize", "x", x)
    qmin, qmax = _qrange(n_bits, signed)
    s, z, _ = _check_qparams(x, scale, zero_point, qmin, qmax, axis)
    return _quantize_core(x, s, z, qmin, qmax)


@validate_params(q=Tensor(dtype="int", finite=False, convert=False, nonempty=False), scale=SCALE, zero_point=ZERO_POINT,
                 axis=AXIS, dtype=Instance(torch.dtype, "a floating-point torch.dtype"))
def dequantize(q: torch.Tensor, scale: Any, zero_point: Any = 0, *, axis: int | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Real values ``(q − zero_point) · scale`` of integer tensor ``q`` (computed in float64, then ``dtype``).

    >>> dequantize(torch.tensor([-2, 1, 7], dtype=torch.int8), 0.5)
    tensor([-1.0000,  0.5000,  3.5000])

    Taught in chapter 05, "Quantization".
    """
    if not dtype.is_floating_point:
        _fail(TypeError, "dtype", "a floating-point torch.dtype", dtype)
    s, z, _ = _check_qparams(q, scale, zero_point, -(2 ** 63), 2 ** 63 - 1, axis)
    return ((q.to(torch.int64) - z.to(q.device)).double() * s.to(q.device)).to(dtype)


class _FakeQuantizeSTE(torch.autograd.Function):
    """x̂ = (clamp(round(x/s) + z, qmin, qmax) − z) · s; backward: ∂x̂/∂x = 1 where not clipped, else 0."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        q = torch.round(x / scale) + zero_point
        inside = (q >= qmin) & (q <= qmax)        # same mask as torch.fake_quantize_per_tensor_affine
        ctx.save_for_backward(inside)
        return (q.clamp(qmin, qmax) - zero_point) * scale

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None


def _fake_quantize_core(x, scale, zero_point, qmin, qmax):
    """Core of :func:`fake_quantize` on clean input; scale / zero_point already broadcastable."""
    return _FakeQuantizeSTE.apply(x, scale.to(device=x.device, dtype=x.dtype),
                                  zero_point.to(device=x.device, dtype=x.dtype), qmin, qmax)


@validate_params(x=Tensor(convert=False, finite=False), scale=SCALE, zero_point=ZERO_POINT, n_bits=BITS, signed=Bool(),
                 axis=AXIS)
def fake_quantize(x: torch.Tensor, scale: Any, zero_point: Any = 0, n_bits: int = 8, *, signed: bool = True,
                  axis: int | None = None) -> torch.Tensor:
    """Quantize then dequantize, in ``x``'s dtype, with a straight-through gradient.

    Forward: ``(clamp(round(x / scale) + zero_point, qmin, qmax) − zero_point)
    · scale``. Backward (straight-through estimator, Bengio et al. 2013;
    as in ``torch.fake_quantize_per_tensor_affine``): the incoming gradient
    passes unchanged where ``round(x / scale) + zero_point`` lies within
    ``[qmin, qmax]`` and is zero where the value was clipped.

    Arguments as in :func:`quantize`; ``x`` must be a floating-point tensor.

    >>> x = torch.tensor([0.2, 0.9, 5.0], requires_grad=True)
    >>> y = fake_quantize(x, 0.25, 0, 4)
    >>> y.sum().backward()
    >>> y.detach(), x.grad
    (tensor([0.2500, 1.0000, 1.7500]), tensor([1., 1., 0.]))

    Behind chapter 05, "Quantization".
    """
    _refuse_nan("fake_quantize", "x", x)
    qmin, qmax = _qrange(n_bits, signed)
    s, z, _ = _check_qparams(x, scale, zero_point, qmin, qmax, axis)
    return _fake_quantize_core(x, s, z, qmin, qmax)
