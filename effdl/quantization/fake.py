"""Fake-quantized layers and models, trained with the straight-through estimator (step 3).

Taught in chapter 5, "Quantization".
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from .._validate import _fail
from ..data import Split
from ..train import History, fit
from ..validation import (Bool, Instance, Interval, Module, Options, PositiveInt, Seed, Unchecked, check_part,
                          validate_params)
from .common import INT32_MAX, INT32_MIN, MODEL_N_BITS, PERCENTILE, SPLIT, _qrange
from .stats import (TensorStats, _RunningStats, _clipped_range, _forward, _iter_batches, _quant_layers,
                    collect_activation_stats)
from .scales import FixedPoint, WEIGHT_CLIPS, _choose_scale_core, _fake_quantize_core, _weight_qparams

# ---------------------------------------------------------------------------
# 4. The fake-quantized model
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class QuantConfig:
    """How a model is quantized; validates itself.

    ``n_bits_weight`` / ``n_bits_act``: bits of weights / of each layer's input
    activation, 2..16, or ``None`` to keep them in float. Weights are
    quantized per output channel if ``per_channel``; ``w_symmetric`` /
    ``a_symmetric`` choose signed-symmetric vs unsigned-affine quantizers;
    ``power_of_two`` makes every scale a power of two (fixed point);
    ``percentile`` clips activation ranges to ``[P(100 − p), P(p)]`` of the
    calibration data instead of min/max; ``w_clip`` chooses weight ranges
    (``"minmax"`` or ``"mse"``, see :func:`weight_qparams`).

    Behind chapter 05, "Quantization".
    """

    n_bits_weight: int | None = 8
    n_bits_act: int | None = 8
    per_channel: bool = True
    w_symmetric: bool = True
    a_symmetric: bool = False
    power_of_two: bool = True
    percentile: float | None = None
    w_clip: str = "minmax"

    def __post_init__(self):
        for name, constraint in _CONFIG_FIELDS.items():
            object.__setattr__(self, name, check_part("QuantConfig", constraint, name, getattr(self, name)))

    @property
    def mode(self) -> str:
        """``"w"``, ``"a"``, ``"wa"`` or ``"fp"``: what is quantized."""
        return ("w" if self.n_bits_weight else "") + ("a" if self.n_bits_act else "") or "fp"


_CONFIG_FIELDS = dict(n_bits_weight=MODEL_N_BITS, n_bits_act=MODEL_N_BITS, per_channel=Bool(), w_symmetric=Bool(),
                      a_symmetric=Bool(), power_of_two=Bool(), percentile=PERCENTILE, w_clip=Options(WEIGHT_CLIPS))


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
        self.act_enabled = bool(config.n_bits_act)   # off while quantize_model calibrates this layer

    # -- quantization parameters, all derived from the config and the current weights
    def input_qrange(self) -> tuple[int, int]:
        return _qrange(self.config.n_bits_act, self.config.a_symmetric)

    def weight_qrange(self) -> tuple[int, int]:
        return _qrange(self.config.n_bits_weight, self.config.w_symmetric)

    def weight_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero_point) of the weight, float64 / int64, shape (out,) per channel else 0-d."""
        c = self.config
        return _weight_qparams(self.weight, c.n_bits_weight, c.per_channel, c.w_symmetric, c.power_of_two, c.w_clip)

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
        if c.n_bits_act and self.act_enabled:
            qmin, qmax = self.input_qrange()
            x = _fake_quantize_core(x, self.act_scale, self.act_zero_point, qmin, qmax)
        if c.n_bits_weight:
            w, s_w = self._fake_quant_weight(w)
            if c.n_bits_act and self.act_enabled and b is not None:
                # bias in int32 at scale s_a · s_w, so it adds straight into the accumulator
                b = _fake_quantize_core(b, self.act_scale * s_w, torch.zeros((), dtype=torch.int64),
                                        INT32_MIN, INT32_MAX)
        return x, w, b


class FakeQuantLinear(_FakeQuantMixin, nn.Linear):
    """``nn.Linear`` whose input, weight and bias are fake-quantized (see :func:`quantize_model`).

    Behind chapter 05, "Quantization".
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, w, b = self._operands(x)
        return F.linear(x, w, b)


class FakeQuantConv2d(_FakeQuantMixin, nn.Conv2d):
    """``nn.Conv2d`` whose input, weight and bias are fake-quantized (see :func:`quantize_model`).

    Behind chapter 05, "Quantization".
    """

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

    Behind chapter 05, "Quantization".
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
            row = {"layer": name, "n_bits_weight": self.config.n_bits_weight, "n_bits_act": self.config.n_bits_act}
            if self.config.n_bits_weight:
                s_w, _ = layer.weight_qparams()
                row["w_scale_min"], row["w_scale_max"] = float(s_w.min()), float(s_w.max())
                if self.config.power_of_two and self.config.w_symmetric:
                    names = sorted({FixedPoint(self.config.n_bits_weight, 1 - int(e), True).name
                                    for e in torch.frexp(s_w.flatten())[1]})
                    row["w_format"] = names
            if self.config.n_bits_act:
                s, z = float(layer.act_scale), int(layer.act_zero_point)
                qmin, qmax = layer.input_qrange()
                row.update(a_scale=s, a_zero_point=z, a_min=(qmin - z) * s, a_max=(qmax - z) * s)
                if self.config.power_of_two and z == 0:
                    row["a_format"] = FixedPoint(self.config.n_bits_act, 1 - int(math.frexp(s)[1]),
                                                 self.config.a_symmetric).name
            rows.append(row)
        return rows


def _is_stats(calib: Any) -> bool:
    return isinstance(calib, dict) and bool(calib) and all(
        isinstance(v, dict) and isinstance(v.get("input"), TensorStats) for v in calib.values())


@validate_params(model=Module(), calib=Unchecked("calibration data or statistics; checked in the body, as it is read"),
                 **_CONFIG_FIELDS, calibration=Options(("sequential", "float")), n_batches=PositiveInt(optional=True),
                 batch_size=PositiveInt())
def quantize_model(model: nn.Module, n_bits_weight: int | None = 8, n_bits_act: int | None = 8, calib: Any = None, *,
                   per_channel: bool = True, w_symmetric: bool = True, a_symmetric: bool = False,
                   power_of_two: bool = True, percentile: float | None = None, w_clip: str = "minmax",
                   calibration: str = "sequential", n_batches: int | None = 4,
                   batch_size: int = 256) -> QuantizedModel:
    """A fake-quantized copy of ``model`` (post-training quantization; the original is untouched).

    Every Linear and Conv2d layer gets: its weight fake-quantized to
    ``n_bits_weight`` (per output channel by default; scales from the current
    weights at every forward, so they follow fine-tuning), its
    input fake-quantized to ``n_bits_act`` with a scale fixed from the
    calibration statistics, and — when both are quantized — its bias rounded
    to int32 at scale ``s_a · s_w``. ``None`` keeps that part in float:
    ``(n_bits_weight, None)`` is weights only, ``(None, n_bits_act)`` activations only.

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
    n_bits_weight, n_bits_act : int in 2..16, or None
    calib : Split, tensor, iterable of batches, or stats from :func:`collect_activation_stats`
        Calibration data; needed when ``n_bits_act`` is set. Use training data.
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

    Taught in chapter 05, "Quantization".
    """
    config = QuantConfig(n_bits_weight, n_bits_act, per_channel, w_symmetric, a_symmetric, power_of_two, percentile,
                         w_clip)
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
    pct = () if config.percentile is None else (100.0 - config.percentile, config.percentile)
    stats, batches = None, None
    if config.n_bits_act:
        if calib is None:
            _fail(ValueError, "calib", "calibration data (a Split, tensor or batches) when n_bits_act is set", calib)
        if _is_stats(calib):
            stats = calib
            missing = [n for n in layers if n not in stats]
            if missing:
                _fail(ValueError, "calib", f"statistics for every layer (missing {missing})", sorted(stats))
            for n in layers:    # a clipping percentile the statistics lack
                _clipped_range(stats[n]["input"], config.percentile)
        else:
            # checked once, reused per layer
            batches = list(_iter_batches(calib, n_batches, batch_size, "calib", "quantize_model"))
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
    if config.n_bits_act:
        with torch.no_grad(), _frozen_weights(new_layers.values()):
            _calibrate(qmodel, new_layers, config, stats, batches, pct)
    return qmodel


def _calibrate(qmodel: QuantizedModel, new_layers: dict, config: QuantConfig, stats: dict | None,
               batches: list | None, pct: tuple) -> None:
    """Set each layer's activation scale and zero point, in module order (sequential unless ``stats``)."""
    for name, layer in new_layers.items():   # module order: for LeNets, the order they run
        st = stats[name]["input"] if stats is not None else _layer_input_stats(qmodel, name, layer, batches, pct)
        lo, hi = _clipped_range(st, config.percentile)
        s, z = _choose_scale_core(torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64),
                                  config.n_bits_act, config.a_symmetric, config.power_of_two)
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
                _forward(qmodel.model, x.to(device), "quantize_model: calib")
            except _StopForward:
                pass
    finally:
        handle.remove()
    if not acc.count:
        _fail(ValueError, "model", f"a model whose forward calls layer {name!r}", type(qmodel.model).__name__)
    return acc.result(percentiles)


@validate_params(qmodel=Instance(QuantizedModel, "a QuantizedModel (from quantize_model)"), train=SPLIT, val=SPLIT,
                 epochs=Interval(int, 0, None), lr=Interval(float, 0, None, closed="neither"), batch_size=PositiveInt(),
                 seed=Seed(), show_progress=Bool(optional=True))
def finetune_quantized(qmodel: QuantizedModel, train: Split, val: Split, *, epochs: int = 3, lr: float = 0.003,
                       batch_size: int = 64, seed: int = 0, show_progress: bool | None = None) -> History:
    """Quantization-aware fine-tuning: train the float weights through the fake quantizers (STE).

    SGD with momentum 0.9 (:func:`effdl.train.fit`); the model ends with
    the weights of its best epoch on ``val`` (epoch 0 — no fine-tuning —
    included), so fine-tuning never lowers the validation accuracy.
    Activation ranges stay as calibrated; weight scales follow the weights.

    Behind chapter 05, "Quantization".
    """
    return fit(qmodel, train, epochs=epochs, lr=lr, batch_size=batch_size, val=val, keep_best=True, seed=seed,
               show_progress=show_progress)
