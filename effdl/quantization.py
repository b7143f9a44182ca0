"""Linear (fixed-point) quantization of weights and activations, and integer-only inference.

Taught in chapter 5, "Quantization". The seed's recipe, as code:

1. **Gather statistics** of weights and activations — min, max and
   percentiles on a few calibration batches (:func:`tensor_stats`,
   :func:`collect_activation_stats`).
2. **Choose the format**: the radix point of a fixed-point number
   (:func:`choose_fixed_point`: how many integer and how many fraction bits —
   "dynamic fixed point", Courbariaux, Bengio & David 2014; Gupta et al.,
   ICML 2015), or more generally an affine ``scale`` and ``zero_point``
   (:func:`choose_scale`), per tensor or per output channel.
3. **Fine-tune in float with fake quantization** (:func:`fake_quantize`,
   :func:`quantize_model`, :func:`finetune_quantized`): the forward pass sees
   quantized values, the backward pass uses the straight-through estimator
   (gradient 1 inside the clipping range, 0 outside).
4. **Convert to fixed point** and run with integers only
   (:class:`IntegerLeNet`): n-bit weights and activations, int32
   accumulators, the bias in int32 at scale ``s_w · s_a``, and requantization
   between layers by an integer multiplier and a rounding right shift — the
   integer-arithmetic-only inference of Jacob et al., *Quantization and
   Training of Neural Networks for Efficient Integer-Arithmetic-Only
   Inference*, CVPR 2018.

Conventions. A quantized value is ``q = clamp(round(x / scale) + zero_point,
qmin, qmax)`` and stands for ``x̂ = (q − zero_point) · scale``; rounding is
round-half-to-even throughout (as ``torch.round`` and chapter 1's
:func:`effdl.numerics.round_to_format`). A *symmetric* quantizer is signed
(two's complement, ``[−2^(n−1), 2^(n−1) − 1]``) with ``zero_point = 0``; an
*asymmetric* one is unsigned (``[0, 2^n − 1]``) with an integer zero point —
torch's qint8 / quint8 convention. The element-wise primitives
(:func:`quantize`, :func:`dequantize`, :func:`fake_quantize`,
:func:`choose_scale`) accept ``n_bits`` from 2 to 32; models
(:func:`quantize_model`, :class:`IntegerLeNet`, :func:`sweep_bits`) accept
2 to 16 bits (1 bit is chapter 6's binary nets, ``effdl.ternary``).

**Why the integer model equals the fake-quantized one bit for bit.** With
``power_of_two=True`` (the default; a scale 2^-f *is* a radix point) every
fake-quantized weight, activation and bias is a dyadic rational ``k · 2^-f``
with few significant bits, and in eval mode :class:`QuantizedModel` computes
in float64: every product and partial sum is then exact (the integer
accumulator is proven below 2^31 at 8 bits, and below float64's 2^53 at
every supported width), so the float
layer output equals ``s_a · s_w · acc`` exactly and the next quantizer's
``round(y / s)`` equals the integer model's rounding right shift of ``acc``
(half to even in both). Max-pooling and ReLU commute with the positive,
per-channel scale, so the integer model pools the accumulator and applies
ReLU as a clamp at the zero point. With arbitrary scales
(``power_of_two=False``) the integer model uses Jacob et al.'s 31-bit
fixed-point multiplier and agrees up to rare one-step differences;
:func:`compare_integer` measures them.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._validate import _fail, check_bool, check_choice, check_float, check_int, check_type
from .data import Split
from .models import LeNet5, LeNet300
from .train import History, evaluate, fit

__all__ = [
    "TensorStats", "tensor_stats", "collect_activation_stats",
    "FixedPoint", "qrange", "choose_scale", "choose_fixed_point", "weight_qparams", "WEIGHT_CLIPS",
    "quantize", "dequantize", "fake_quantize",
    "QuantConfig", "FakeQuantLinear", "FakeQuantConv2d", "QuantizedModel", "quantize_model",
    "finetune_quantized",
    "fixed_point_multiplier", "requantize", "IntegerLayer", "IntegerLeNet", "compare_integer",
    "torch_ao_int8", "sweep_bits", "bits_table", "quantization_report",
    "DEFAULT_PERCENTILES", "MODEL_BITS", "PRIMITIVE_BITS",
]

PRIMITIVE_BITS = (2, 32)  # quantize / dequantize / fake_quantize / choose_scale (int32 biases included)
MODEL_BITS = (2, 16)      # weights and activations of a quantized model
DEFAULT_PERCENTILES = (0.01, 0.1, 99.9, 99.99)
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
QUANT_TYPES = (nn.Linear, nn.Conv2d)


# ---------------------------------------------------------------------------
# Checks shared by the public functions
# ---------------------------------------------------------------------------

def _check_bits(name: str, value: Any, bounds: tuple[int, int] = PRIMITIVE_BITS, *, optional: bool = False):
    if optional and value is None:
        return None
    return check_int(name, value, min=bounds[0], max=bounds[1])


def _check_tensor(name: str, x: Any, *, allow_inf: bool = False) -> torch.Tensor:
    """``x`` as a floating-point tensor (arrays and lists are converted); non-empty, no NaN."""
    if not isinstance(x, torch.Tensor):
        try:
            arr = np.asarray(x)
        except Exception:
            arr = None
        if arr is None or arr.dtype.kind not in "iuf" or isinstance(x, bool):
            _fail(TypeError, name, "a torch.Tensor or an array of real numbers", x)
        x = torch.as_tensor(arr, dtype=torch.float64)
    if x.dtype == torch.bool or x.is_complex():
        _fail(TypeError, name, "a real-valued tensor", x)
    if not x.is_floating_point():
        x = x.to(torch.float64)
    if x.numel() == 0:
        _fail(ValueError, name, "non-empty", x)
    bad = torch.isnan(x) if allow_inf else ~torch.isfinite(x)
    if bool(bad.any()):
        what = "free of NaN" if allow_inf else "finite (no NaN or inf)"
        _fail(ValueError, name, what, float(x.detach()[bad].flatten()[0]))
    return x


def qrange(n_bits: int, signed: bool) -> tuple[int, int]:
    """The integer range of an ``n_bits`` word: two's complement if ``signed``.

    >>> qrange(8, True), qrange(8, False), qrange(2, True)
    ((-128, 127), (0, 255), (-2, 1))
    """
    n_bits = _check_bits("n_bits", n_bits)
    check_bool("signed", signed)
    return (-(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1) if signed else (0, 2 ** n_bits - 1)


def _int_dtype(qmin: int, qmax: int) -> torch.dtype:
    """The smallest torch integer dtype holding [qmin, qmax]."""
    for dt in (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64):
        info = torch.iinfo(dt)
        if info.min <= qmin and qmax <= info.max:
            return dt
    raise AssertionError(f"no integer dtype holds [{qmin}, {qmax}]")


# ---------------------------------------------------------------------------
# 1. Statistics
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorStats:
    """Summary of a tensor's values: count, min, max, mean, std and percentiles.

    ``percentiles`` maps a percentile in [0, 100] to its value (linear
    interpolation, numpy's default).
    """

    numel: int
    min: float
    max: float
    mean: float
    std: float
    percentiles: dict = field(default_factory=dict)

    @property
    def absmax(self) -> float:
        return max(abs(self.min), abs(self.max))

    def percentile(self, p: float) -> float:
        """The stored ``p``-th percentile (ValueError if it was not computed)."""
        for key, value in self.percentiles.items():
            if math.isclose(key, p, rel_tol=0, abs_tol=1e-9):
                return value
        _fail(ValueError, "percentile", f"one of the computed percentiles {sorted(self.percentiles)}", p)

    def range(self, percentile: float | None = None) -> tuple[float, float]:
        """``(min, max)``, or the clipped range ``(P[100 − p], P[p])`` for ``percentile=p``."""
        if percentile is None:
            return self.min, self.max
        p = _check_percentile(percentile)
        return self.percentile(100.0 - p), self.percentile(p)


def _check_percentile(p: Any) -> float:
    return check_float("percentile", p, min=50.0, max=100.0, min_open=True)


def _check_percentiles(percentiles: Any) -> tuple[float, ...]:
    if isinstance(percentiles, (str, bytes)) or not isinstance(percentiles, Iterable):
        _fail(TypeError, "percentiles", "a sequence of numbers in [0, 100]", percentiles)
    return tuple(check_float("percentiles", p, min=0.0, max=100.0) for p in percentiles)


def _stats_core(x: torch.Tensor, percentiles: tuple[float, ...]) -> TensorStats:
    x64 = x.detach().double()
    pct = {}
    if percentiles:
        values = np.percentile(x.detach().float().cpu().numpy().ravel(), list(percentiles))
        pct = {float(p): float(v) for p, v in zip(percentiles, np.atleast_1d(values))}
    return TensorStats(numel=x.numel(), min=float(x64.min()), max=float(x64.max()), mean=float(x64.mean()),
                       std=float(x64.std(unbiased=False)), percentiles=pct)


def tensor_stats(x: Any, percentiles: Iterable[float] = DEFAULT_PERCENTILES) -> TensorStats:
    """Min, max, mean, std and ``percentiles`` of all entries of ``x``.

    Parameters
    ----------
    x : torch.Tensor or array_like
        Any shape, non-empty, finite (NaN or inf raises ``ValueError``).
    percentiles : sequence of float in [0, 100], default ``DEFAULT_PERCENTILES``

    >>> s = tensor_stats(torch.arange(101.0), percentiles=(1, 99))
    >>> s.min, s.max, s.percentiles
    (0.0, 100.0, {1.0: 1.0, 99.0: 99.0})
    """
    x = _check_tensor("x", x)
    return _stats_core(x, _check_percentiles(percentiles))


def _batches(data: Any, n_batches: int | None, batch_size: int, name: str = "data"):
    """Yield input batches from a Split, a tensor of inputs, or an iterable of tensors / (x, y) pairs."""
    if isinstance(data, Split):
        data = data.x
    if isinstance(data, torch.Tensor):
        source = data.split(batch_size)
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, dict)):
        source = data
    else:
        _fail(TypeError, name, "an effdl.data.Split, a tensor of inputs or an iterable of batches", data)
    count = 0
    for i, batch in enumerate(source):
        if n_batches is not None and i >= n_batches:
            break
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            _fail(TypeError, name, "batches of floating-point tensors (or (x, y) pairs)", type(x).__name__)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{name} must hold non-empty batches; batch {i} has shape {tuple(x.shape)}.")
        if not bool(torch.isfinite(x).all()):
            bad = float(x[~torch.isfinite(x)].flatten()[0])
            raise ValueError(f"{name} must be finite (no NaN or inf); batch {i} contains {bad!r}.")
        count += 1
        yield x
    if count == 0:
        _fail(ValueError, name, "at least one batch", data)


def _forward(model: nn.Module, x: torch.Tensor, name: str):
    """``model(x)``; a batch the model cannot take (wrong shape) is a ValueError naming ``name``."""
    try:
        return model(x)
    except RuntimeError as err:
        raise ValueError(f"{name} must hold inputs that {type(model).__name__} accepts; a batch of shape "
                         f"{tuple(x.shape)} failed with: {err}") from err


def _quant_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, QUANT_TYPES)}


@torch.no_grad()
def collect_activation_stats(model: nn.Module, data: Any, n_batches: int | None = None, *,
                             batch_size: int = 256,
                             percentiles: Iterable[float] = DEFAULT_PERCENTILES) -> dict[str, dict[str, TensorStats]]:
    """Statistics of every Linear / Conv2d layer's input and output on calibration data.

    Forward hooks record each layer's input (what an activation quantizer at
    that layer sees) and output over all batches; the statistics are exact
    over everything seen (values are kept, then summarised once).

    Parameters
    ----------
    model : nn.Module
        Run in eval mode (its mode is restored afterwards).
    data : Split, tensor (N, …) or iterable of tensors / (x, y) pairs
        Calibration inputs; NaN or inf raises ``ValueError``.
    n_batches : int, optional
        Use only the first ``n_batches`` batches (default: all).
    batch_size : int, default 256
        Batch size when ``data`` is a Split or a tensor.
    percentiles : sequence of float, default ``DEFAULT_PERCENTILES``

    Returns
    -------
    dict
        ``{layer name: {"input": TensorStats, "output": TensorStats}}`` in
        module order.
    """
    check_type("model", model, nn.Module, "a torch.nn.Module")
    n_batches = None if n_batches is None else check_int("n_batches", n_batches, min=1)
    batch_size = check_int("batch_size", batch_size, min=1)
    percentiles = _check_percentiles(percentiles)
    layers = _quant_layers(model)
    if not layers:
        _fail(ValueError, "model", "a model with at least one Linear or Conv2d layer", type(model).__name__)
    seen = {name: {"input": _RunningStats(bool(percentiles)), "output": _RunningStats(bool(percentiles))}
            for name in layers}

    def hook(name):
        def record(module, inputs, output):
            seen[name]["input"].add(inputs[0], f"the input of layer {name!r}")
            seen[name]["output"].add(output, f"the output of layer {name!r}")
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        for x in _batches(data, n_batches, batch_size):
            _forward(model, x.to(device), "data")
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {name: {kind: acc.result(percentiles) for kind, acc in parts.items()}
            for name, parts in seen.items() if parts["input"].count}  # skips layers the forward never called


class _RunningStats:
    """Min, max, sum and sum of squares over batches (float64); the values themselves only for percentiles."""

    def __init__(self, keep_values: bool):
        self.keep = keep_values
        self.count, self.min, self.max, self.sum, self.sumsq, self.values = 0, math.inf, -math.inf, 0.0, 0.0, []

    def add(self, t: torch.Tensor, what: str):
        t = t.detach()
        lo, hi = (float(v) for v in torch.aminmax(t))   # NaN propagates into min and max
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{what} must be finite on the calibration data; it contains NaN or inf.")
        self.count += t.numel()
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        t64 = t.double().flatten()
        self.sum += float(t64.sum())
        self.sumsq += float(torch.dot(t64, t64))
        if self.keep:
            self.values.append(t.float().cpu().flatten())

    def result(self, percentiles: tuple[float, ...]) -> TensorStats:
        mean = self.sum / self.count
        pct = {}
        if percentiles:
            values = np.percentile(torch.cat(self.values).numpy(), list(percentiles))
            pct = {float(p): float(v) for p, v in zip(percentiles, np.atleast_1d(values))}
        return TensorStats(numel=self.count, min=self.min, max=self.max, mean=mean,
                           std=math.sqrt(max(self.sumsq / self.count - mean * mean, 0.0)), percentiles=pct)


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
    """

    n_bits: int
    frac_bits: int
    signed: bool = True

    def __post_init__(self):
        object.__setattr__(self, "n_bits", _check_bits("n_bits", self.n_bits))
        object.__setattr__(self, "frac_bits", check_int("frac_bits", self.frac_bits, min=-126, max=126))
        check_bool("signed", self.signed)

    @property
    def int_bits(self) -> int:
        return self.n_bits - int(self.signed) - self.frac_bits

    @property
    def scale(self) -> float:
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def qmin(self) -> int:
        return qrange(self.n_bits, self.signed)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.n_bits, self.signed)[1]

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
        from .numerics import FixedPointFormat
        if self.int_bits < 0 or self.frac_bits < 0:
            _fail(ValueError, "the fixed-point format", "one with int_bits ≥ 0 and frac_bits ≥ 0 to convert",
                  self.name)
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
    qmin, qmax = qrange(n_bits, symmetric)
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
    """
    n_bits = _check_bits("n_bits", n_bits)
    check_bool("symmetric", symmetric)
    check_bool("power_of_two", power_of_two)
    scalar = isinstance(min_val, numbers.Real) and isinstance(max_val, numbers.Real)
    if isinstance(min_val, bool) or isinstance(max_val, bool):
        _fail(TypeError, "min_val" if isinstance(min_val, bool) else "max_val", "a real number or a tensor",
              min_val if isinstance(min_val, bool) else max_val)
    lo = _check_tensor("min_val", min_val).double()
    hi = _check_tensor("max_val", max_val).double()
    if lo.shape != hi.shape:
        _fail(ValueError, "max_val", f"the same shape as min_val {tuple(lo.shape)}", tuple(hi.shape))
    if bool((lo > hi).any()):
        _fail(ValueError, "min_val", "≤ max_val", min_val)
    scale, zero_point = _choose_scale_core(lo, hi, n_bits, symmetric, power_of_two)
    if scalar:
        return float(scale), int(zero_point)
    return scale, zero_point


def choose_fixed_point(data: Any, n_bits: int, *, signed: bool | None = None,
                       percentile: float | None = None) -> FixedPoint:
    """The radix point for ``data`` in an ``n_bits`` word: the finest one covering its range.

    Chooses the most fraction bits such that ``[min, max]`` (or the
    percentile-clipped range ``[P(100 − p), P(p)]``) fits the word — the
    seed's "decide the radix point from the statistics". Values beyond a
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
    """
    n_bits = _check_bits("n_bits", n_bits)
    if signed is not None:
        check_bool("signed", signed)
    stats = data if isinstance(data, TensorStats) else tensor_stats(
        data, () if percentile is None else (100.0 - _check_percentile(percentile), percentile))
    lo, hi = stats.range(percentile)
    if signed is None:
        signed = lo < 0
    if not signed:
        lo = 0.0
    scale, _ = _choose_scale_core(torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64),
                                  n_bits, signed, True)
    return FixedPoint(n_bits, -int(torch.frexp(scale)[1]) + 1, signed)


WEIGHT_CLIPS = ("minmax", "mse")
_MSE_SHRINK = tuple(2.0 ** (-j / 2) for j in range(9))   # candidate ranges: α · [min, max], α = 1 … 1/16


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
    """
    check_type("weight", weight, torch.Tensor, "a torch.Tensor")
    weight = _check_tensor("weight", weight)
    n_bits = _check_bits("n_bits", n_bits)
    check_bool("per_channel", per_channel)
    check_bool("symmetric", symmetric)
    check_bool("power_of_two", power_of_two)
    check_choice("clip", clip, WEIGHT_CLIPS)
    return _weight_qparams(weight, n_bits, per_channel, symmetric, power_of_two, clip)


def _weight_qparams(weight, n_bits, per_channel, symmetric, power_of_two, clip="minmax"):
    w = weight.detach().double()
    per_channel = per_channel and w.ndim > 1
    flat = w.flatten(1) if per_channel else w.reshape(1, -1)   # (out, in · kh · kw), or (1, numel)
    lo, hi = flat.amin(1), flat.amax(1)                        # (out,)
    scale, zero_point = _choose_scale_core(lo, hi, n_bits, symmetric, power_of_two)
    if clip == "mse":
        qmin, qmax = qrange(n_bits, symmetric)
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

def _check_qparams(x: torch.Tensor, scale: Any, zero_point: Any, qmin: int, qmax: int,
                   axis: Any) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    """Validated (scale, zero_point) as float64 / int64 tensors shaped to broadcast against x."""
    if axis is not None:
        if x.ndim == 0:
            _fail(ValueError, "axis", "None for a 0-d tensor", axis)
        axis = check_int("axis", axis, min=-x.ndim, max=x.ndim - 1) % x.ndim
    if isinstance(scale, bool) or not isinstance(scale, (numbers.Real, torch.Tensor)):
        _fail(TypeError, "scale", "a positive number or a tensor of them", scale)
    s = torch.as_tensor(scale).detach().double().cpu()
    if s.numel() == 0 or not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
        _fail(ValueError, "scale", "positive and finite", scale)
    if isinstance(zero_point, bool) or not isinstance(zero_point, (numbers.Integral, torch.Tensor)):
        _fail(TypeError, "zero_point", "an integer or an integer tensor", zero_point)
    z = torch.as_tensor(zero_point).detach().cpu()
    if z.is_floating_point() or z.dtype == torch.bool or z.is_complex():
        _fail(TypeError, "zero_point", "an integer or an integer tensor", zero_point)
    z = z.to(torch.int64)
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
        _fail(ValueError, "scale", f"of length {n} (x.shape[{axis}]) for per-channel quantization", tuple(s.shape))
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
    """
    x = _check_tensor("x", x, allow_inf=True)
    n_bits = _check_bits("n_bits", n_bits)
    check_bool("signed", signed)
    qmin, qmax = qrange(n_bits, signed)
    s, z, _ = _check_qparams(x, scale, zero_point, qmin, qmax, axis)
    return _quantize_core(x, s, z, qmin, qmax)


def dequantize(q: torch.Tensor, scale: Any, zero_point: Any = 0, *, axis: int | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Real values ``(q − zero_point) · scale`` of integer tensor ``q`` (computed in float64, then ``dtype``).

    >>> dequantize(torch.tensor([-2, 1, 7], dtype=torch.int8), 0.5)
    tensor([-1.0000,  0.5000,  3.5000])
    """
    check_type("q", q, torch.Tensor, "an integer torch.Tensor")
    if q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        _fail(TypeError, "q", "an integer torch.Tensor", q.dtype)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
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
    """
    check_type("x", x, torch.Tensor, "a floating-point torch.Tensor")
    if not x.is_floating_point():
        _fail(TypeError, "x", "a floating-point torch.Tensor", x.dtype)
    _check_tensor("x", x.detach(), allow_inf=True)
    n_bits = _check_bits("n_bits", n_bits)
    check_bool("signed", signed)
    qmin, qmax = qrange(n_bits, signed)
    s, z, _ = _check_qparams(x, scale, zero_point, qmin, qmax, axis)
    return _fake_quantize_core(x, s, z, qmin, qmax)


# ---------------------------------------------------------------------------
# 4. The fake-quantized model
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class QuantConfig:
    """How a model is quantized; validates itself.

    ``w_bits`` / ``a_bits``: bits of weights / of each layer's input
    activation, 2..16, or ``None`` to keep them in float. Weights are
    quantized per output channel if ``per_channel``; ``w_symmetric`` /
    ``a_symmetric`` choose signed-symmetric vs unsigned-affine quantizers;
    ``power_of_two`` makes every scale a power of two (fixed point);
    ``percentile`` clips activation ranges to ``[P(100 − p), P(p)]`` of the
    calibration data instead of min/max; ``w_clip`` chooses weight ranges
    (``"minmax"`` or ``"mse"``, see :func:`weight_qparams`).
    """

    w_bits: int | None = 8
    a_bits: int | None = 8
    per_channel: bool = True
    w_symmetric: bool = True
    a_symmetric: bool = False
    power_of_two: bool = True
    percentile: float | None = None
    w_clip: str = "minmax"

    def __post_init__(self):
        object.__setattr__(self, "w_bits", _check_bits("w_bits", self.w_bits, MODEL_BITS, optional=True))
        object.__setattr__(self, "a_bits", _check_bits("a_bits", self.a_bits, MODEL_BITS, optional=True))
        for name in ("per_channel", "w_symmetric", "a_symmetric", "power_of_two"):
            check_bool(name, getattr(self, name))
        if self.percentile is not None:
            object.__setattr__(self, "percentile", _check_percentile(self.percentile))
        check_choice("w_clip", self.w_clip, WEIGHT_CLIPS)

    @property
    def mode(self) -> str:
        """``"w"``, ``"a"``, ``"wa"`` or ``"fp"``: what is quantized."""
        return ("w" if self.w_bits else "") + ("a" if self.a_bits else "") or "fp"


class _FakeQuantMixin:
    """Shared by FakeQuantLinear / FakeQuantConv2d: fake-quantize the input, the weight and the bias.

    Training mode computes in the parameters' dtype (float32) with the
    straight-through estimator; eval mode computes in float64, where the
    arithmetic on quantized values is exact (see the module docstring).
    """

    def _setup(self, config: QuantConfig, act_scale: float, act_zero_point: int):
        self.config = config
        self.register_buffer("act_scale", torch.tensor(float(act_scale), dtype=torch.float64))
        self.register_buffer("act_zero_point", torch.tensor(int(act_zero_point), dtype=torch.int64))
        self.act_enabled = bool(config.a_bits)   # off while quantize_model calibrates this layer

    # -- quantization parameters, all derived from the config and the current weights
    def input_qrange(self) -> tuple[int, int]:
        return qrange(self.config.a_bits, self.config.a_symmetric)

    def weight_qrange(self) -> tuple[int, int]:
        return qrange(self.config.w_bits, self.config.w_symmetric)

    def weight_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero_point) of the weight, float64 / int64, shape (out,) per channel else 0-d."""
        c = self.config
        return _weight_qparams(self.weight, c.w_bits, c.per_channel, c.w_symmetric, c.power_of_two, c.w_clip)

    def _weight_view(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape([-1] + [1] * (self.weight.ndim - 1)) if t.ndim else t

    def _bias_scale(self) -> torch.Tensor:
        """s_a · s_w: the scale of the int32 bias and of the accumulator, shape (out,) or 0-d."""
        return self.act_scale * self.weight_qparams()[0]

    _frozen: tuple | None = None     # (dtype, fake-quantized weight, s_w) inside _frozen_weights, else None

    def _fake_quant_weight(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(fake-quantized w, s_w)``; computed once per dtype while the weights are frozen (calibration)."""
        if self._frozen is not None and self._frozen[0] == w.dtype:
            return self._frozen[1], self._frozen[2]
        s_w, z_w = self.weight_qparams()
        qmin, qmax = self.weight_qrange()
        w = _fake_quantize_core(w, self._weight_view(s_w), self._weight_view(z_w), qmin, qmax)
        if self._frozen is not None:
            self._frozen = (w.dtype, w, s_w)
        return w, s_w

    def _operands(self, x: torch.Tensor):
        c = self.config
        dtype = self.weight.dtype if self.training else torch.float64
        x, w = x.to(dtype), self.weight.to(dtype)
        b = None if self.bias is None else self.bias.to(dtype)
        if c.a_bits and self.act_enabled:
            qmin, qmax = self.input_qrange()
            x = _fake_quantize_core(x, self.act_scale, self.act_zero_point, qmin, qmax)
        if c.w_bits:
            w, s_w = self._fake_quant_weight(w)
            if c.a_bits and self.act_enabled and b is not None:
                # bias in int32 at scale s_a · s_w, so it adds straight into the accumulator
                b = _fake_quantize_core(b, self.act_scale * s_w, torch.zeros((), dtype=torch.int64),
                                        INT32_MIN, INT32_MAX)
        return x, w, b


class FakeQuantLinear(_FakeQuantMixin, nn.Linear):
    """``nn.Linear`` whose input, weight and bias are fake-quantized (see :func:`quantize_model`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, w, b = self._operands(x)
        return F.linear(x, w, b)


class FakeQuantConv2d(_FakeQuantMixin, nn.Conv2d):
    """``nn.Conv2d`` whose input, weight and bias are fake-quantized (see :func:`quantize_model`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, w, b = self._operands(x)
        return self._conv_forward(x, w, b)


def _fake_quant_layer(layer: nn.Module, config: QuantConfig, act_scale: float, act_zero_point: int):
    bias = layer.bias is not None
    kw = dict(dtype=layer.weight.dtype)
    if isinstance(layer, nn.Linear):
        new = nn.utils.skip_init(FakeQuantLinear, layer.in_features, layer.out_features, bias=bias, **kw)
    else:
        new = nn.utils.skip_init(FakeQuantConv2d, layer.in_channels, layer.out_channels, layer.kernel_size,
                                 stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                                 groups=layer.groups, bias=bias, padding_mode=layer.padding_mode, **kw)
    new.load_state_dict(layer.state_dict())
    new._setup(config, act_scale, act_zero_point)
    return new.to(layer.weight.device)


class QuantizedModel(nn.Module):
    """A fake-quantized copy of a model, made by :func:`quantize_model`.

    ``model`` is the copy, its Linear / Conv2d layers replaced by
    :class:`FakeQuantLinear` / :class:`FakeQuantConv2d`; ``config`` is the
    :class:`QuantConfig`. In eval mode the output is float64 (exact
    arithmetic, equal to :class:`IntegerLeNet`'s); in training mode float32
    with straight-through gradients.
    """

    def __init__(self, model: nn.Module, config: QuantConfig):
        super().__init__()
        self.model = model
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def quant_layers(self) -> dict[str, _FakeQuantMixin]:
        return {n: m for n, m in self.model.named_modules() if isinstance(m, _FakeQuantMixin)}

    def summary(self) -> list[dict]:
        """Per layer: the weight and input formats (bits, scale range, zero point, fixed-point name)."""
        rows = []
        for name, layer in self.quant_layers().items():
            row = {"layer": name, "w_bits": self.config.w_bits, "a_bits": self.config.a_bits}
            if self.config.w_bits:
                s_w, _ = layer.weight_qparams()
                row["w_scale_min"], row["w_scale_max"] = float(s_w.min()), float(s_w.max())
                if self.config.power_of_two and self.config.w_symmetric:
                    names = sorted({FixedPoint(self.config.w_bits, 1 - int(e), True).name
                                    for e in torch.frexp(s_w.flatten())[1]})
                    row["w_format"] = names
            if self.config.a_bits:
                s, z = float(layer.act_scale), int(layer.act_zero_point)
                qmin, qmax = layer.input_qrange()
                row.update(a_scale=s, a_zero_point=z, a_min=(qmin - z) * s, a_max=(qmax - z) * s)
                if self.config.power_of_two and z == 0:
                    row["a_format"] = FixedPoint(self.config.a_bits, 1 - int(math.frexp(s)[1]),
                                                 self.config.a_symmetric).name
            rows.append(row)
        return rows


def _is_stats(calib: Any) -> bool:
    return isinstance(calib, dict) and bool(calib) and all(
        isinstance(v, dict) and isinstance(v.get("input"), TensorStats) for v in calib.values())


def quantize_model(model: nn.Module, w_bits: int | None = 8, a_bits: int | None = 8, calib: Any = None, *,
                   per_channel: bool = True, w_symmetric: bool = True, a_symmetric: bool = False,
                   power_of_two: bool = True, percentile: float | None = None, w_clip: str = "minmax",
                   calibration: str = "sequential", n_batches: int | None = 4,
                   batch_size: int = 256) -> QuantizedModel:
    """A fake-quantized copy of ``model`` (post-training quantization; the original is untouched).

    Every Linear and Conv2d layer gets: its weight fake-quantized to
    ``w_bits`` (per output channel by default; scales from the current
    weights at every forward, so they follow fine-tuning), its
    input fake-quantized to ``a_bits`` with a scale fixed from the
    calibration statistics, and — when both are quantized — its bias rounded
    to int32 at scale ``s_a · s_w``. ``None`` keeps that part in float:
    ``(w_bits, None)`` is weights only, ``(None, a_bits)`` activations only.

    Calibration is *sequential* by default: each layer's input range is
    measured with every earlier layer already quantized (weights and
    activations), so it is the range the layer will really see — at 2–4
    bits the quantized network's activations differ enough from the float
    network's that ranges measured on the float network can zero out a
    whole layer. ``calibration="float"`` measures every range on the float
    model in one pass (as ``torch.ao``'s observers do); so does passing
    precomputed statistics as ``calib``.

    Parameters
    ----------
    model : nn.Module
        With at least one Linear / Conv2d layer, none of them parametrized
        (remove pruning masks first: ``effdl.pruning.remove_masks``).
    w_bits, a_bits : int in 2..16, or None
    calib : Split, tensor, iterable of batches, or stats from :func:`collect_activation_stats`
        Calibration data; needed when ``a_bits`` is set. Use training data.
    calibration : {"sequential", "float"}, default "sequential"
    per_channel, w_symmetric, a_symmetric, power_of_two, percentile, w_clip
        See :class:`QuantConfig`. With ``power_of_two=True`` (the default)
        :class:`IntegerLeNet` reproduces the model bit for bit, whatever
        the other choices.
    n_batches, batch_size : int
        How much of ``calib`` to use (default 4 × 256 images).

    Returns
    -------
    QuantizedModel in eval mode.
    """
    check_type("model", model, nn.Module, "a torch.nn.Module")
    config = QuantConfig(w_bits, a_bits, per_channel, w_symmetric, a_symmetric, power_of_two, percentile, w_clip)
    layers = _quant_layers(model)
    if not layers:
        _fail(ValueError, "model", "a model with at least one Linear or Conv2d layer", type(model).__name__)
    for name, layer in layers.items():
        if nn.utils.parametrize.is_parametrized(layer):
            _fail(ValueError, "model", f"free of parametrizations (layer {name!r} has one; remove pruning masks "
                                       "first)", type(model).__name__)
        for pname, p in layer.named_parameters(recurse=False):
            if not bool(torch.isfinite(p).all()):
                _fail(ValueError, "model", f"a model with finite parameters ({name}.{pname} has NaN or inf)",
                      type(model).__name__)
    check_choice("calibration", calibration, ("sequential", "float"))
    pct = () if config.percentile is None else (100.0 - config.percentile, config.percentile)
    stats, batches = None, None
    if config.a_bits:
        if calib is None:
            _fail(ValueError, "calib", "calibration data (a Split, tensor or batches) when a_bits is set", calib)
        if _is_stats(calib):
            stats = calib
            missing = [n for n in layers if n not in stats]
            if missing:
                _fail(ValueError, "calib", f"statistics for every layer (missing {missing})", sorted(stats))
        else:
            batches = list(_batches(calib, n_batches, batch_size, "calib"))   # checked once, reused per layer
            if calibration == "float":
                stats = collect_activation_stats(model, batches, percentiles=pct)
    copy_ = copy.deepcopy(model)
    new_layers = {}
    for name in layers:
        new = _fake_quant_layer(copy_.get_submodule(name), config, 1.0, 0)
        new.act_enabled = False
        parent, _, attr = name.rpartition(".")
        setattr(copy_.get_submodule(parent) if parent else copy_, attr, new)
        new_layers[name] = new
    qmodel = QuantizedModel(copy_, config).eval()
    if config.a_bits:
        with torch.no_grad(), _frozen_weights(new_layers.values()):
            _calibrate(qmodel, new_layers, config, stats, batches, pct)
    return qmodel


def _calibrate(qmodel: QuantizedModel, new_layers: dict, config: QuantConfig, stats: dict | None,
               batches: list | None, pct: tuple) -> None:
    """Set each layer's activation scale and zero point, in module order (sequential unless ``stats``)."""
    for name, layer in new_layers.items():   # module order: for LeNets, the order they run
        st = stats[name]["input"] if stats is not None else _layer_input_stats(qmodel, name, layer, batches, pct)
        lo, hi = st.range(config.percentile)
        s, z = _choose_scale_core(torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64),
                                  config.a_bits, config.a_symmetric, config.power_of_two)
        layer.act_scale.fill_(float(s))
        layer.act_zero_point.fill_(int(z))
        layer.act_enabled = True


@contextlib.contextmanager
def _frozen_weights(layers: Iterable[_FakeQuantMixin]):
    """Within the block each layer fake-quantizes its weight once and reuses it (the weights must not change).

    Calibration runs the model on several batches per layer with fixed
    weights; recomputing the weight scales (nine candidate ranges with
    ``w_clip="mse"``) at every forward would dominate its cost.
    """
    layers = list(layers)
    try:
        for layer in layers:
            layer._frozen = (None, None, None)
        yield
    finally:
        for layer in layers:
            layer._frozen = None


class _StopForward(Exception):
    """Raised by a calibration hook once it has the input it needs: the rest of the forward is skipped."""


@torch.no_grad()
def _layer_input_stats(qmodel: QuantizedModel, name: str, layer: nn.Module, batches: list,
                       percentiles: tuple) -> TensorStats:
    """Statistics of ``layer``'s input with every layer before it already quantized (weights and activations)."""
    acc = _RunningStats(bool(percentiles))

    def hook(module, inputs):
        acc.add(inputs[0], f"the input of layer {name!r}")
        raise _StopForward

    handle = layer.register_forward_pre_hook(hook)
    device = next(qmodel.parameters()).device
    try:
        for x in batches:
            try:
                _forward(qmodel.model, x.to(device), "calib")
            except _StopForward:
                pass
    finally:
        handle.remove()
    if not acc.count:
        _fail(ValueError, "model", f"a model whose forward calls layer {name!r}", type(qmodel.model).__name__)
    return acc.result(percentiles)


def finetune_quantized(qmodel: QuantizedModel, train: Split, val: Split, *, epochs: int = 3, lr: float = 0.003,
                       batch_size: int = 64, seed: int = 0, show_progress: bool | None = None) -> History:
    """Quantization-aware fine-tuning: train the float weights through the fake quantizers (STE).

    SGD with momentum 0.9 (:func:`effdl.train.fit`); the model ends with
    the weights of its best epoch on ``val`` (epoch 0 — no fine-tuning —
    included), so fine-tuning never lowers the validation accuracy.
    Activation ranges stay as calibrated; weight scales follow the weights.
    """
    check_type("qmodel", qmodel, QuantizedModel, "a QuantizedModel (from quantize_model)")
    return fit(qmodel, train, epochs=epochs, lr=lr, batch_size=batch_size, val=val, keep_best=True, seed=seed,
               show_progress=show_progress)


# ---------------------------------------------------------------------------
# 5. Integer-only inference
# ---------------------------------------------------------------------------

def fixed_point_multiplier(m: float, bits: int = 31) -> tuple[int, int]:
    """Write a positive real ``m`` as ``m0 · 2^-shift`` with ``m0`` an integer in [2^(bits−1), 2^bits).

    Jacob et al. (2018), §2.2: the requantization factor ``s_a · s_w /
    s_out`` is applied as an integer multiply and a right shift. A power of
    two is represented exactly.

    >>> fixed_point_multiplier(0.25)
    (1073741824, 32)
    >>> fixed_point_multiplier(0.1)
    (1717986918, 34)
    """
    m = check_float("m", m, min=0.0, min_open=True)
    bits = check_int("bits", bits, min=1, max=62)
    frac, exp = math.frexp(m)                        # m = frac · 2^exp, frac in [0.5, 1)
    m0 = round(math.ldexp(frac, bits))               # in [2^(bits−1), 2^bits]
    shift = bits - exp
    if m0 == 2 ** bits:                              # rounding carried into the next bit
        m0, shift = m0 // 2, shift - 1
    return int(m0), int(shift)


def _rounding_right_shift(v: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """round(v / 2^shift), ties to even, in int64; shift ≥ 1.

    ``>>`` is an arithmetic shift, floor(v / 2^shift). Adding ``2^(shift−1) − 1``
    rounds every fraction above one half up and every one below down; the
    exact tie rounds up only when ``+ odd`` (the floor is odd) tips it over.
    """
    odd = (v >> shift) & 1
    return (v + ((torch.ones_like(shift) << (shift - 1)) - 1) + odd) >> shift


def _requantize_core(acc, m0, shift, zero_point, qmin, qmax, relu):
    r = _rounding_right_shift(acc * m0, shift)       # round(acc · m), |acc · m0| < 2^63 by construction
    if relu:
        r = r.clamp(min=0)                           # ReLU: round(max(v, 0)/s) = max(round(v/s), 0)
    return (r + zero_point).clamp(qmin, qmax)


def requantize(acc: torch.Tensor, multiplier: Any, shift: Any, zero_point: int, n_bits: int, *,
               signed: bool = False, relu: bool = False) -> torch.Tensor:
    """Next layer's input from an accumulator: ``clamp(z + round(acc · m0 / 2^shift), qmin, qmax)``.

    Integer arithmetic only (int64 for the product ``acc · m0``, as a
    32 × 32 → 64-bit multiply); rounding half to even. ``relu`` clamps at
    the zero point first. ``multiplier`` / ``shift`` are ints or int64
    tensors broadcastable against ``acc`` (per channel).

    >>> requantize(torch.tensor([5, 6, 7, -9]), 2 ** 30, 32, 0, 8, signed=True)   # acc / 4, half to even
    tensor([ 1,  2,  2, -2])
    """
    check_type("acc", acc, torch.Tensor, "an integer torch.Tensor")
    if acc.is_floating_point() or acc.dtype == torch.bool or acc.is_complex():
        _fail(TypeError, "acc", "an integer torch.Tensor", acc.dtype)
    n_bits = _check_bits("n_bits", n_bits)
    check_bool("signed", signed)
    check_bool("relu", relu)
    qmin, qmax = qrange(n_bits, signed)
    zero_point = check_int("zero_point", zero_point, min=qmin, max=qmax)
    m0 = torch.as_tensor(multiplier, dtype=torch.int64)
    sh = torch.as_tensor(shift, dtype=torch.int64)
    if bool((m0 <= 0).any()) or bool((m0 >= 2 ** 31).any()):
        _fail(ValueError, "multiplier", "in [1, 2^31)", multiplier)
    if bool((sh < 1).any()) or bool((sh > 62).any()):
        _fail(ValueError, "shift", "in [1, 62]", shift)
    if bool((acc.abs() >= 2 ** 31).any()):
        _fail(ValueError, "acc", "within int32", int(acc.abs().max()))
    for name, t in (("multiplier", m0), ("shift", sh)):
        try:
            if torch.broadcast_shapes(acc.shape, t.shape) != acc.shape:
                raise RuntimeError
        except RuntimeError:
            _fail(ValueError, name, f"broadcastable to acc's shape {tuple(acc.shape)}", tuple(t.shape))
    return _requantize_core(acc.to(torch.int64), m0, sh, zero_point, qmin, qmax, relu)


@dataclass
class IntegerLayer:
    """One layer of :class:`IntegerLeNet`: integer weights, bias and requantization constants.

    ``weight`` holds the n-bit integers (int8 for 8 bits); ``bias`` the
    int32 values (stored int64) at scale ``input_scale · weight_scale``;
    ``multiplier``/``shift`` (per output channel) requantize the accumulator
    to the next layer's input, whose zero point and range are
    ``out_zero_point``, ``out_qmin``, ``out_qmax``; the last layer has
    ``out_scale`` (per channel) to dequantize the logits instead.
    ``acc_bound`` is a proven bound on ``|accumulator|``.
    """

    name: str
    kind: str                      # "linear" or "conv"
    after: str | None              # "relu", "pool_relu" or None (the logits)
    weight: torch.Tensor           # (out, in) or (out, in, kh, kw), n-bit integers
    weight_zero_point: torch.Tensor  # (out,) int64
    weight_scale: torch.Tensor     # (out,) float64
    bias: torch.Tensor             # (out,) int64 holding int32 values
    input_scale: float
    input_zero_point: int
    input_qmin: int
    input_qmax: int
    acc_bound: int
    multiplier: torch.Tensor | None = None   # (out,) int64, in [2^30, 2^31) for 31-bit multipliers
    shift: torch.Tensor | None = None        # (out,) int64
    out_zero_point: int | None = None
    out_qmin: int | None = None
    out_qmax: int | None = None
    out_scale: torch.Tensor | None = None    # (out,) float64, last layer only
    stride: tuple = (1, 1)
    fast: dict | None = None                 # int8 × int8 → int32 GEMM operands, when used

    @property
    def accumulator_bits(self) -> int:
        return 32 if self.acc_bound <= INT32_MAX else 64


_PROGRAMS = {
    # the float models' forward passes, layer by layer: what follows each layer's accumulator
    LeNet300: [("fc1", "relu"), ("fc2", "relu"), ("fc3", None)],
    LeNet5: [("conv1", "pool_relu"), ("conv2", "pool_relu"), ("fc1", "relu"), ("fc2", None)],
}


@functools.lru_cache(maxsize=1)
def int8_gemm_exact() -> bool:
    """Whether ``torch._int_mm`` (int8 × int8 → int32) is exact on this CPU, checked once per process.

    It is not everywhere: on x86 CPUs without VNNI instructions (AVX-512 VNNI
    or AVX-VNNI) oneDNN multiplies int8 with ``vpmaddubsw``, which adds each
    pair of u8 × s8 products into a *saturating* int16 — 2 · 255 · 128 does
    not fit — so large sums come out wrong (seen here with
    ``ONEDNN_MAX_CPU_ISA=AVX2``). The probe multiplies the worst case (every
    operand at ±127 / −128) and random operands and compares with int64.
    """
    if not hasattr(torch, "_int_mm"):
        return False
    g = torch.Generator().manual_seed(0)
    # shapes large enough for the optimised kernel that real layers get: (64, 256) @ (256, 32)
    worst = torch.tensor([[-128, 127] * 128] * 64, dtype=torch.int8)
    rand = torch.randint(-128, 128, (64, 256), dtype=torch.int8, generator=g)
    b = torch.randint(-128, 128, (256, 32), dtype=torch.int8, generator=g)
    b[:, 0], b[:, 1] = -128, torch.tensor([-128, 127] * 128, dtype=torch.int8)
    try:
        return all(torch.equal(torch._int_mm(a, b).to(torch.int64), a.to(torch.int64) @ b.to(torch.int64))
                   for a in (worst, rand))
    except RuntimeError:                 # no int8 GEMM for these shapes on this build
        return False


class IntegerLeNet(nn.Module):
    """Integer-only inference of a fake-quantized LeNet-300-100 or LeNet-5.

    Built from a :class:`QuantizedModel` with both weights and activations
    quantized. Only two steps touch floats: quantizing the input image (the
    first layer's input quantizer) and dequantizing the 10 logit
    accumulators. In between:

    - each layer accumulates ``Σ (q_a − z_a)(q_w − z_w) + q_bias`` in
      integers (convolutions by im2col); every ``|acc|`` is proven below
      ``acc_bound`` at construction — below 2^31 for 8-bit LeNets, so int32
      accumulators suffice (``accumulator_bits``);
    - ``backend="int8"`` runs a real int8 × int8 → int32 GEMM
      (``torch._int_mm``); unsigned 8-bit activations are shifted by −128 to
      fit int8 and the shift's effect, ``(128 − z_a) · Σ_k q_w``, is folded
      into the bias (the zero-point algebra of Jacob et al., §2.3).
      ``backend="int64"`` multiplies
      in int64 (any bit width; exact, and equal to int32 where the bound
      holds). ``"auto"`` picks int8 when it applies and
      :func:`int8_gemm_exact` finds ``torch._int_mm`` exact on this CPU
      (it is not without VNNI instructions), else int64 — the same integers;
    - max-pooling acts on the accumulator; requantization multiplies by a
      per-channel fixed-point multiplier (int64 product, as a 32 × 32 →
      64-bit multiply), shifts right with rounding half to even, applies ReLU
      as a clamp at the zero point and clamps to the next input's range.

    The forward returns float64 logits (CPU) so that :func:`effdl.train.evaluate`
    works; :meth:`trace` returns every intermediate integer tensor.
    """

    def __init__(self, qmodel: QuantizedModel, *, backend: str = "auto"):
        super().__init__()
        check_type("qmodel", qmodel, QuantizedModel, "a QuantizedModel (from quantize_model)")
        check_choice("backend", backend, ("auto", "int8", "int64"))
        arch = type(qmodel.model)
        if arch not in _PROGRAMS:
            _fail(ValueError, "qmodel", "a quantized LeNet300 or LeNet5", arch.__name__)
        c = qmodel.config
        if not (c.w_bits and c.a_bits):
            _fail(ValueError, "qmodel", "quantized in both weights and activations (w_bits and a_bits set)",
                  c.mode)
        self.arch = arch.__name__
        self.config = c
        program = _PROGRAMS[arch]
        fq = [qmodel.model.get_submodule(name) for name, _ in program]
        self.layers: list[IntegerLayer] = []
        for i, ((name, after), layer) in enumerate(zip(program, fq)):
            nxt = fq[i + 1] if i + 1 < len(fq) else None
            self.layers.append(self._convert(name, after, layer, nxt))
        can_int8 = (int8_gemm_exact() and c.w_bits <= 8 and c.a_bits <= 8
                    and all(int(l.weight_zero_point.abs().max()) == 0 and l.accumulator_bits == 32
                            and self._int8_gemm_bound(l) <= INT32_MAX for l in self.layers))
        if backend == "int8" and not can_int8:
            _fail(ValueError, "backend", "'int8' only for ≤ 8-bit symmetric weights, ≤ 8-bit activations and "
                                         "int32-bounded accumulators, where torch._int_mm is exact on this CPU "
                                         "(int8_gemm_exact(); use 'int64' or 'auto' otherwise)", backend)
        self.backend = "int8" if (backend == "int8" or (backend == "auto" and can_int8)) else "int64"
        if self.backend == "int8":
            for l in self.layers:
                l.fast = self._int8_operands(l)
        self.eval()

    @property
    def accumulator_bits(self) -> int:
        """32 when every layer's accumulator provably fits int32, else 64."""
        return max(l.accumulator_bits for l in self.layers)

    @staticmethod
    @torch.no_grad()
    def _convert(name: str, after: str | None, layer: _FakeQuantMixin, nxt) -> IntegerLayer:
        if isinstance(layer, FakeQuantConv2d):
            if (layer.padding != (0, 0) or layer.dilation != (1, 1) or layer.groups != 1
                    or layer.padding_mode != "zeros"):
                _fail(ValueError, "qmodel", f"convolutions without padding, dilation or groups ({name})", layer)
        s_a, z_a = float(layer.act_scale), int(layer.act_zero_point)
        a_qmin, a_qmax = layer.input_qrange()
        s_w, z_w = layer.weight_qparams()
        out = layer.weight.shape[0]
        s_w, z_w = s_w.expand(out).clone(), z_w.expand(out).clone()              # (out,)
        w_qmin, w_qmax = layer.weight_qrange()
        view = [-1] + [1] * (layer.weight.ndim - 1)
        q_w = _quantize_core(layer.weight.detach().double().cpu(), s_w.view(view), z_w.view(view), w_qmin, w_qmax)
        acc_scale = s_a * s_w                                                   # (out,) = s_a · s_w
        bias = torch.zeros(out, dtype=torch.float64) if layer.bias is None else layer.bias.detach().double().cpu()
        q_b = torch.round(bias / acc_scale).clamp(INT32_MIN, INT32_MAX).to(torch.int64)
        # |acc| ≤ Σ_k |q_w − z_w| · max|q_a − z_a| + |q_b|, per output channel
        w_abs_sum = (q_w.to(torch.int64) - z_w.view(view)).abs().flatten(1).sum(1)
        a_absmax = max(abs(a_qmin - z_a), abs(a_qmax - z_a))
        acc_bound = int((w_abs_sum * a_absmax + q_b.abs()).max())
        # float64 holds every such integer exactly: the fake-quantized model's sums are exact too
        assert acc_bound < 2 ** 53, f"{name}: accumulator bound {acc_bound} exceeds 2^53"
        rec = IntegerLayer(name=name, kind="conv" if isinstance(layer, FakeQuantConv2d) else "linear", after=after,
                           weight=q_w, weight_zero_point=z_w, weight_scale=s_w, bias=q_b, input_scale=s_a,
                           input_zero_point=z_a, input_qmin=a_qmin, input_qmax=a_qmax, acc_bound=acc_bound,
                           stride=tuple(getattr(layer, "stride", (1, 1))))
        if nxt is None:
            rec.out_scale = acc_scale
            return rec
        s_next = float(nxt.act_scale)
        rec.out_zero_point = int(nxt.act_zero_point)
        rec.out_qmin, rec.out_qmax = nxt.input_qrange()
        # multiplier bits such that |acc · m0| < 2^63 (31 for int32 accumulators)
        mult_bits = min(31, 62 - acc_bound.bit_length())
        pairs = [fixed_point_multiplier(float(m), mult_bits) for m in (acc_scale / s_next).tolist()]
        rec.multiplier = torch.tensor([p[0] for p in pairs], dtype=torch.int64)
        rec.shift = torch.tensor([p[1] for p in pairs], dtype=torch.int64)
        assert int(rec.shift.min()) >= 1, "requantization multiplier ≥ 2^(bits−1) is not supported"
        return rec

    @staticmethod
    def _int8_offset(l: IntegerLayer) -> int:
        return 128 if l.input_qmax > 127 else 0                                 # uint8 → int8: q − 128

    @classmethod
    def _int8_gemm_bound(cls, l: IntegerLayer) -> int:
        """Bound on |Σ_k (q_a − offset) · q_w|, the int32 GEMM's own accumulator."""
        o = cls._int8_offset(l)
        a_absmax = max(abs(l.input_qmin - o), abs(l.input_qmax - o))
        return int(l.weight.to(torch.int64).abs().flatten(1).sum(1).max()) * a_absmax

    @classmethod
    def _int8_operands(cls, l: IntegerLayer) -> dict:
        w = l.weight.to(torch.int64).flatten(1)                                 # (out, K), z_w = 0
        offset = cls._int8_offset(l)
        bias = l.bias + (offset - l.input_zero_point) * w.sum(1)                # fold the shift into the bias
        assert int(bias.abs().max()) <= INT32_MAX
        return {"w_t": w.to(torch.int8).t().contiguous(), "offset": offset,   # w_t: (K, out)
                "bias": bias.to(torch.int32)}

    # -- the integer kernels
    def _operand(self, l: IntegerLayer, q: torch.Tensor) -> torch.Tensor:
        """The GEMM's input operand from input integers q_a: int8 (q_a − offset), or int64 (q_a − z_a)."""
        if self.backend == "int8":
            return (q.to(torch.int16) - l.fast["offset"]).to(torch.int8)
        return q.to(torch.int64) - l.input_zero_point

    def _matmul(self, l: IntegerLayer, cols: torch.Tensor) -> torch.Tensor:
        """cols (M, K) from :meth:`_operand` → accumulators (M, out): int32 (int8 backend) or int64."""
        if self.backend == "int8":
            # int8 × int8 → int32 GEMM; + the folded bias, still within int32 (acc_bound)
            return torch._int_mm(cols.contiguous(), l.fast["w_t"]) + l.fast["bias"]
        w = l.weight.to(torch.int64).flatten(1) - l.weight_zero_point.view(-1, 1)
        acc = cols @ w.t() + l.bias
        # kept as int32 where the bound proves it fits, as the int8 backend keeps it: same integers, same dtype
        return acc.to(torch.int32) if l.accumulator_bits == 32 else acc

    def _layer(self, l: IntegerLayer, q: torch.Tensor) -> torch.Tensor:
        q = self._operand(l, q)
        if l.kind == "linear":
            return self._matmul(l, q.flatten(1))                                # (N, out)
        n, _, h, w = q.shape
        kh, kw = l.weight.shape[2:]
        sh, sw = l.stride
        patches = q.unfold(2, kh, sh).unfold(3, kw, sw)                         # (N, C, Ho, Wo, kh, kw)
        ho, wo = patches.shape[2], patches.shape[3]
        cols = patches.permute(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, -1)       # (N·Ho·Wo, C·kh·kw)
        acc = self._matmul(l, cols)                                             # (N·Ho·Wo, out)
        return acc.view(n, ho, wo, -1).permute(0, 3, 1, 2)                      # (N, out, Ho, Wo)

    @staticmethod
    def _maxpool2(acc: torch.Tensor) -> torch.Tensor:
        n, c, h, w = acc.shape
        return acc[:, :, :h - h % 2, :w - w % 2].reshape(n, c, h // 2, 2, w // 2, 2).amax(dim=(3, 5))

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """The image as integers: the first layer's input quantizer (the one float → int step)."""
        l = self.layers[0]
        return _quantize_core(x.detach().cpu(), torch.tensor(l.input_scale, dtype=torch.float64),
                              torch.tensor(l.input_zero_point), l.input_qmin, l.input_qmax)

    def _check_input(self, x: Any) -> None:
        check_type("x", x, torch.Tensor, "a torch.Tensor of images (N, 1, 28, 28)")
        if not x.is_floating_point():
            _fail(TypeError, "x", "a floating-point tensor of images (the first layer quantizes it)", x.dtype)
        if self.arch == "LeNet5":
            ok = x.ndim == 4 and tuple(x.shape[1:]) == (1, 28, 28)
        else:   # LeNet-300-100 flattens its input
            ok = x.ndim >= 2 and x[0].numel() == 784
        if not ok or x.shape[0] == 0:
            what = "(N, 1, 28, 28)" if self.arch == "LeNet5" else "(N, 1, 28, 28) or (N, 784)"
            _fail(ValueError, "x", f"a non-empty batch of images of shape {what}", tuple(x.shape))
        if not bool(torch.isfinite(x).all()):
            _fail(ValueError, "x", "finite (no NaN or inf)", float(x[~torch.isfinite(x)].flatten()[0]))

    @torch.no_grad()
    def _run(self, x: torch.Tensor, trace: dict | None) -> torch.Tensor:
        self._check_input(x)
        q = self.quantize_input(x)
        if trace is not None:
            trace["input"] = q
        for l in self.layers:
            acc = self._layer(l, q)
            if l.after == "pool_relu":
                acc = self._maxpool2(acc)
            if trace is not None:
                trace[f"{l.name}.acc"] = acc
            view = [1, -1] + [1] * (acc.ndim - 2)                               # per channel on dim 1
            if l.out_scale is not None:                                         # the logits
                return acc.double() * l.out_scale.view(view)
            q = _requantize_core(acc.to(torch.int64), l.multiplier.view(view), l.shift.view(view), l.out_zero_point,
                                 l.out_qmin, l.out_qmax, relu=l.after in ("relu", "pool_relu"))
            if trace is not None:
                trace[f"{l.name}.out"] = q
        raise AssertionError("the last layer has out_scale")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float64 logits (N, 10), dequantized from the last layer's int32 accumulators."""
        return self._run(x, None)

    def trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate tensor: ``input``, ``<layer>.acc`` (after pooling), ``<layer>.out``, ``logits``."""
        trace: dict = {}
        trace["logits"] = self._run(x, trace)
        return trace

    def summary(self) -> list[dict]:
        """Per layer: weight dtype and range, accumulator bound and bits, multiplier and shift range."""
        rows = []
        for l in self.layers:
            row = {"layer": l.name, "weight_dtype": str(l.weight.dtype).replace("torch.", ""),
                   "weight_min": int(l.weight.min()), "weight_max": int(l.weight.max()),
                   "bias_absmax": int(l.bias.abs().max()), "acc_bound": l.acc_bound,
                   "accumulator_bits": l.accumulator_bits, "input_zero_point": l.input_zero_point}
            if l.multiplier is not None:
                row.update(multiplier_min=int(l.multiplier.min()), multiplier_max=int(l.multiplier.max()),
                           shift_min=int(l.shift.min()), shift_max=int(l.shift.max()))
            rows.append(row)
        return rows


@torch.no_grad()
def compare_integer(qmodel: QuantizedModel, split: Split, *, backend: str = "auto",
                    batch_size: int = 1000) -> dict:
    """Run :class:`IntegerLeNet` and the fake-quantized model on ``split``; how far apart are they?

    Returns ``{"predictions_equal", "n_prediction_mismatches", "logits_equal",
    "max_abs_logit_diff", "int_acc", "fake_quant_acc", "accumulator_bits",
    "backend"}`` (accuracies in percent). The fake-quantized model runs in
    eval mode on the CPU (float64).
    """
    check_type("qmodel", qmodel, QuantizedModel, "a QuantizedModel (from quantize_model)")
    check_type("split", split, Split, "an effdl.data.Split")
    batch_size = check_int("batch_size", batch_size, min=1)
    int_model = IntegerLeNet(qmodel, backend=backend)
    was_training = qmodel.training
    qmodel.eval()
    device = next(qmodel.parameters()).device
    qmodel.cpu()
    try:
        fq = torch.cat([qmodel(x) for x in split.x.split(batch_size)])
    finally:
        qmodel.to(device).train(was_training)
    it = torch.cat([int_model(x) for x in split.x.split(batch_size)])
    fq_pred, it_pred = fq.argmax(1), it.argmax(1)
    n = len(split)
    return {
        "predictions_equal": bool(torch.equal(fq_pred, it_pred)),
        "n_prediction_mismatches": int((fq_pred != it_pred).sum()),
        "logits_equal": bool(torch.equal(fq.double(), it)),
        "max_abs_logit_diff": float((fq.double() - it).abs().max()),
        "int_acc": 100.0 * int((it_pred == split.y).sum()) / n,
        "fake_quant_acc": 100.0 * int((fq_pred == split.y).sum()) / n,
        "accumulator_bits": int_model.accumulator_bits,
        "backend": int_model.backend,
    }


# ---------------------------------------------------------------------------
# 6. Oracle: torch.ao post-training static quantization
# ---------------------------------------------------------------------------

def torch_ao_int8(model: nn.Module, calib: Any, *, n_batches: int | None = 4, batch_size: int = 256,
                  backend: str = "x86") -> nn.Module:
    """Post-training static int8 quantization of ``model`` with ``torch.ao.quantization`` (eager mode).

    The oracle for our quantizer. The model is wrapped as ``QuantStub →
    model → DeQuantStub`` (LeNet's ``torch.relu``, ``max_pool2d`` and
    ``flatten`` run on quantized tensors as they are), prepared with the
    backend's default qconfig (x86 / fbgemm: histogram-calibrated quint8
    activations with ``reduce_range``, per-channel symmetric qint8 weights),
    calibrated on ``calib`` and converted. Returns the quantized model (CPU;
    float in, float out). torch 2.13 still ships this flow but marks
    ``torch.ao.quantization`` deprecated in favour of torchao; its warnings
    are silenced here. It sets ``torch.backends.quantized.engine`` to
    ``backend`` (the converted model's packed weights need it).
    """
    import torch.ao.quantization as tq

    check_type("model", model, nn.Module, "a torch.nn.Module")
    engines = [e for e in ("x86", "fbgemm", "qnnpack", "onednn") if e in torch.backends.quantized.supported_engines]
    check_choice("backend", backend, engines)
    n_batches = None if n_batches is None else check_int("n_batches", n_batches, min=1)
    batch_size = check_int("batch_size", batch_size, min=1)
    if torch.backends.quantized.engine != backend:
        torch.backends.quantized.engine = backend
    wrapped = nn.Sequential(tq.QuantStub(), copy.deepcopy(model).cpu(), tq.DeQuantStub()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        wrapped.qconfig = tq.get_default_qconfig(backend)
        prepared = tq.prepare(wrapped)
        with torch.no_grad():
            for x in _batches(calib, n_batches, batch_size, "calib"):
                _forward(prepared, x.cpu(), "calib")
        return tq.convert(prepared).eval()


# ---------------------------------------------------------------------------
# 7. The chapter's sweep and the reproduce report
# ---------------------------------------------------------------------------

def sweep_bits(model: nn.Module, train: Split, val: Split, test: Split, *, bits: Iterable[int] = (8, 6, 4, 2),
               modes: Iterable[str] = ("w", "a", "wa"), finetune: bool = False, epochs: int = 3,
               lr_grid: Iterable[float] = (0.003, 0.001), percentiles: Iterable[float | None] = (None, 99.99, 99.9),
               w_clips: Iterable[str] = WEIGHT_CLIPS, per_channel: bool = True, power_of_two: bool = True,
               calibration: str = "sequential", n_batches: int = 4, seed: int = 0,
               show_progress: bool | None = None) -> dict:
    """Accuracy vs bit width for weights only (``"w"``), activations only (``"a"``) and both (``"wa"``).

    For each bit width and mode: post-training quantization calibrated
    (``calibration``, see :func:`quantize_model`) on the first
    ``n_batches`` × 256 ``train`` images, with the activation
    clipping (min/max or a percentile of ``percentiles``) and the weight
    clipping (of ``w_clips``) chosen on ``val``; then, if
    ``finetune``, quantization-aware fine-tuning for ``epochs`` epochs at
    each learning rate of ``lr_grid``, keeping the best on ``val``. Test
    accuracy is computed only for the chosen models.

    With ``finetune`` the float model is also trained on in the same way
    (same epochs, lr grid, selection on ``val``), reported as ``fp_ft_*``:
    the fair baseline for the fine-tuned rows.

    Returns
    -------
    dict
        ``{"fp_val_acc", "fp_test_acc"[, "fp_ft_lr", "fp_ft_val_acc",
        "fp_ft_test_acc"], "rows": [{"bits", "mode", "percentile",
        "w_clip", "val_acc", "test_acc"[, "ft_lr", "ft_epoch", "ft_val_acc",
        "ft_test_acc"]}, …]}``; :func:`bits_table` turns it into the
        ``{"8": {"w": …, "a": …, "wa": …}, …}`` table.
    """
    check_type("model", model, nn.Module, "a torch.nn.Module")
    for name, split in (("train", train), ("val", val), ("test", test)):
        check_type(name, split, Split, "an effdl.data.Split")
    bits = [_check_bits("bits", b, MODEL_BITS) for b in bits]
    modes = [check_choice("modes", m, ("w", "a", "wa")) for m in modes]
    check_bool("finetune", finetune)
    epochs = check_int("epochs", epochs, min=0)
    lr_grid = [check_float("lr_grid", lr, min=0.0, min_open=True) for lr in lr_grid]
    percentiles = [None if p is None else _check_percentile(p) for p in percentiles]
    w_clips = [check_choice("w_clips", c, WEIGHT_CLIPS) for c in w_clips]
    if not bits or not modes or not percentiles or not w_clips or (finetune and not lr_grid):
        raise ValueError("bits, modes, percentiles, w_clips (and lr_grid when finetune) must not be empty.")
    n_batches = check_int("n_batches", n_batches, min=1)
    check_choice("calibration", calibration, ("sequential", "float"))
    calib = list(_batches(train, n_batches, 256, "train"))
    if calibration == "float":   # one pass on the float model serves every configuration
        wanted = sorted({q for p in percentiles if p is not None for q in (100.0 - p, p)})
        calib = collect_activation_stats(model, calib, percentiles=wanted)
    out = {"fp_val_acc": evaluate(model, val), "fp_test_acc": evaluate(model, test), "rows": []}
    if finetune:   # the float model trained on the same way: does fine-tuning help beyond undoing quantization?
        best = None
        for lr in lr_grid:
            cand = copy.deepcopy(model)
            hist = fit(cand, train, epochs=epochs, lr=lr, val=val, keep_best=True, seed=seed,
                       show_progress=show_progress)
            if best is None or hist.best_val_acc > best[1].best_val_acc:
                best = (cand, hist, lr)
        out.update(fp_ft_lr=best[2], fp_ft_val_acc=best[1].best_val_acc, fp_ft_test_acc=evaluate(best[0], test))
    for b in bits:
        for mode in modes:
            w_bits, a_bits = (b if "w" in mode else None), (b if "a" in mode else None)
            best = None                           # first best on val wins: min/max before clipping
            for clip in (w_clips if w_bits else [w_clips[0]]):
                for p in (percentiles if a_bits else [None]):
                    qm = quantize_model(model, w_bits, a_bits, calib, per_channel=per_channel,
                                        power_of_two=power_of_two, percentile=p, w_clip=clip)
                    acc = evaluate(qm, val)
                    if best is None or acc > best[1]:
                        best = (qm, acc, p, clip)
            qm, val_acc, p, clip = best
            row = {"bits": b, "mode": mode, "percentile": p, "w_clip": clip if w_bits else None,
                   "val_acc": val_acc, "test_acc": evaluate(qm, test)}
            if finetune:
                ft = None
                for lr in lr_grid:
                    cand = copy.deepcopy(qm)
                    hist = finetune_quantized(cand, train, val, epochs=epochs, lr=lr, seed=seed,
                                              show_progress=show_progress)
                    if ft is None or hist.best_val_acc > ft[1].best_val_acc:
                        ft = (cand, hist, lr)
                cand, hist, lr = ft
                row.update(ft_lr=lr, ft_epoch=hist.best_epoch, ft_val_acc=hist.best_val_acc,
                           ft_test_acc=evaluate(cand, test))
            out["rows"].append(row)
    return out


def bits_table(sweep: dict, key: str = "test_acc") -> dict:
    """``{"8": {"w": acc, "a": acc, "wa": acc}, …}`` from a :func:`sweep_bits` result (``key``: which accuracy)."""
    check_type("sweep", sweep, dict, "a sweep_bits result")
    check_choice("key", key, ("test_acc", "val_acc", "ft_test_acc", "ft_val_acc"))
    table: dict = {}
    for row in sweep["rows"]:
        table.setdefault(str(row["bits"]), {})[row["mode"]] = row[key]
    return table


def quantization_report() -> dict:
    """Chapter 5's headline numbers (``effdl reproduce quantization``), LeNet-5 on the embedded MNIST subset.

    - ``fp_acc``: the zoo LeNet-5 on the test split.
    - ``bits``: **post-training** quantization (no fine-tuning), per-channel
      symmetric power-of-two weights, unsigned power-of-two activations at
      every layer input, calibrated sequentially on 1,024 training images; the
      activation clipping (min/max, 99.99th or 99.9th percentile) and the
      weight clipping (min/max or least squared error) chosen on validation.
      Test accuracy in percent.
    - ``int_inference_acc`` / ``int_matches_fake_quant``: :class:`IntegerLeNet`
      built from the 8-bit weights-and-activations model of ``bits``; the
      flag is True when its predictions *and* float64 logits equal the
      fake-quantized model's on every test image.
    - ``torch_ao_int8_acc``: :func:`torch_ao_int8` (x86 backend defaults),
      calibrated on the same images.

    Deterministic: no training and no randomness.
    """
    from . import zoo
    from .data import load_mnist

    train, val, test = (load_mnist(s, source="embedded") for s in ("train", "val", "test"))
    model = zoo.load("lenet5")
    sweep = sweep_bits(model, train, val, test, finetune=False)
    row8 = next(r for r in sweep["rows"] if r["bits"] == 8 and r["mode"] == "wa")
    qm = quantize_model(model, 8, 8, train, percentile=row8["percentile"], w_clip=row8["w_clip"])
    cmp = compare_integer(qm, test)
    ao = torch_ao_int8(model, train)
    return {"lenet5": {
        "fp_acc": sweep["fp_test_acc"],
        "bits": bits_table(sweep),
        "int_inference_acc": cmp["int_acc"],
        "int_matches_fake_quant": cmp["predictions_equal"] and cmp["logits_equal"],
        "torch_ao_int8_acc": evaluate(ao, test, device="cpu"),
    }}
