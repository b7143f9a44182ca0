"""Figures and the constraint widget of chapter 17's search (hardware-aware NAS).

Every view reads the ``nas`` record (``effdl.precompute.load_record("nas")``):
the pool of evaluated sub-networks with their costs, the searches, the latency
table's predictions, the architectures each target chose. None recomputes a
model: the Pareto front and the best sub-network within a budget come from
:func:`effdl.nas.search.pareto_front` and :func:`effdl.nas.search.best_within`.

The constraint widget binds a target dropdown (CPU / systolic array / energy)
and a budget slider to the pure :func:`constraint_state`; :func:`constraint_figure`
draws that state and is also the widget's static rendering (and a flip-book's frame).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from ..nas.costs import TARGET_LABELS, TARGET_UNITS, TARGETS
from ..nas.search import best_within, pareto_front
from ..nas.space import KERNELS, N_STAGES, from_key
from .style import WIDTH, figure_png
from ..validation import Dict, Instance, Interval, Options, Text, validate_params

COST_KEYS = {"cpu": "cpu_ms", "systolic": "systolic_us", "energy": "energy_uj"}
METHOD_COLORS = {"evolution": "#0072B2", "random": "#D55E00"}
TARGET_COLORS = {"cpu": "#0072B2", "systolic": "#009E73", "energy": "#CC79A7"}
KERNEL_COLORS = {3: "#56B4E9", 5: "#E69F00", 7: "#D55E00"}
_AX = Instance(Axes, "a matplotlib Axes", optional=True)
_TARGET = Options(TARGETS)


def _ax(ax, size=(WIDTH * 0.6, 3.6)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size, constrained_layout=True)
    return fig, ax


def _pool_xy(record: dict, target: str) -> tuple[np.ndarray, np.ndarray]:
    key = COST_KEYS[target]
    return (np.array([p[key] for p in record["pool"]], dtype=float),
            np.array([p["acc"] for p in record["pool"]], dtype=float))


@validate_params(record=Dict(), target=_TARGET, ax=_AX, title=Text(optional=True))
def pareto_figure(record: dict, *, target: str = "cpu", ax=None, title: str | None = None):
    """Validation accuracy against ``target``'s cost for every evaluated sub-network, its Pareto front,
    the budget, and (CPU) what evolution and random search evaluated, seed 0.

    Taught in chapter 17, "Designing efficient models".
    """
    fig, ax = _ax(ax)
    x, y = _pool_xy(record, target)
    ax.scatter(x, y, s=8, color="0.75", label="all evaluated sub-networks", zorder=1)
    front = pareto_front(list(x), list(y))
    ax.plot(x[front], y[front], "-", drawstyle="steps-post", color="k", lw=1.2, label="Pareto front", zorder=3)
    searches = record["searches"][target]
    pool = {p["key"]: p for p in record["pool"]}
    for method in ("random", "evolution"):
        if method not in searches:
            continue
        hist = searches[method][0]["history"]
        ax.scatter([pool[h["key"]][COST_KEYS[target]] for h in hist], [h["acc"] for h in hist], s=14,
                   color=METHOD_COLORS[method], alpha=0.7, label=f"{method} (seed 0)", zorder=2)
        best = searches[method][0]["best"]
        ax.scatter([pool[best["key"]][COST_KEYS[target]]], [best["acc"]], s=120, marker="*",
                   color=METHOD_COLORS[method], edgecolor="k", zorder=4)
    ax.axvline(record["budgets"][target], color="0.3", ls="--", lw=1, label=f"budget {record['budgets'][target]:g} "
                                                                          f"{TARGET_UNITS[target]}")
    lo = np.percentile(y, 5)
    ax.set_ylim(max(lo - 1, 0), min(100, y.max() + 0.5))
    ax.set_xlabel(TARGET_LABELS[target])
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title or f"accuracy vs {TARGET_LABELS[target].split(',')[0].split(' (')[0]}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


@validate_params(record=Dict(), ax=_AX)
def predictor_scatter(record: dict, *, ax=None):
    """The latency table's prediction against the end-to-end time of each network (fit and held out).

    Taught in chapter 17, "Designing efficient models".
    """
    fig, ax = _ax(ax, (WIDTH * 0.45, 3.6))
    lat = record["latency"]
    for rows, label, style in ((lat["fit"], "fit (the constant)", dict(mfc="none")),
                               (lat["held_out"], f"held out: MAPE {lat['mape']:.1f} %", {})):
        ax.plot([r["measured_ms"] for r in rows], [r["predicted_ms"] for r in rows], "o", ms=5, label=label,
                color="#0072B2", **style)
    both = [r[k] for r in lat["fit"] + lat["held_out"] for k in ("measured_ms", "predicted_ms")]
    lim = (0.9 * min(both), 1.1 * max(both))
    ax.plot(lim, lim, "k-", lw=0.8, label="predicted = measured")
    ax.fill_between(lim, [0.9 * v for v in lim], [1.1 * v for v in lim], color="0.85", label="± 10 %")
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_xlabel("measured, end to end (ms, batch 1, 1 thread)")
    ax.set_ylabel("predicted: Σ table + constant (ms)")
    ax.set_title("latency predictor", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return fig


@validate_params(record=Dict(), ax=_AX)
def search_progress(record: dict, *, ax=None):
    """Best validation accuracy found after each evaluation, evolution vs random, every seed (CPU budget).

    Taught in chapter 17, "Designing efficient models".
    """
    fig, ax = _ax(ax, (WIDTH * 0.5, 3.4))
    for method, runs in record["searches"]["cpu"].items():
        for i, run in enumerate(runs):
            best = np.maximum.accumulate([h["acc"] for h in run["history"]])
            ax.plot(np.arange(1, len(best) + 1), best, color=METHOD_COLORS[method], alpha=0.8,
                    ls=["-", "--", ":"][i % 3], label=f"{method}, seed {run['seed']}")
    ax.set_xlabel("evaluations (distinct sub-networks)")
    ax.set_ylabel("best validation accuracy so far (%)")
    ax.set_title(f"under {record['budgets']['cpu']:g} ms (CPU, predicted)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="lower right")
    return fig


def _draw_arch(ax, key: str, y: float, label: str) -> None:
    """One architecture as a row of blocks: width ∝ expansion, colour = kernel, gaps between stages."""
    arch = from_key(key)
    x = 0.0
    for s in range(N_STAGES):
        for k, e in zip(arch.kernels[s], arch.expansions[s]):
            ax.add_patch(Rectangle((x, y - 0.3), 0.25 * e, 0.6, color=KERNEL_COLORS[k], ec="k", lw=0.5))
            ax.text(x + 0.125 * e, y, f"{k}", ha="center", va="center", fontsize=7)
            x += 0.25 * e + 0.08
        x += 0.4
    ax.text(-0.2, y, f"{label}\nr = {arch.resolution}", ha="right", va="center", fontsize=8)


@validate_params(record=Dict(), ax=_AX)
def target_architectures(record: dict, *, ax=None):
    """The architecture each target chose, drawn block by block (width ∝ expansion, colour = kernel).

    Taught in chapter 17, "Designing efficient models".
    """
    fig, ax = _ax(ax, (WIDTH * 0.8, 2.4))
    for i, t in enumerate(TARGETS):
        row = record["targets"][t]
        _draw_arch(ax, row["key"], -i, f"{t} ≤ {row['budget']:g} {TARGET_UNITS[t]}")
    for k, c in KERNEL_COLORS.items():
        ax.add_patch(Rectangle((0, 0), 0, 0, color=c, label=f"kernel {k}"))
    ax.set_xlim(-2.2, 11)
    ax.set_ylim(-len(TARGETS) + 0.4, 0.6)
    ax.axis("off")
    ax.legend(fontsize=7, loc="upper right", ncol=3)
    ax.set_title("the chosen sub-network per target (block width ∝ expansion ratio)", fontsize=10)
    return fig


@validate_params(record=Dict(), target=_TARGET, budget=Interval(float, 0, None, closed="neither"))
def constraint_state(record: dict, target: str = "cpu", budget: float = 2.0) -> dict:
    """What the constraint widget shows: the best recorded sub-network of ``target``'s cost ≤ ``budget``.

    Returns ``target``, ``budget``, ``unit``, ``costs`` and ``accs`` (the
    pool), ``front`` (indices of its Pareto front), ``best`` (the pool entry
    or None when nothing fits) and ``best_index``.

    Taught in chapter 17, "Designing efficient models".
    """
    x, y = _pool_xy(record, target)
    best = best_within(record["pool"], COST_KEYS[target], budget)
    index = None if best is None else record["pool"].index(best)
    return {"target": target, "budget": budget, "unit": TARGET_UNITS[target], "costs": x, "accs": y,
            "front": pareto_front(list(x), list(y)), "best": best, "best_index": index}


@validate_params(state=Dict())
def constraint_figure(state: dict):
    """The widget's picture: the pool, its front and the budget (left); the chosen sub-network (right).

    Taught in chapter 17, "Designing efficient models".
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH * 1.1, 3.4), constrained_layout=True,
                                      gridspec_kw={"width_ratios": [1.2, 1]})
    x, y, t = state["costs"], state["accs"], state["target"]
    fits = x <= state["budget"]
    left.scatter(x[~fits], y[~fits], s=8, color="0.8", label="over budget")
    left.scatter(x[fits], y[fits], s=8, color=TARGET_COLORS[t], alpha=0.6, label="within budget")
    f = state["front"]
    left.plot(x[f], y[f], "-", drawstyle="steps-post", color="k", lw=1, label="Pareto front")
    left.axvline(state["budget"], color="0.3", ls="--", lw=1)
    left.set_ylim(max(np.percentile(y, 5) - 1, 0), min(100, y.max() + 0.5))
    left.set_xlabel(TARGET_LABELS[t])
    left.set_ylabel("validation accuracy (%)")
    left.grid(True, alpha=0.3)
    best = state["best"]
    if best is None:
        left.set_title(f"nothing fits {state['budget']:g} {state['unit']}", fontsize=9)
        right.text(0.5, 0.5, "no sub-network\nwithin this budget", ha="center", va="center")
        right.axis("off")
    else:
        left.scatter([x[state["best_index"]]], [best["acc"]], s=160, marker="*", color=TARGET_COLORS[t],
                     edgecolor="k", zorder=5, label="best within budget")
        left.set_title(f"{t} ≤ {state['budget']:g} {state['unit']}: {best['acc']:.1f} %", fontsize=9)
        _draw_arch(right, best["key"], 0, "")
        right.set_xlim(-0.5, 11)
        right.set_ylim(-1.6, 0.8)
        right.axis("off")
        right.text(0, -0.75, f"{best['params']:,} params, {best['macs'] / 1e6:.2f} M MACs\n"
                             f"CPU {best['cpu_ms']:.2f} ms · systolic {best['systolic_us']:.0f} µs · "
                             f"{best['energy_uj']:.1f} µJ", fontsize=8, va="top")
        right.set_title("the chosen sub-network (colour = kernel 3/5/7)", fontsize=9)
    left.legend(fontsize=7, loc="lower right")
    return fig


@validate_params(record=Dict(), target=_TARGET, budget=Interval(float, 0, None, closed="neither", optional=True))
def constraint_widget(record: dict, target: str = "cpu", budget: float | None = None):
    """A target dropdown and a budget slider → the best recorded sub-network and its place on the front.

    ``budget`` defaults to the record's budget for ``target``; the slider spans
    the pool's cheapest to its most expensive sub-network.

    Taught in chapter 17, "Designing efficient models".
    """
    budget = record["budgets"][target] if budget is None else budget
    constraint_state(record, target, budget)               # validate before building controls
    dropdown = widgets.Dropdown(options=list(TARGETS), value=target, description="target")
    slider = widgets.FloatSlider(description="budget", continuous_update=False, readout_format=".3g")
    image = widgets.Image(format="png")

    def span(t):
        x, _ = _pool_xy(record, t)
        return float(x.min()), float(x.max())

    def retarget(_=None):
        lo, hi = span(dropdown.value)
        slider.min, slider.max = 0.0, hi
        slider.min, slider.step = lo, (hi - lo) / 100
        slider.value = min(max(record["budgets"][dropdown.value], lo), hi)
        redraw()                                            # the target changed even if the value did not

    def redraw(_=None):
        image.value = figure_png(constraint_figure(constraint_state(record, dropdown.value, slider.value)), dpi=80)

    lo, hi = span(target)
    slider.max, slider.min, slider.step, slider.value = hi, lo, (hi - lo) / 100, min(max(budget, lo), hi)
    dropdown.observe(retarget, names="value")
    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([dropdown, slider]), image])


__all__ = ["pareto_figure", "predictor_scatter", "search_progress", "target_architectures", "constraint_state",
           "constraint_figure", "constraint_widget"]
