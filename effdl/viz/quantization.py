"""Chapter 5's figures and its bit-width widget (linear quantization of weights and activations).

The widget binds a weight-bits and an activation-bits slider, a layer menu
and a per-channel switch to the pure :func:`quant_state` — the model
quantized after training by :func:`effdl.quantization.quantize_model` (the
recipe's defaults: power-of-two scales, i.e. a radix point, min/max ranges
calibrated on training images, no fine-tuning), its accuracy, the chosen
fixed-point formats, and one layer's weights and input activations with the
representable levels. :func:`quant_figure` draws that state; it is also the
widget's static rendering, so the chapter reads well without a kernel.
:func:`bits_sweep_figure` draws the precomputed accuracy-against-bits sweep
(``effdl precompute quantization``).
"""
from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

from .. import quantization as Q
from .._validate import check_bool, check_choice, check_int, check_type
from ..data import Split
from ..train import evaluate
from .style import COLORS, figure_png, new_figure
from ..validation import Bool, Dict, Instance, Interval, Module, Text, Unchecked, validate_params

MAX_LEVELS_DRAWN = 64        # beyond this many levels (7 bits), lines would fill the panel: shade the range
WIDGET_BITS = [2, 3, 4, 5, 6, 7, 8, 10, 12, 16]
CALIB_IMAGES = 256           # images whose layer inputs the activation histogram shows


def _check_bits(name: str, bits: Any) -> int | None:
    return None if bits is None else check_int(name, bits, min=Q.MODEL_BITS[0], max=Q.MODEL_BITS[1])


def _inputs(calib: Any) -> torch.Tensor:
    if isinstance(calib, Split):
        return calib.x
    check_type("calib", calib, torch.Tensor, "an effdl.data.Split or a tensor of images")
    return calib


def _levels(scale: float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """The representable values (q − z) · s for q in [qmin, qmax] (float64)."""
    q = torch.arange(qmin, qmax + 1)
    return Q.dequantize(q, scale, zero_point, dtype=torch.float64).numpy()


def _saturated(values: np.ndarray, scale, zero_point, n_bits: int, signed: bool) -> float:
    """Fraction of ``values`` that saturate: more than half a step from the value they quantize to
    (only a value beyond the range is). ``scale`` / ``zero_point``: one each, or one per row of
    ``values`` (per output channel)."""
    x = torch.as_tensor(values, dtype=torch.float64)
    axis = 0 if torch.as_tensor(scale).numel() > 1 else None
    q = Q.quantize(x, scale, zero_point, n_bits, signed=signed, axis=axis)
    error = (x - Q.dequantize(q, scale, zero_point, axis=axis, dtype=torch.float64)).abs()
    step = torch.as_tensor(scale, dtype=torch.float64)
    step = step.reshape([-1] + [1] * (x.ndim - 1)) if axis is not None else step
    return float((error > step / 2).double().mean())


@torch.no_grad()
@validate_params(model=Module(), n_bits_weight=Interval(int, 1, 32, optional=True), n_bits_act=Interval(int, 1, 32, optional=True), split=Instance(Split, 'an effdl.data.Split'), calib=Unchecked('calibration batches, checked by effdl.quantization'), layer=Text(), per_channel=Bool())
def quant_state(model: nn.Module, n_bits_weight: int | None, n_bits_act: int | None, split: Split, calib: Any,
                layer: str = "fc1", *, per_channel: bool = True) -> dict:
    """What the bit-width widget shows for ``model`` quantized to ``n_bits_weight`` / ``n_bits_act``.

    Parameters
    ----------
    model : nn.Module
        The float model (not changed).
    n_bits_weight, n_bits_act : int in 2..16, or None
        Bits of the weights / of every layer's input activations; ``None``
        keeps them in float.
    split : Split
        Where the accuracy is measured.
    calib : Split or tensor (N, 1, 28, 28)
        Calibration images (training data); the first 1,024 set the
        activation ranges, the first 256 give the activation histogram.
    layer : str
        The Linear / Conv2d layer whose weights and inputs are shown.
    per_channel : bool
        One weight scale per output channel (else one per tensor).

    Returns
    -------
    dict
        ``n_bits_weight``, ``n_bits_act``, ``layer``, ``per_channel``, ``accuracy`` and
        ``float_accuracy`` (percent), ``weights`` (the layer's float weights,
        1-D), ``inputs`` (its input values on the calibration images, 1-D),
        and, for each quantized side, ``w_levels`` / ``a_levels``
        (representable values; per channel, those of the widest channel
        ``w_channel``), ``w_scale`` / ``a_scale``, ``a_zero_point``,
        ``w_format`` / ``a_format`` (fixed-point names such as ``"q-1.8"``;
        per channel the distinct formats, narrowest range first) and
        ``w_clipped`` / ``a_clipped`` (fraction of values that saturate).

    Taught in chapter 05, "Quantization".
    """
    check_type("model", model, nn.Module, "a torch.nn.Module")
    n_bits_weight = _check_bits("n_bits_weight", n_bits_weight)
    n_bits_act = _check_bits("n_bits_act", n_bits_act)
    check_type("split", split, Split, "an effdl.data.Split")
    x = _inputs(calib)
    check_bool("per_channel", per_channel)
    names = [n for n, m in model.named_modules() if isinstance(m, Q.QUANT_TYPES)]
    check_choice("layer", layer, names)

    qm = Q.quantize_model(model, n_bits_weight, n_bits_act, x, per_channel=per_channel)
    target = qm.model.get_submodule(layer)
    seen = []
    handle = target.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].detach().double()))
    try:
        qm(x[:CALIB_IMAGES])    # the inputs this layer's quantizer sees, earlier layers already quantized
    finally:
        handle.remove()
    weights = model.get_submodule(layer).weight.detach().double().cpu().numpy()
    state = {"n_bits_weight": n_bits_weight, "n_bits_act": n_bits_act, "layer": layer, "per_channel": per_channel,
             "accuracy": evaluate(qm, split), "float_accuracy": evaluate(model, split),
             "weights": weights.ravel(), "inputs": torch.cat([s.flatten() for s in seen]).cpu().numpy()}
    row = next(r for r in qm.summary() if r["layer"] == layer)
    if n_bits_weight:
        s_w, z_w = target.weight_qparams()                # (out,) per channel, else 0-d
        qmin, qmax = target.weight_qrange()
        clipped = _saturated(weights, s_w, z_w, n_bits_weight, signed=qmin < 0)
        s_w, z_w = s_w.reshape(-1), z_w.reshape(-1)
        c = int(torch.argmax(s_w))                       # the widest channel (largest step)
        levels = _levels(float(s_w[c]), int(z_w[c]), qmin, qmax)
        formats = sorted(row.get("w_format", []), key=lambda n: -int(n.split(".")[-1]))
        state.update(w_levels=levels, w_scale=float(s_w[c]), w_channel=c if len(s_w) > 1 else None,
                     w_format=formats, w_clipped=float(clipped))
    if n_bits_act:
        s_a, z_a = float(target.act_scale), int(target.act_zero_point)
        qmin, qmax = target.input_qrange()
        state.update(a_levels=_levels(s_a, z_a, qmin, qmax), a_scale=s_a, a_zero_point=z_a,
                     a_format=row.get("a_format"),
                     a_clipped=_saturated(state["inputs"], s_a, z_a, n_bits_act, signed=qmin < 0))
    return state


def _describe(state: dict, side: str) -> str:
    bits = state["n_bits_weight" if side == "w" else "n_bits_act"]
    if not bits:
        return "float"
    if side == "w":
        fmts = state["w_format"]
        fmt = fmts[0] if len(fmts) == 1 else f"{fmts[0]} … {fmts[-1]}" if fmts else f"step {state['w_scale']:.3g}"
    else:
        fmt = state["a_format"] or f"step {state['a_scale']:.3g}, zero point {state['a_zero_point']}"
    return f"{bits} bits ({fmt})"


def _panel(ax, values: np.ndarray, levels: np.ndarray | None, *, color: str, xlabel: str, title: str,
           log: bool):
    lo, hi = float(values.min()), float(values.max())
    if levels is not None:
        lo, hi = min(lo, levels[0]), max(hi, levels[-1])
    pad = 0.03 * (hi - lo or 1.0)
    ax.hist(values, bins=np.linspace(lo - pad, hi + pad, 121), color=color, log=log)
    if levels is not None:
        if len(levels) <= MAX_LEVELS_DRAWN:
            for v in levels:
                ax.axvline(v, color=COLORS["memory"], lw=0.7, alpha=0.8)
        else:
            ax.axvspan(levels[0], levels[-1], color=COLORS["memory"], alpha=0.12, lw=0)
            for v in (levels[0], levels[-1]):
                ax.axvline(v, color=COLORS["memory"], lw=1.0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count (log scale)" if log else "count")
    ax.set_title(title, fontsize=9)


@validate_params(state=Dict())
def quant_figure(state: dict):
    """The widget's picture of a :func:`quant_state`: weights and input activations with their levels.

    Quantization levels are drawn as thin vertical lines (up to 64 of
    them; above, the representable range is shaded).

    Taught in chapter 05, "Quantization".
    """
    check_type("state", state, dict, "a quant_state result")
    fig, (ax_w, ax_a) = new_figure(3.1, ncols=2)
    layer = state["layer"]
    if state["n_bits_weight"]:
        chan = "" if state["w_channel"] is None else f", levels of channel {state['w_channel']} (widest)"
        w_title = f"{layer} weights: {_describe(state, 'w')}{chan}\n{100 * state['w_clipped']:.2f} % saturate"
    else:
        w_title = f"{layer} weights: float"
    _panel(ax_w, state["weights"], state.get("w_levels"), color=COLORS["compute"], xlabel="weight value",
           title=w_title, log=False)
    if state["n_bits_act"]:
        a_title = f"{layer} input: {_describe(state, 'a')}\n{100 * state['a_clipped']:.2f} % saturate"
    else:
        a_title = f"{layer} input: float"
    _panel(ax_a, state["inputs"], state.get("a_levels"), color=COLORS["exponent"],
           xlabel="activation value", title=a_title, log=True)   # log: after ReLU most inputs are 0
    scheme = "per-channel" if state["per_channel"] else "per-tensor"
    fig.suptitle(f"weights {_describe(state, 'w').split(' (')[0]}, activations {_describe(state, 'a').split(' (')[0]}"
                 f" ({scheme}, no fine-tuning): accuracy {state['accuracy']:.1f} % "
                 f"(float {state['float_accuracy']:.1f} %)", fontsize=10)
    return fig


@validate_params(model=Module(), split=Instance(Split, 'an effdl.data.Split'), calib=Unchecked('calibration batches, checked by effdl.quantization'), n_bits_weight=Interval(int, 1, 32, optional=True), n_bits_act=Interval(int, 1, 32, optional=True), layer=Text(), per_channel=Bool())
def quant_widget(model: nn.Module, split: Split, calib: Any, *, n_bits_weight: int | None = 4,
                 n_bits_act: int | None = 4, layer: str = "fc1", per_channel: bool = True):
    """Sliders for weight and activation bits (or float), a layer menu and a per-channel switch.

    Each change re-quantizes ``model`` (:func:`quant_state`) and redraws
    :func:`quant_figure` into an ``ipywidgets.Image``: no printed output, so
    a stored notebook cell compares equal under nbval.

    Taught in chapter 05, "Quantization".
    """
    quant_state(model, n_bits_weight, n_bits_act, split, calib, layer, per_channel=per_channel)   # validate first
    allowed = WIDGET_BITS + [None]
    for name, value in (("n_bits_weight", n_bits_weight), ("n_bits_act", n_bits_act)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed} in the widget; got {value!r}.")
    options = [(str(b), b) for b in WIDGET_BITS] + [("float", 0)]   # 0 stands for None: a slider needs a value
    wb = widgets.SelectionSlider(options=options, value=n_bits_weight or 0, description="weight bits",
                                 continuous_update=False)
    ab = widgets.SelectionSlider(options=options, value=n_bits_act or 0, description="act. bits",
                                 continuous_update=False)
    names = [n for n, m in model.named_modules() if isinstance(m, Q.QUANT_TYPES)]
    menu = widgets.Dropdown(options=names, value=layer, description="layer")
    pc = widgets.Checkbox(value=per_channel, description="per-channel weights")
    image = widgets.Image(format="png")

    def redraw(_=None):
        state = quant_state(model, wb.value or None, ab.value or None, split, calib, menu.value,
                            per_channel=pc.value)
        image.value = figure_png(quant_figure(state))

    for control in (wb, ab, menu, pc):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([wb, ab]), widgets.HBox([menu, pc]), image])


# ---------------------------------------------------------------- the precomputed sweep
MODE_LABELS = {"w": "weights only", "a": "activations only", "wa": "weights and activations"}
MODE_COLORS = {"w": COLORS["compute"], "a": COLORS["exponent"], "wa": COLORS["memory"]}


@validate_params(curves=Dict(), float_acc=Interval(float, 0, 100), title=Text(), float_ft_acc=Interval(float, 0, 100, optional=True), ylim=Instance(tuple, 'a (low, high) tuple', optional=True))
def bits_sweep_figure(curves: dict, *, float_acc: float, title: str, float_ft_acc: float | None = None,
                      ylim: tuple[float, float] | None = None):
    """Accuracy against bit width, one colour per mode; dashed: after training only, solid: fine-tuned.

    ``curves``: :func:`effdl.precompute.quantization.curves` of one model's
    sweep; ``float_acc`` is drawn as a dotted line, ``float_ft_acc`` (the
    float model fine-tuned like the quantized ones) as a dash-dotted one.
    Bit widths are placed evenly (2, 3, …, 8, 16), as categories.

    Taught in chapter 05, "Quantization".
    """
    check_type("curves", curves, dict, "curves() of a quantization sweep")
    fig, ax = new_figure(3.6)
    ticks = sorted({b for c in curves.values() for b in c["bits"]})
    pos = {b: i for i, b in enumerate(ticks)}
    for mode, c in curves.items():
        color = MODE_COLORS.get(mode, COLORS["other"])
        ax.plot([pos[b] for b in c["bits"]], c["ptq"], ls="--", marker="o", ms=4, color=color,
                label=f"{MODE_LABELS.get(mode, mode)}, quantized after training")
        if c["ft"]:
            ax.plot([pos[b] for b in c["ft_bits"]], c["ft"], ls="-", marker="s", ms=4, color=color,
                    label=f"{MODE_LABELS.get(mode, mode)}, fine-tuned")
    ax.axhline(float_acc, color=COLORS["other"], ls=":", label=f"float32 ({float_acc:.1f} %)")
    if float_ft_acc is not None:
        ax.axhline(float_ft_acc, color=COLORS["other"], ls="-.",
                   label=f"float32 fine-tuned alike ({float_ft_acc:.1f} %)")
    ax.set_xticks(range(len(ticks)), [str(b) for b in ticks])
    ax.set_xlabel("bits (weights, activations or both)")
    ax.set_ylabel("test accuracy (%)")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    return fig


# ---------------------------------------------------------------- fake quantization
@validate_params(n_bits=Interval(int, 1, 8), scale=Interval(float, 0, None, closed='neither'), zero_point=Interval(int, None, None), signed=Bool())
def ste_figure(n_bits: int = 3, scale: float = 0.25, zero_point: int = 0, *, signed: bool = True):
    """Fake quantization and its straight-through gradient, computed by :func:`effdl.quantization.fake_quantize`.

    Left: x̂ against x (the staircase) and the identity. Right: ∂x̂/∂x as
    autograd computes it with the straight-through estimator (1 inside the
    representable range, 0 where the value saturates) next to the true
    derivative of rounding (0 almost everywhere).

    Taught in chapter 05, "Quantization".
    """
    qmin, qmax = Q.qrange(n_bits, signed)
    lo, hi = (qmin - zero_point) * scale, (qmax - zero_point) * scale
    margin = 0.35 * (hi - lo)
    x = torch.linspace(lo - margin, hi + margin, 2001, dtype=torch.float64, requires_grad=True)
    y = Q.fake_quantize(x, scale, zero_point, n_bits, signed=signed)
    y.sum().backward()
    xs, ys, gs = x.detach().numpy(), y.detach().numpy(), x.grad.numpy()
    fig, (ax_f, ax_g) = new_figure(2.9, ncols=2)
    ax_f.plot(xs, xs, color=COLORS["other"], ls=":", label="x (float)")
    ax_f.plot(xs, ys, color=COLORS["compute"], label="fake-quantized x̂")
    for v in (lo, hi):
        ax_f.axvline(v, color=COLORS["memory"], lw=0.8, ls="--")
    ax_f.set_xlabel("x")
    ax_f.set_ylabel("value passed on")
    ax_f.set_title(f"forward: {n_bits} bits, step {scale:g}, {2 ** n_bits} levels", fontsize=9)
    ax_f.legend(fontsize=7, loc="upper left")
    ax_g.plot(xs, gs, color=COLORS["compute"], label="straight-through estimate")
    ax_g.plot(xs, np.zeros_like(xs), color=COLORS["other"], ls=":", label="true derivative (a.e.)")
    for v in (lo, hi):
        ax_g.axvline(v, color=COLORS["memory"], lw=0.8, ls="--")
    ax_g.set_ylim(-0.1, 1.2)
    ax_g.set_xlabel("x")
    ax_g.set_ylabel("∂x̂/∂x used in backward")
    ax_g.set_title("backward: 1 inside the range, 0 where it saturates", fontsize=9)
    ax_g.legend(fontsize=7, loc="center right")
    return fig
