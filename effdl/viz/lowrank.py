"""Figures of chapter 7 (Low-rank approximation): spectra, accuracy against rank, Zhang et al.'s
decomposition of a convolution, and accuracy against speedup.

Each function draws results of :mod:`effdl.lowrank` (or its precomputed record).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from .style import COLORS, WIDTH, new_figure
from ..validation import Dict, Interval, PositiveInt, Records, Text, validate_params


@validate_params(spectra=Dict(), title=Text(), what=Text())
def energy_spectra(spectra: dict[str, np.ndarray], *, title: str, what: str = "σᵢ²"):
    """How fast a matrix's energy is captured by its top components, one line per matrix.

    ``spectra``: {label: energies, descending} — squared singular values of a
    weight matrix, or eigenvalues of a layer's response covariance. Left: each
    energy as a fraction of the total (log scale); right: the cumulative
    fraction kept by the top r, the quantity rank selection trades off.

    Taught in chapter 07, "Low-rank approximation".
    """
    fig, (ax_s, ax_c) = new_figure(3.3, ncols=2)
    palette = [COLORS["compute"], COLORS["memory"], COLORS["exponent"], COLORS["integer"]]
    for (label, e), color in zip(spectra.items(), palette * 2):
        e = np.asarray(e, dtype=float)
        frac = e / e.sum()
        r = np.arange(1, len(e) + 1)
        ax_s.semilogy(r, frac, color=color, label=label)
        ax_c.plot(r, 100 * np.cumsum(frac), color=color, label=label)
    ax_s.set_xlabel("index i (descending)")
    ax_s.set_ylabel(f"{what} / Σ (log scale)")
    ax_s.set_title("each component's share of the energy", fontsize=9)
    ax_c.set_xlabel("rank r kept")
    ax_c.set_ylabel("energy kept (%)")
    ax_c.set_ylim(0, 101)
    ax_c.set_title("cumulative energy of the top r", fontsize=9)
    for ax in (ax_s, ax_c):
        ax.grid(True, alpha=0.3)
    ax_c.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return fig


@validate_params(curves=Dict(), dense_acc=Interval(float, 0, 100), param_ratio=Dict(), title=Text())
def accuracy_vs_rank(curves: dict[str, tuple[list, list]], *, dense_acc: float,
                     param_ratio: dict[int, float], title: str):
    """Accuracy of a factorized layer against its rank, one line per method.

    ``curves``: {label: (ranks, accuracies in %)}; ``param_ratio``: {rank:
    dense ÷ factorized parameters of the layer}, printed under the ticks.

    Taught in chapter 07, "Low-rank approximation".
    """
    fig, ax = new_figure(3.6)
    styles = [(COLORS["memory"], "s"), (COLORS["compute"], "o"), (COLORS["exponent"], "^")]
    for (label, (ranks, accs)), (color, marker) in zip(curves.items(), styles * 2):
        ax.plot(ranks, accs, marker=marker, color=color, label=label)
    ax.axhline(dense_acc, color=COLORS["other"], ls=":", label=f"dense layer ({dense_acc:.1f} %)")
    ax.set_xscale("log")
    ticks = sorted(param_ratio)
    ax.set_xticks(ticks, [f"{r}\n{param_ratio[r]:.3g}×" for r in ticks])
    ax.minorticks_off()
    ax.set_xlabel("rank r (and how many times fewer parameters the layer has)")
    ax.set_ylabel("test accuracy (%)")
    low = min(min(a) for _, a in curves.values())
    ax.set_ylim(max(0, low - 3), 100)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


@validate_params(c=PositiveInt(), d=PositiveInt(), k=PositiveInt(), rank=PositiveInt(), out_hw=PositiveInt(optional=True))
def conv_decomposition(c: int, d: int, k: int, rank: int, *, out_hw: int | None = None):
    """Zhang et al.'s decomposition as a picture: d filters k×k×c → d′ filters k×k×c, then d filters 1×1×d′.

    Boxes are feature maps (height ∝ channels); arrows carry the filter banks,
    labelled with their shapes and, if ``out_hw`` is given, MACs per image.

    Taught in chapter 07, "Low-rank approximation".
    """
    fig, (ax_a, ax_b) = plt.subplots(2, 1, figsize=(WIDTH, 3.6), constrained_layout=True)
    hw = 1 if out_hw is None else out_hw * out_hw
    scale = 1.6 / max(c, d, rank)

    def fmap(ax, x, channels, label, color):
        h = max(channels * scale, 0.08)
        ax.add_patch(Rectangle((x, -h / 2), 0.35, h, color=color, alpha=0.8))
        ax.text(x + 0.175, -0.95, label, ha="center", va="top", fontsize=8)

    def bank(ax, x0, x1, text):
        ax.annotate("", xy=(x1, 0), xytext=(x0, 0), arrowprops={"arrowstyle": "->", "lw": 1.2})
        ax.text((x0 + x1) / 2, 0.12, text, ha="center", va="bottom", fontsize=8)

    dense_macs = d * c * k * k * hw
    fmap(ax_a, 0, c, f"input, {c} channels", COLORS["other"])
    bank(ax_a, 0.45, 4.15, f"{d} filters {k}×{k}×{c}" + (f"\n{dense_macs:,} MACs" if out_hw else ""))
    fmap(ax_a, 4.25, d, f"output, {d} channels", COLORS["compute"])
    ax_a.set_title(f"original layer: {d}·{c}·{k}² = {d * c * k * k:,} weights", fontsize=9)

    first, second = rank * c * k * k * hw, d * rank * hw
    fmap(ax_b, 0, c, f"input, {c} channels", COLORS["other"])
    bank(ax_b, 0.45, 2.0, f"{rank} filters {k}×{k}×{c}" + (f"\n{first:,} MACs" if out_hw else ""))
    fmap(ax_b, 2.1, rank, f"{rank} channels", COLORS["integer"])
    bank(ax_b, 2.55, 4.15, f"{d} filters 1×1×{rank}" + (f"\n{second:,} MACs" if out_hw else ""))
    fmap(ax_b, 4.25, d, f"output, {d} channels", COLORS["compute"])
    ax_b.set_title(f"decomposed, d′ = {rank}: {rank}·{c}·{k}² + {d}·{rank} = "
                   f"{rank * c * k * k + d * rank:,} weights", fontsize=9)
    for ax in (ax_a, ax_b):
        ax.set_xlim(-0.2, 4.8)
        ax.set_ylim(-1.3, 1.0)
        ax.axis("off")
    fig.suptitle(f"Decomposing a {k}×{k} convolution ({c} → {d} channels) through {rank} channels", fontsize=10)
    return fig


@validate_params(rows=Records(), dense_acc=Interval(float, 0, 100), title=Text())
def speedup_vs_accuracy(rows: list[dict], *, dense_acc: float, title: str):
    """Accuracy against theoretical speedup for several ways of choosing ranks.

    ``rows``: dicts with ``method`` (a label), ``speedup``, ``acc_no_ft`` and
    ``acc_ft`` (test accuracy %, before and after fine-tuning). Hollow
    markers: before fine-tuning; filled: after.

    Taught in chapter 07, "Low-rank approximation".
    """
    fig, ax = new_figure(3.6)
    palette = [COLORS["memory"], COLORS["compute"], COLORS["exponent"]]
    for method, color in zip(dict.fromkeys(r["method"] for r in rows), palette * 2):
        pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r["speedup"])
        x = [r["speedup"] for r in pts]
        ax.plot(x, [r["acc_no_ft"] for r in pts], ls="--", marker="o", mfc="white", color=color,
                label=f"{method}, no fine-tuning")
        ax.plot(x, [r["acc_ft"] for r in pts], ls="-", marker="o", color=color, label=f"{method}, fine-tuned")
    ax.axhline(dense_acc, color=COLORS["other"], ls=":", label=f"dense ({dense_acc:.1f} %)")
    ax.set_xlabel("theoretical speedup of the conv layers (dense MACs ÷ decomposed MACs, ×)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return fig
