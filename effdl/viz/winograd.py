"""Figures of chapter 8 (Winograd convolution): where the time of a layer goes, stage by stage,
and the measured speed-ups next to the multiply counts' limits.

Both draw results recorded by ``benchmarks/bench_winograd.py`` (:func:`effdl.winograd.time_conv3x3`
and :func:`effdl.winograd.time_breakdown`); they compute nothing.
"""
from __future__ import annotations

import numpy as np

from .style import COLORS, new_figure
from ..validation import Dict, Text, validate_params

# stage → (label, colour): the GEMMs in the compute colour, the data movement before and after them in two
# others (im2col's copies and Winograd's transforms play the same part, so they share a label)
STAGES = {
    "im2col": ("before: im2col copy / input transform", COLORS["memory"]),
    "input_transform": ("before: im2col copy / input transform", COLORS["memory"]),
    "gemm": ("GEMM", COLORS["compute"]),
    "output_transform": ("after: output copy / output transform", COLORS["integer"]),
    "output": ("after: output copy / output transform", COLORS["integer"]),
}
METHODS = {"im2col": "im2col", "winograd": "F(2×2)", "winograd_4x4": "F(4×4)"}


@validate_params(layers=Dict(), title=Text())
def breakdown_bars(layers: dict, *, title: str):
    """Stacked bars, three per layer (im2col + GEMM, Winograd F(2×2), F(4×4)): milliseconds in each
    stage; a black tick marks ``torch.nn.functional.conv2d``'s total.

    ``layers``: ``{layer: {"C", "K", "H", "W", "ms": {method: ms}, "breakdown_ms": {method: {stage: ms}}}}``,
    one batch and thread count of ``benchmarks/results/winograd.json``.

    Taught in chapter 08, "Winograd convolution".
    """
    fig, ax = new_figure(3.6)
    names = list(layers)
    width = 0.27
    drawn: set[str] = set()
    for i, method in enumerate(METHODS):
        xs = np.arange(len(names)) + (i - 1) * width
        bottom = np.zeros(len(names))
        stages = list(dict.fromkeys(s for n in names for s in layers[n]["breakdown_ms"][method]))
        for stage in stages:
            label, color = STAGES[stage]
            ms = np.array([layers[n]["breakdown_ms"][method].get(stage, 0.0) for n in names])
            ax.bar(xs, ms, width * 0.92, bottom=bottom, color=color, edgecolor="white", linewidth=0.5,
                   label=None if label in drawn else label)
            drawn.add(label)
            bottom += ms
        for x, top in zip(xs, bottom):
            ax.text(x, top, METHODS[method], ha="center", va="bottom", fontsize=6, rotation=90)
    torch_ms = [layers[n]["ms"]["torch"] for n in names]
    ax.scatter(np.arange(len(names)), torch_ms, marker="_", s=900, color="black", zorder=3,
               label="torch conv2d (total)")
    ax.set_xticks(np.arange(len(names)),
                  [f"{n}\nC={layers[n]['C']}, {layers[n]['H']}²" for n in names], fontsize=8)
    ax.set_ylabel("time per layer (ms)")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.15)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(title, fontsize=10)
    return fig


@validate_params(runs=Dict(), title=Text())
def speedups_vs_limits(runs: dict, *, title: str):
    """Measured geometric-mean speed-ups of F(2×2) and F(4×4) over im2col + GEMM, one group per run
    (threads, batch), with the multiply-count limits 2.25× and 4× as dashed lines and 1× as the
    break-even.

    ``runs``: ``{label: {"geomean_F2_vs_im2col", "geomean_F4_vs_im2col", …}}``.

    Taught in chapter 08, "Winograd convolution".
    """
    fig, ax = new_figure(3.2)
    labels = list(runs)
    xs = np.arange(len(labels))
    for i, (key, name, color, limit) in enumerate([("F2", "F(2×2, 3×3)", COLORS["compute"], 2.25),
                                                    ("F4", "F(4×4, 3×3)", COLORS["exponent"], 4.0)]):
        values = [runs[label][f"geomean_{key}_vs_im2col"] for label in labels]
        bars = ax.bar(xs + (i - 0.5) * 0.38, values, 0.36, color=color, label=f"{name} measured")
        ax.bar_label(bars, fmt="%.2f×", fontsize=7)
        ax.axhline(limit, color=color, ls="--", lw=1, label=f"{name} multiply limit {limit:g}×")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(xs, labels, fontsize=8)
    ax.set_ylabel("speed-up over im2col + GEMM (×)")
    ax.set_ylim(0, 4.6)
    ax.legend(fontsize=7, ncols=2, loc="upper left")
    ax.set_title(title, fontsize=10)
    return fig
