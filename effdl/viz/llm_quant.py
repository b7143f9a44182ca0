"""Chapter 19's views: perplexity against bits, bytes against perplexity, activation outliers, a layer-error widget.

The figures read the ``llm_quant`` record (:mod:`effdl.precompute.llm_quant`).
The widget follows the book's pattern: :func:`layer_error_state` (pure:
quantizes one layer with :mod:`effdl.llm.quantize`) →
:func:`layer_error_figure` → :func:`layer_error_widget` (two sliders).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FormatStrFormatter

from ..llm import calibration as cal
from ..llm import quantize as qz
from ..validation import Dict, Instance, Interval, PositiveInt, Tensor, Text, validate_params
from .style import WIDTH, figure_png

def _log_ppl_axis(ax) -> None:
    """Perplexity on a log axis, its ticks written as plain numbers (5.0, 5.5, 6.0, …)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.1f"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.1f"))
    ax.tick_params(axis="y", which="minor", labelsize=7)


METHOD_STYLE = {"rtn": ("round-to-nearest", "tab:gray", "o-"), "gptq": ("GPTQ", "tab:blue", "s-"),
                "awq": ("AWQ", "tab:orange", "^-")}
N_BITS = Interval(int, 2, 8)


@validate_params(record=Dict(), title=Text(optional=True))
def ppl_vs_bits(record: dict, *, title: str | None = None):
    """Perplexity per byte against weight bits for RTN, GPTQ and AWQ (groups of the record's size), fp32 dashed.

    From the record's sweep (the first test windows); log-scaled perplexity.

    Taught in chapter 19, "Quantizing a language model".
    """
    sweep, g = record["sweep"], record["group_size"]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), constrained_layout=True)
    for method, (label, color, fmt) in METHOD_STYLE.items():
        rows = _sweep_rows(sweep, method, g)
        ax.plot([r["n_bits"] for r in rows], [r["ppl"] for r in rows], fmt, color=color, label=f"{label}, g = {g}")
    _finish_bits_axes(ax, sweep["fp_ppl"], f"fp32 ({sweep['fp_ppl']:.3f})",
                      title or f"Weight-only quantization of the book's GPT (first {sweep['windows']} test windows)")
    return fig


def _sweep_rows(sweep: dict, method: str, group_size) -> list:
    """The sweep's rows of one method and group size, by bit width."""
    return sorted((r for r in sweep["rows"] if r["method"] == method and r["group_size"] == group_size),
                  key=lambda r: r["n_bits"])


def _finish_bits_axes(ax, fp_ppl: float, fp_label: str, title: str) -> None:
    """The fp32 line, the log perplexity axis, labels, grid and legend of a perplexity-vs-bits plot."""
    ax.axhline(fp_ppl, color="k", ls="--", lw=1, label=fp_label)
    _log_ppl_axis(ax)
    ax.set_xlabel("bits per weight (n_bits)")
    ax.set_ylabel("perplexity per byte (log scale)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


@validate_params(record=Dict(), title=Text(optional=True))
def group_sweep(record: dict, *, title: str | None = None):
    """RTN's perplexity against bits, one line per group size (per output channel to 16 columns).

    Taught in chapter 19, "Quantizing a language model".
    """
    sweep = record["sweep"]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4), constrained_layout=True)
    groups = []
    for r in sweep["rows"]:
        if r["method"] == "rtn" and r["group_size"] not in groups:
            groups.append(r["group_size"])
    for i, g in enumerate(groups):
        rows = _sweep_rows(sweep, "rtn", g)
        ax.plot([r["n_bits"] for r in rows], [r["ppl"] for r in rows], "o-", color=f"C{i}",
                label="per output channel" if g is None else f"groups of {g} columns")
    _finish_bits_axes(ax, sweep["fp_ppl"], "fp32", title or "Round-to-nearest: smaller groups, finer grids")
    return fig


@validate_params(record=Dict(), title=Text(optional=True))
def bytes_vs_ppl(record: dict, *, title: str | None = None):
    """Bytes on disk against test perplexity: fp32, 8-bit per channel, and 4 / 3 bits in groups (RTN, GPTQ, AWQ).

    Taught in chapter 19, "Quantizing a language model".
    """
    g, res, size = record["group_size"], record["results"], record["bytes"]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4), constrained_layout=True)
    ax.plot(size["fp32"] / 1e6, record["fp_ppl"], "D", color="k", ms=8, label="fp32")
    ax.plot(size["w8"] / 1e6, res["rtn"]["w8"], "o", color="tab:green", ms=8, label="8 bits per channel (RTN)")
    for method, (label, color, fmt) in METHOD_STYLE.items():
        for n_bits in (4, 3):
            key = f"w{n_bits}_g{g}"
            b = size.get(f"awq_{key}", size[key]) if method == "awq" else size[key]
            ax.plot(b / 1e6, res[method][key], fmt[0], color=color, ms=8, mfc="none" if n_bits == 3 else color,
                    label=f"{label}, {n_bits} bits")
    ax.set_xlim(0, 1.1 * size["fp32"] / 1e6)
    ax.set_xlabel("model file on disk (MB)")
    ax.set_ylabel("test perplexity per byte")
    ax.set_title(title or f"Smaller files, and what they cost (groups of {g}; filled: 4 bits, open: 3 bits)",
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper center")
    return fig


@validate_params(record=Dict(), title=Text(optional=True))
def activation_outliers(record: dict, *, title: str | None = None):
    """Left: ``max|x_j|`` per input channel of each block's attention input; right: max ÷ median per layer.

    Taught in chapter 19, "Quantizing a language model".
    """
    out = record["outliers"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(WIDTH, 3.6), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [3, 2]})
    q_layers = [n for n in out["max_abs"] if n.endswith(".attn.q")]
    for i, n in enumerate(q_layers):
        m = np.asarray(out["max_abs"][n])
        ax.plot(np.arange(m.size), m, lw=0.9, color=f"C{i}", label=n.replace(".attn.q", ""))
        top = int(m.argmax())
        ax.plot(top, m[top], "o", color=f"C{i}", ms=5)
    ax.set_xlabel("input channel j (attention input, after LayerNorm)")
    ax.set_ylabel("max |x_j| over calibration tokens")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    rows = out["summary"]
    bx.barh(np.arange(len(rows)), [r["ratio"] for r in rows], color="tab:purple")
    bx.set_yticks(np.arange(len(rows)), [r["layer"].replace("blocks.", "b").replace("attn.", "")
                                         for r in rows], fontsize=6)
    bx.invert_yaxis()
    bx.set_xlabel("largest ÷ median channel max")
    bx.grid(True, axis="x", alpha=0.3)
    fig.suptitle(title or "Activation outliers of the book's GPT (calibration text)", fontsize=9)
    return fig


@validate_params(weight=Tensor(ndim=2), x=Tensor(ndim=2), n_bits=N_BITS, group_size=PositiveInt(optional=True))
def layer_error_state(weight, x, n_bits: int = 3, group_size: int | None = 32) -> dict:
    """One layer quantized three ways: mean squared output error on ``x`` for RTN, GPTQ and AWQ.

    Returns ``{"n_bits", "group_size", "errors": {"rtn", "gptq", "awq"}, "awq_alpha"}``.

    Taught in chapter 19, "Quantizing a language model".
    """
    errors = {"rtn": qz.layer_error(weight, x, qz.rtn(weight, n_bits, group_size)),
              "gptq": qz.layer_error(weight, x, qz.gptq(weight, cal.hessian(x), n_bits, group_size))}
    a = qz.awq_scales(weight, x, n_bits, group_size)
    errors["awq"] = a["error"]
    return {"n_bits": n_bits, "group_size": group_size, "errors": errors, "awq_alpha": a["alpha"]}


@validate_params(state=Dict(), ax=Instance(Axes, "a matplotlib Axes", optional=True), title=Text(optional=True))
def layer_error_figure(state: dict, *, ax=None, title: str | None = None):
    """Bars: the layer's output error for RTN, GPTQ and AWQ, relative to RTN's.

    Taught in chapter 19, "Quantizing a language model".
    """
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(WIDTH, 2.8), constrained_layout=True)
    e = state["errors"]
    names = list(METHOD_STYLE)
    rel = [e[m] / e["rtn"] for m in names]
    ax.bar(range(3), rel, color=[METHOD_STYLE[m][1] for m in names])
    ax.set_xticks(range(3), [METHOD_STYLE[m][0] for m in names])
    for i, r in enumerate(rel):
        ax.text(i, r, f"{r:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("output error ÷ RTN's")
    g = state["group_size"]
    ax.set_title(title or f"{state['n_bits']} bits, " + ("per output channel" if g is None else f"groups of {g}"),
                 fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    return fig if fig is not None else ax.figure


@validate_params(weight=Tensor(ndim=2), x=Tensor(ndim=2), n_bits=N_BITS, group_size=PositiveInt(optional=True))
def layer_error_widget(weight, x, n_bits: int = 3, group_size: int | None = 32):
    """Two sliders (bits, group size among the divisors of the width) redrawing :func:`layer_error_figure`.

    Taught in chapter 19, "Quantizing a language model".
    """
    layer_error_state(weight, x, n_bits, group_size)                   # validate before building controls
    cols = weight.shape[1]
    options = [("per channel", None)] + [(str(g), g) for g in (8, 16, 32, 80, 160, 320) if cols % g == 0 and g < cols]
    bits = widgets.IntSlider(value=n_bits, min=2, max=8, description="n_bits", continuous_update=False)
    group = widgets.SelectionSlider(options=options, value=group_size, description="group",
                                    continuous_update=False)
    image = widgets.Image(format="png")

    def redraw(_=None):
        fig = layer_error_figure(layer_error_state(weight, x, bits.value, group.value))
        image.value = figure_png(fig, dpi=80)

    bits.observe(redraw, names="value")
    group.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([bits, group]), image])


__all__ = ["ppl_vs_bits", "group_sweep", "bytes_vs_ppl", "activation_outliers", "layer_error_state",
           "layer_error_figure", "layer_error_widget"]
