"""Figures of chapter 17 (Designing efficient models), first half: the efficient blocks.

Pictures of the fire module and of a depthwise-separable convolution (boxes
drawn to the scale of their channel counts, labelled with their weights), the
MAC ratio against the measured time ratio of ``benchmarks/bench_blocks.py``,
its layers placed on this machine's roofline, and the three MNIST nets of
``effdl.precompute.efficient_blocks`` side by side. They draw results; they
compute no model.
"""
from __future__ import annotations

import matplotlib.patches as mpatches
import matplotlib.ticker as mticker
import numpy as np

from .style import COLORS, new_figure
from ..validation import Dict, Options, PositiveInt, Records, Text, validate_params

TIMINGS = ("best", "median")

_LAYER_COLORS = {"standard": COLORS["compute"], "depthwise": COLORS["memory"], "pointwise": COLORS["exponent"],
                 "separable": COLORS["sign"]}


def _box(ax, x, y, w, h, color, text, fontsize=8):
    ax.add_patch(mpatches.FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec="black",
                                         lw=0.6, alpha=0.85))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, color="white",
            fontweight="bold")


def _arrow(ax, x0, y0, x1, y1):
    ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", lw=0.8, color="0.3"))


@validate_params(in_ch=PositiveInt(), squeeze=PositiveInt(), expand1=PositiveInt(), expand3=PositiveInt())
def fire_picture(in_ch: int, squeeze: int, expand1: int, expand3: int):
    """The fire module as boxes whose widths follow the channel counts: 1×1 squeeze, then 1×1 ‖ 3×3 expand.

    Each conv is labelled with its weights (``k²·c_in·c_out``); a box on the
    right is the 3×3 conv ``in_ch → expand1 + expand3`` it replaces, with its weights.

    Taught in chapter 17, "Designing efficient models".
    """
    fig, ax = new_figure(3.4)
    out = expand1 + expand3
    scale = 6.0 / max(in_ch, out, 1)                       # box width per channel
    w_sq, w_e1, w_e3 = in_ch * squeeze, squeeze * expand1, 9 * squeeze * expand3
    y = {"in": 4.0, "sq": 3.0, "ex": 1.7, "out": 0.4}
    _box(ax, -in_ch * scale / 2, y["in"], in_ch * scale, 0.5, "0.45", f"input: {in_ch} channels")
    _box(ax, -max(squeeze * scale, 1.6) / 2, y["sq"], max(squeeze * scale, 1.6), 0.5, COLORS["memory"],
         f"squeeze 1×1: {squeeze}")
    gap = 0.2
    x1 = -gap / 2 - max(expand1 * scale, 1.8)
    _box(ax, x1, y["ex"], max(expand1 * scale, 1.8), 0.5, COLORS["exponent"], f"expand 1×1: {expand1}")
    _box(ax, gap / 2, y["ex"], max(expand3 * scale, 1.8), 0.5, COLORS["compute"], f"expand 3×3: {expand3}")
    _box(ax, -out * scale / 2, y["out"], out * scale, 0.5, "0.45", f"concatenated: {out} channels")
    _arrow(ax, 0, y["in"], 0, y["sq"] + 0.55)
    _arrow(ax, 0, y["sq"], x1 / 2, y["ex"] + 0.55)
    _arrow(ax, 0, y["sq"], gap / 2 + max(expand3 * scale, 1.8) / 2, y["ex"] + 0.55)
    _arrow(ax, x1 / 2, y["ex"], -0.3, y["out"] + 0.55)
    _arrow(ax, gap / 2 + max(expand3 * scale, 1.8) / 2, y["ex"], 0.3, y["out"] + 0.55)
    right = 3.6
    ax.text(right, y["sq"] + 0.25, f"{w_sq:,} weights", fontsize=8, va="center")
    ax.text(right, y["ex"] + 0.25, f"{w_e1:,} + {w_e3:,} weights", fontsize=8, va="center")
    fire_total, conv_total = w_sq + w_e1 + w_e3, 9 * in_ch * out
    ax.text(right, y["out"] + 0.25, f"fire: {fire_total:,} weights\n3×3 conv {in_ch}→{out}: {conv_total:,}\n"
                                    f"({conv_total / fire_total:.1f}× more)", fontsize=8, va="center")
    ax.set_xlim(-4, 6.5)
    ax.set_ylim(0, 4.8)
    ax.axis("off")
    ax.set_title(f"Fire module {in_ch} → squeeze {squeeze} → {expand1} (1×1) ‖ {expand3} (3×3)", fontsize=10)
    return fig


def _filters(ax, x, y, n, depth, k, color, label, max_drawn=6):
    # n filters of k×k×depth, drawn as offset stacked squares (at most max_drawn of them)
    size = 0.25 + 0.12 * k
    for i in range(min(n, max_drawn)):
        for d in range(min(depth, 4)):
            ax.add_patch(mpatches.Rectangle((x + 1.1 * i * size + 0.06 * d, y + 0.06 * d), size, size,
                                            fc=color, ec="black", lw=0.4, alpha=0.5 + 0.1 * d))
    if n > max_drawn:
        ax.text(x + 1.1 * max_drawn * size + 0.1, y + size / 2, "…", fontsize=12, va="center")
    ax.text(x, y - 0.35, label, fontsize=8, va="top")


@validate_params(in_ch=PositiveInt(), out_ch=PositiveInt(), kernel=PositiveInt())
def separable_picture(in_ch: int, out_ch: int, kernel: int = 3):
    """A standard k×k conv's filters (``out_ch`` of k×k×``in_ch``) against the depthwise-separable pair.

    Top: the standard conv's ``out_ch`` filters; bottom: ``in_ch`` depthwise
    filters of k×k×1 and ``out_ch`` pointwise filters of 1×1×``in_ch``; each
    row labelled with its weights (= MACs per output pixel).

    Taught in chapter 17, "Designing efficient models".
    """
    fig, ax = new_figure(3.4)
    k = kernel
    std, dw, pw = k * k * in_ch * out_ch, k * k * in_ch, in_ch * out_ch
    _filters(ax, 0.2, 3.2, out_ch, in_ch, k, _LAYER_COLORS["standard"],
             f"standard {k}×{k} conv: {out_ch} filters of {k}×{k}×{in_ch} = {std:,} weights")
    _filters(ax, 0.2, 1.6, in_ch, 1, k, _LAYER_COLORS["depthwise"],
             f"depthwise {k}×{k}: {in_ch} filters of {k}×{k}×1 = {dw:,} weights (one per channel)")
    _filters(ax, 0.2, 0.2, out_ch, in_ch, 1, _LAYER_COLORS["pointwise"],
             f"pointwise 1×1: {out_ch} filters of 1×1×{in_ch} = {pw:,} weights (mix the channels)")
    ax.text(7.2, 1.2, f"separable ÷ standard\n= ({dw:,} + {pw:,}) ÷ {std:,}\n= 1/{out_ch} + 1/{k * k}"
                      f" = {(dw + pw) / std:.3f}", fontsize=9, va="center")
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.6, 4.6)
    ax.axis("off")
    ax.set_title(f"Standard vs depthwise-separable {k}×{k} convolution, {in_ch} → {out_ch} channels",
                 fontsize=10)
    return fig


def _shape_label(row: dict) -> str:
    return f"C={row['channels']}\n{row['size']}×{row['size']}"


@validate_params(rows=Records(), title=Text(), timing=Options(TIMINGS))
def mac_vs_time_bars(rows: list[dict], *, title: str, timing: str = "best"):
    """Per layer shape: separable ÷ standard in MACs (= 1/C + 1/9) and in measured time, side by side.

    ``rows``: ``benchmarks/results/blocks.json``'s ``rows`` (``channels``,
    ``size``, ``mac_ratio``, ``time_ratio_best`` or ``time_ratio`` for
    ``timing="median"``). A bar above the MAC bar is time the MAC count does
    not explain; 1 (dashed) is no gain at all.

    Taught in chapter 17, "Designing efficient models".
    """
    fig, ax = new_figure(3.4)
    xs = np.arange(len(rows))
    width = 0.38
    ax.bar(xs - width / 2, [r["mac_ratio"] for r in rows], width, color=COLORS["compute"],
           label="MACs: separable ÷ standard (= 1/C + 1/9)")
    key = "time_ratio_best" if timing == "best" else "time_ratio"
    ax.bar(xs + width / 2, [r[key] for r in rows], width, color=COLORS["memory"],
           label=f"measured time ({timing} of the rounds): separable ÷ standard")
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(xs, [_shape_label(r) for r in rows], fontsize=8)
    ax.set_ylabel("separable ÷ standard")
    ax.set_xlabel("channels C → C, feature map H×W (3×3 kernel, batch 1, one thread)")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=10)
    return fig


@validate_params(machine=Dict(), rows=Records(), title=Text(), timing=Options(TIMINGS))
def blocks_on_roofline(machine: dict, rows: list[dict], *, title: str, timing: str = "best"):
    """Standard, depthwise and pointwise layers at their intensity and achieved GFLOP/s, under the roofline.

    ``machine``: ``{"peak_gflops", "bandwidth_gbs"}`` (one thread);
    ``rows``: ``benchmarks/results/blocks.json``'s ``rows``, each with
    ``{layer: {"intensity", "gflops_best", "gflops"}}`` for the standard,
    depthwise and pointwise layers (``gflops`` for ``timing="median"``).

    Taught in chapter 17, "Designing efficient models".
    """
    fig, ax = new_figure(3.8)
    peak, bw = machine["peak_gflops"], machine["bandwidth_gbs"]
    x = np.logspace(-1, 3, 200)
    ax.plot(x, np.minimum(peak, bw * x), color="black", lw=1.2,
            label=f"roofline: {peak:.0f} GFLOP/s, {bw:.1f} GB/s (ridge {peak / bw:.1f} FLOP/B)")
    markers = {"standard": "o", "depthwise": "s", "pointwise": "^"}
    key = "gflops_best" if timing == "best" else "gflops"
    for layer, marker in markers.items():
        ax.scatter([r[layer]["intensity"] for r in rows], [r[layer][key] for r in rows], marker=marker,
                   s=36, color=_LAYER_COLORS[layer], edgecolor="black", linewidth=0.4, zorder=3,
                   label=f"{layer} conv" if layer != "standard" else "standard 3×3 conv")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    ax.set_xlabel("arithmetic intensity (FLOP per DRAM byte, fp32)")
    ax.set_ylabel("achieved performance (GFLOP/s)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    return fig


@validate_params(nets=Dict(), title=Text())
def three_nets(nets: dict, *, title: str):
    """Parameters, MACs and CPU time of each net relative to the standard net (bars), with test accuracy.

    ``nets``: ``{"standard" | "fire" | "depthwise_separable": {"params", "macs",
    "cpu_ms", "test_acc"}}`` (the record of ``effdl precompute efficient_blocks``).

    Taught in chapter 17, "Designing efficient models".
    """
    fig, ax = new_figure(3.4)
    names = list(nets)
    metrics = [("params", "parameters", COLORS["exponent"]), ("macs", "MACs", COLORS["compute"]),
               ("cpu_ms", "CPU time per image", COLORS["memory"])]
    xs = np.arange(len(names))
    width = 0.26
    base = nets["standard"]
    top = 1.0
    for i, (key, label, color) in enumerate(metrics):
        values = [nets[n][key] / base[key] for n in names]
        top = max(top, *values)
        ax.bar(xs + (i - 1) * width, values, width, color=color, label=label)
    ax.set_xticks(xs, [f"{n.replace('_', '-')}\n{nets[n]['test_acc']:.1f} % test accuracy" for n in names])
    ax.set_ylabel("relative to the standard net")
    ax.set_ylim(0, 1.3 * top)
    ax.legend(fontsize=8, loc="upper center", ncols=3)
    ax.set_title(title, fontsize=10)
    return fig
