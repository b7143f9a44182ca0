"""Figures of chapter 6 (Binary and ternary nets): TTQ's weight evolution, thresholds on a weight
histogram, kernels as images, and accuracy against stored size.

Each function draws results of :mod:`effdl.ternary` (or its precomputed record).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter

from .style import COLORS, WIDTH, new_figure
from ..validation import Array, Dict, Instance, Interval, ListOf, PositiveInt, Records, Text, validate_params


METHOD_COLORS = {"fp32": COLORS["other"], "binary": COLORS["memory"], "twn": COLORS["exponent"],
                 "ttq": COLORS["compute"]}


@validate_params(history=Dict(), layers=ListOf(Text()), title=Text(), steps_per_epoch=Interval(float, 0, None, closed='neither', optional=True))
def ternary_evolution(history: dict, layers: list[str], *, title: str, steps_per_epoch: float | None = None):
    """TTQ's weight evolution (Zhu et al.'s figure): per layer, Wp and −Wn above, the fractions of
    negative / zero / positive weights below, against training steps.

    ``history``: :meth:`effdl.ternary.WeightHistory.as_dict`; ``steps_per_epoch`` adds epoch ticks.

    Taught in chapter 06, "Binary and ternary nets".
    """
    fig, axes = plt.subplots(2, len(layers), figsize=(WIDTH, 4.6), constrained_layout=True, sharex=True,
                             squeeze=False)
    steps = np.asarray(history["step"])
    for col, name in enumerate(layers):
        row = history["layers"][name]
        top, bottom = axes[0, col], axes[1, col]
        top.plot(steps, row["wp"], color=COLORS["compute"], label="Wp")
        top.plot(steps, -np.asarray(row["wn"]), color=COLORS["memory"], label="−Wn")
        top.axhline(0, color="black", lw=0.5)
        top.set_title(name, fontsize=9)
        neg, zero, pos = (100 * np.asarray(row[k]) for k in ("neg", "zero", "pos"))
        bottom.stackplot(steps, neg, zero, pos, colors=[COLORS["memory"], "#DDDDDD", COLORS["compute"]],
                         labels=["negative", "zero", "positive"])
        bottom.set_ylim(0, 100)
        if steps_per_epoch:
            for e in np.arange(steps_per_epoch, steps.max() + 1, steps_per_epoch):
                for ax in (top, bottom):
                    ax.axvline(e, color="black", lw=0.4, ls=":")
    axes[0, 0].set_ylabel("ternary value")
    axes[1, 0].set_ylabel("weights (%)")
    axes[0, -1].legend(fontsize=7, loc="center right")
    handles, labels = axes[1, -1].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], fontsize=7, loc="outside right center")
    fig.supxlabel("training step (batches of 64 images)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


@validate_params(weights=Array(), thresholds=Dict(), title=Text(), bins=PositiveInt())
def weight_thresholds(weights: np.ndarray, thresholds: dict[str, float], *, title: str, bins: int = 121):
    """Histogram of a layer's weights with each method's ±Δ marked and the share it zeroes in the legend.

    ``thresholds``: {label: Δ}; weights with |w| ≤ Δ become 0 under that rule.

    Taught in chapter 06, "Binary and ternary nets".
    """
    fig, ax = new_figure(3.0)
    w = np.asarray(weights, dtype=float).ravel()
    lim = np.abs(w).max()
    ax.hist(w, bins=np.linspace(-lim, lim, bins), color=COLORS["other"], alpha=0.7)
    palette = [COLORS["exponent"], COLORS["compute"], COLORS["memory"], COLORS["sign"]]
    for (label, delta), color, ls in zip(thresholds.items(), palette, ["--", "-", "-.", ":"]):
        share = 100 * np.mean(np.abs(w) <= delta)
        for x in (-delta, delta):
            ax.axvline(x, color=color, lw=1.6, ls=ls, label=f"{label}: ±{delta:.4f}, {share:.1f} % become 0"
                       if x > 0 else None)
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    return fig


@validate_params(panels=ListOf(Instance(tuple, 'a (label, kernels) tuple')), title=Text(), ncols=PositiveInt())
def kernel_images(panels: list[tuple[str, np.ndarray]], *, title: str, ncols: int = 10):
    """Small kernels as images, one block per panel (e.g. full precision next to ternary).

    ``panels``: (label, (n, k, k) array); each panel has its own symmetric colour scale
    (blue negative, white zero, red positive) so that a ternary panel shows exactly three colours.

    Taught in chapter 06, "Binary and ternary nets".
    """
    n = max(len(k) for _, k in panels)
    rows = -(-n // ncols)
    fig = plt.figure(figsize=(WIDTH, 0.95 * rows * len(panels) + 0.5), constrained_layout=True)
    subfigs = np.atleast_1d(fig.subfigures(len(panels), 1))
    for sub, (label, kernels) in zip(subfigs, panels):
        kernels = np.asarray(kernels, dtype=float)
        lim = max(np.abs(kernels).max(), 1e-12)
        axes = np.atleast_2d(sub.subplots(rows, ncols))
        for i, ax in enumerate(axes.flat):
            ax.set_xticks([])
            ax.set_yticks([])
            if i < len(kernels):
                ax.imshow(kernels[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
            else:
                ax.axis("off")
        sub.suptitle(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


@validate_params(rows=Records(), title=Text())
def accuracy_vs_bytes(rows: list[dict], *, title: str):
    """Test accuracy against stored size (kB, log scale): one marker per (model, method).

    ``rows``: dicts with ``model``, ``method`` (fp32 / binary / twn / ttq), ``kbytes`` and ``acc``.

    Taught in chapter 06, "Binary and ternary nets".
    """
    fig, ax = new_figure(3.6)
    markers, labels = {}, {}
    for r in rows:
        marker = markers.setdefault(r["model"], "os^D"[len(markers) % 4])
        ax.scatter(r["kbytes"], r["acc"], s=55, marker=marker, color=METHOD_COLORS.get(r["method"], "black"),
                   zorder=3)
        # points that coincide on the plot (same accuracy, sizes within 0.5 %) share one label
        key = (round(float(np.log10(r["kbytes"])), 2), r["acc"])
        labels.setdefault(key, [r["kbytes"], r["acc"], []])[2].append(r["method"])
    for x, y, methods in labels.values():
        ax.annotate(" = ".join(methods), (x, y), textcoords="offset points", xytext=(6, 3), fontsize=7)
    for model, marker in markers.items():
        pts = sorted((r["kbytes"], r["acc"]) for r in rows if r["model"] == model)
        ax.plot(*zip(*pts), color=COLORS["other"], lw=0.6, zorder=1)
        ax.scatter([], [], marker=marker, color="black", label=model)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("stored size (kB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig
