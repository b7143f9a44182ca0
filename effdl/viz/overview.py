"""Figures of chapter 0 (Why efficiency): models grow, and memory costs more energy than arithmetic.

Each function draws rows from :mod:`effdl.architectures` or :mod:`effdl.hardware.energy`.
"""
from __future__ import annotations

import numpy as np

from .style import COLORS, new_figure, readable
from ..validation import Dict, Records, validate_params


@validate_params(rows=Records())
def model_growth(rows: list[dict]):
    """Parameters (and fp32 megabytes) of architectures against their year.

    ``rows``: dicts with ``name``, ``year``, ``params`` (from ``effdl.architectures``).

    Taught in chapter 00, "Why efficiency".
    """
    fig, ax = new_figure(3.8)
    years = np.array([r["year"] for r in rows], dtype=float)
    params = np.array([r["params"] for r in rows], dtype=float)
    ax.scatter(years, params / 1e6, s=60, color=COLORS["compute"], zorder=3)
    for r, x, y in zip(rows, years, params / 1e6):
        ax.annotate(f"{r['name']}\n{y:.3g} M · {readable(4 * y)} MB", (x, y), textcoords="offset points",
                    xytext=(6, -4), fontsize=8, va="top")
    ax.set_yscale("log")
    ax.set_xlabel("year published")
    ax.set_ylabel("parameters (millions, log scale)")
    ax.set_title("Model size: parameters and fp32 bytes (4 bytes per parameter)")
    ax.set_xlim(years.min() - 1, years.max() + 2.5)
    ax.set_ylim(params.min() / 1e6 / 3, params.max() / 1e6 * 2)
    ax.grid(True, which="major", alpha=0.3)
    return fig


@validate_params(table=Records())
def energy_per_operation(table: list[dict]):
    """Horizontal bars of energy per operation (pJ, log scale), relative to a 32-bit int add.

    ``table``: rows with ``description`` and ``energy_pj`` (``effdl.hardware.energy.energy_table``).

    Taught in chapter 00, "Why efficiency".
    """
    rows = sorted(table, key=lambda r: r["energy_pj"])
    fig, ax = new_figure(3.8)
    base = next(r["energy_pj"] for r in table if r["name"] == "int32_add")
    colors = [COLORS["memory"] if "read" in r["name"] else COLORS["compute"] for r in rows]
    y = np.arange(len(rows))
    ax.barh(y, [r["energy_pj"] for r in rows], color=colors)
    for i, r in enumerate(rows):
        ax.text(r["energy_pj"] * 1.15, i, f"{r['energy_pj']:g} pJ  ({r['energy_pj'] / base:,.1f}×)",
                va="center", fontsize=8)
    ax.set_yticks(y, [r["description"] for r in rows])
    ax.set_xscale("log")
    ax.set_xlim(0.01, 2e4)
    ax.set_xlabel("energy per operation (pJ, log scale; × relative to a 32-bit int add)")
    ax.set_title("Energy per operation, 45 nm (Horowitz, ISSCC 2014)")
    return fig


@validate_params(breakdowns=Dict())
def energy_breakdown(breakdowns: dict[str, dict[str, dict]]):
    """Energy of one inference split into arithmetic and weight fetches.

    ``breakdowns``: ``{model: {setting: effdl.hardware.energy.inference_energy(...)}}``;
    one panel per model, one stacked bar per setting (linear scale within a panel).

    Taught in chapter 00, "Why efficiency".
    """
    fig, axes = new_figure(3.4, ncols=len(breakdowns))
    axes = np.atleast_1d(axes)
    for ax, (model, settings) in zip(axes, breakdowns.items()):
        labels = list(settings)
        compute = np.array([settings[s]["compute_uj"] for s in labels])
        memory = np.array([settings[s]["memory_uj"] for s in labels])
        x = np.arange(len(labels))
        ax.bar(x, compute, color=COLORS["compute"], label="arithmetic (MACs)")
        ax.bar(x, memory, bottom=compute, color=COLORS["memory"], label="weight fetches")
        for i in x:
            share = memory[i] / (memory[i] + compute[i])
            ax.text(i, compute[i] + memory[i], f"{readable(memory[i] + compute[i])} µJ\n{share:.0%} memory",
                    ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, labels)
        ax.set_ylim(0, 1.3 * (compute + memory).max())
        ax.set_ylabel("energy per inference (µJ)")
        ax.set_title(model)
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle("Where the energy of one inference goes (45 nm, batch 1)")
    return fig
