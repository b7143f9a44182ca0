"""Statistics of weights and activations for calibration (step 1 of chapter 5's recipe).

Taught in chapter 5, "Quantization".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from .._validate import _fail
from ..data import Split
from ..validation import Instance, Module, PositiveInt, check_part, validate_params
from .common import BATCHES, DEFAULT_PERCENTILES, PERCENTILE, PERCENTILES, QUANT_TYPES, VALUES, _as_float

# ---------------------------------------------------------------------------
# 1. Statistics
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorStats:
    """Summary of a tensor's values: count, min, max, mean, std and percentiles.

    ``percentiles`` maps a percentile in [0, 100] to its value (linear
    interpolation, numpy's default).

    Behind chapter 05, "Quantization".
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
        raise ValueError(f"TensorStats.percentile: p must be one of the computed percentiles "
                         f"{sorted(self.percentiles)}; got {p!r}.")

    def range(self, percentile: float | None = None) -> tuple[float, float]:
        """``(min, max)``, or the clipped range ``(P[100 − p], P[p])`` for ``percentile=p``."""
        if percentile is None:
            return self.min, self.max
        p = check_part("TensorStats.range", PERCENTILE, "percentile", percentile)
        return self.percentile(100.0 - p), self.percentile(p)


def _stats_core(x: torch.Tensor, percentiles: tuple[float, ...]) -> TensorStats:
    x64 = x.detach().double()
    pct = {}
    if percentiles:
        values = np.percentile(x.detach().float().cpu().numpy().ravel(), list(percentiles))
        pct = {float(p): float(v) for p, v in zip(percentiles, np.atleast_1d(values))}
    return TensorStats(numel=x.numel(), min=float(x64.min()), max=float(x64.max()), mean=float(x64.mean()),
                       std=float(x64.std(unbiased=False)), percentiles=pct)


def _clipped_range(stats: TensorStats, percentile: float | None) -> tuple[float, float]:
    """``stats.range(percentile)``; a percentile the statistics lack is a ValueError naming ``percentile``."""
    if percentile is not None:
        for q in (100.0 - percentile, percentile):
            if not any(math.isclose(key, q, rel_tol=0, abs_tol=1e-9) for key in stats.percentiles):
                _fail(ValueError, "percentile", "one of the percentiles computed in the statistics "
                      f"{sorted(stats.percentiles)} (with 100 − percentile)", percentile)
    return stats.range(percentile)


@validate_params(x=VALUES, percentiles=PERCENTILES)
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

    Taught in chapter 05, "Quantization".
    """
    return _stats_core(_as_float(x), tuple(percentiles))


@validate_params(data=BATCHES, n_batches=PositiveInt(optional=True), batch_size=PositiveInt(),
                 name=Instance(str, "a string (the parameter named in errors)"))
def iter_batches(data: Any, n_batches: int | None, batch_size: int, name: str = "data"):
    """Yield input batches from a Split, a tensor of inputs, or an iterable of tensors / (x, y) pairs.

    ``n_batches``: at most that many (None: all); ``batch_size``: when ``data``
    is a Split or a tensor. Each batch is checked as it is read (floating
    point, non-empty, finite); errors name ``name``.

    Behind chapter 05, "Quantization".
    """
    return _iter_batches(data, n_batches, batch_size, name, "iter_batches")


def _iter_batches(data: Any, n_batches: int | None, batch_size: int, name: str, func: str):
    """Core of :func:`iter_batches`; errors read ``"{func}: {name} must be …"`` (a generator runs after
    the public call returned, so it names ``func`` itself)."""
    name = f"{func}: {name}"
    if isinstance(data, Split):
        data = data.x
    if isinstance(data, torch.Tensor):
        source = data.split(batch_size)
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, dict)):
        source = data
    else:
        raise TypeError(f"{name} must be an effdl.data.Split, a tensor of inputs or an iterable of batches; "
                        f"got {data!r}.")
    count = 0
    for i, batch in enumerate(source):
        if n_batches is not None and i >= n_batches:
            break
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"{name} must be batches of floating-point tensors (or (x, y) pairs); "
                            f"got {type(x).__name__!r}.")
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{name} must hold non-empty batches; batch {i} has shape {tuple(x.shape)}.")
        if not bool(torch.isfinite(x).all()):
            bad = float(x[~torch.isfinite(x)].flatten()[0])
            raise ValueError(f"{name} must be finite (no NaN or inf); batch {i} contains {bad!r}.")
        count += 1
        yield x
    if count == 0:
        raise ValueError(f"{name} must be at least one batch; got {data!r}.")


def _forward(model: nn.Module, x: torch.Tensor, name: str):
    """``model(x)``; a batch the model cannot take (wrong shape) is a ValueError naming ``name``
    (``"function: parameter"``)."""
    try:
        return model(x)
    except RuntimeError as err:
        raise ValueError(f"{name} must hold inputs that {type(model).__name__} accepts; a batch of shape "
                         f"{tuple(x.shape)} failed with: {err}") from err


def _quant_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, QUANT_TYPES)}


@validate_params(model=Module(), data=BATCHES, n_batches=PositiveInt(optional=True), batch_size=PositiveInt(),
                 percentiles=PERCENTILES)
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

    Taught in chapter 05, "Quantization".
    """
    percentiles = tuple(percentiles)
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
        for x in _iter_batches(data, n_batches, batch_size, "data", "collect_activation_stats"):
            _forward(model, x.to(device), "collect_activation_stats: data")
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
