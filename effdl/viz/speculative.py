"""Chapter 21's views: a speculative run round by round, speed-up against n_draft, and an α / c widget.

:func:`speculative_trace` draws a :class:`effdl.llm.speculative.SpeculativeResult`'s
trace; :func:`speedup_vs_n_draft` reads the ``lm_distill`` record
(:mod:`effdl.precompute.lm_distill`). The widget follows the book's pattern:
:func:`spec_speedup_state` (pure: Leviathan et al.'s formula from
:mod:`effdl.llm.speculative`) → :func:`spec_speedup_figure` →
:func:`spec_speedup_widget` (two sliders).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch, Rectangle

from ..llm.speculative import SpeculativeResult, expected_speedup, expected_tokens_per_round
from ..validation import Dict, Fraction, Instance, Interval, ListOf, PositiveInt, Text, validate_params
from .style import COLORS, WIDTH, figure_png, new_figure

# accepted draft token, the rejected one, drafts discarded after it, the target's own token
CELL = {"accepted": "#009E73", "rejected": "#D55E00", "discarded": "#DDDDDD", "target": "#0072B2"}
DRAFT_STYLE = {"plain": ("plain draft", COLORS["memory"], "o"), "distilled": ("distilled draft", COLORS["compute"], "s")}


def _char(token: int) -> str:
    """A byte as a printable character for a cell label (space and control bytes made visible)."""
    if token == 32:
        return "␣"
    if token == 10:
        return "↵"
    return chr(token) if 32 < token < 127 else "·"


@validate_params(result=Instance(SpeculativeResult, "an effdl.llm.speculative.SpeculativeResult"),
                 max_rounds=PositiveInt(), title=Text(optional=True))
def speculative_trace(result: SpeculativeResult, *, max_rounds: int = 12, title: str | None = None):
    """One row per round (the first ``max_rounds``): the draft's proposals and the target's token.

    Green: accepted draft token; orange: the first rejected one; grey: drafts
    after it (discarded unseen); blue: the token the target's pass adds (the
    correction after a rejection, or the bonus when all were accepted). Each
    cell shows the byte as a character.

    Taught in chapter 21, "Decoding faster".
    """
    rounds = result.trace[:max_rounds]
    width = max(len(r["drafted"]) for r in rounds) + 1
    fig, ax = plt.subplots(figsize=(WIDTH, 0.32 * len(rounds) + 1.2), constrained_layout=True)
    for row, r in enumerate(rounds):
        y = len(rounds) - 1 - row
        for col, token in enumerate(r["drafted"]):
            kind = "accepted" if col < r["accepted"] else ("rejected" if col == r["accepted"] else "discarded")
            ax.add_patch(Rectangle((col, y), 0.92, 0.86, color=CELL[kind]))
            ax.text(col + 0.46, y + 0.43, _char(token), ha="center", va="center", fontsize=9,
                    color="white" if kind != "discarded" else "black")
        col = len(r["drafted"]) + 0.3
        ax.add_patch(Rectangle((col, y), 0.92, 0.86, color=CELL["target"]))
        ax.text(col + 0.46, y + 0.43, _char(r["next"]), ha="center", va="center", fontsize=9, color="white")
    ax.set_xlim(-0.1, width + 0.4)
    ax.set_ylim(-0.2, len(rounds) + 0.1)
    ax.set_yticks(np.arange(len(rounds)) + 0.43, [f"round {i + 1}" for i in range(len(rounds))][::-1], fontsize=8)
    ax.set_xticks([])
    ax.set_xlabel("draft proposals, left to right, then the target's token")
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    handles = [Patch(color=CELL[k], label=lab) for k, lab in
               (("accepted", "accepted"), ("rejected", "rejected"), ("discarded", "discarded"),
                ("target", "target's token"))]
    ax.legend(handles=handles, ncol=4, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_title(title or f"Speculative decoding, {result.rounds} rounds for {result.n_new} tokens", pad=22)
    return fig


@validate_params(record=Dict(), title=Text(optional=True))
def speedup_vs_n_draft(record: dict, *, title: str | None = None):
    """Two panels against ``n_draft``, one line per draft, from the ``lm_distill`` record (greedy).

    Left: target passes per generated token, measured, with Leviathan et
    al.'s expectation ``1 / E[tokens per round]`` at the measured α dotted
    (hardware-independent; the target alone needs 1). Right: wall-clock
    speed-up over the target alone, measured, with the expected
    ``(1 − α^{k+1}) / ((1 − α)(k·c + 1))`` at the measured ``c`` dotted.

    Taught in chapter 21, "Decoding faster".
    """
    spec = record["speculation"]
    fig, (left, right) = new_figure(3.4, 2)
    for name, (label, color, marker) in DRAFT_STYLE.items():
        rows = sorted((r for r in spec["rows"] if r["draft"] == name), key=lambda r: r["n_draft"])
        if not rows:
            continue
        ks = [r["n_draft"] for r in rows]
        left.plot(ks, [r["greedy_target_calls_per_token"] for r in rows], marker=marker, color=color, label=label)
        left.plot(ks, [1 / expected_tokens_per_round(r["greedy_acceptance"], r["n_draft"]) for r in rows], ":",
                  color=color)
        right.plot(ks, [r["measured_speedup"] for r in rows], marker=marker, color=color,
                   label=f"{label} (c = {spec['cost_ratio'][name]:.2f})")
        right.plot(ks, [r["expected_speedup"] for r in rows], ":", color=color)
    left.axhline(1.0, color="k", lw=1, ls="--", label="target alone")
    right.axhline(1.0, color="k", lw=1, ls="--", label="target alone")
    left.set_ylabel("target passes per token")
    right.set_ylabel("speed-up over the target alone (×)")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["n_draft"] for r in spec["rows"]}), [str(k) for k in
                      sorted({r["n_draft"] for r in spec["rows"]})])
        ax.set_xlabel("draft tokens per round (n_draft)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    left.set_title("hardware-independent (dotted: expected)", fontsize=9)
    right.set_title("wall clock, one CPU thread (dotted: expected)", fontsize=9)
    fig.suptitle(title or "Speculative decoding of the book's GPT (greedy, test prompts)", fontsize=10)
    return fig


@validate_params(alpha=Fraction(), cost_ratio=Interval(float, 0, None), n_drafts=ListOf(PositiveInt()))
def spec_speedup_state(alpha: float, cost_ratio: float, n_drafts=tuple(range(1, 17))) -> dict:
    """Expected speed-up and tokens per round for each ``n_draft``, and the best ``n_draft``.

    Taught in chapter 21, "Decoding faster".
    """
    speedups = [expected_speedup(alpha, k, cost_ratio) for k in n_drafts]
    best = int(np.argmax(speedups))
    return {"alpha": alpha, "cost_ratio": cost_ratio, "n_drafts": list(n_drafts), "speedup": speedups,
            "tokens_per_round": [expected_tokens_per_round(alpha, k) for k in n_drafts],
            "best_n_draft": list(n_drafts)[best], "best_speedup": speedups[best]}


@validate_params(state=Dict(), title=Text(optional=True))
def spec_speedup_figure(state: dict, *, title: str | None = None):
    """The expected speed-up against ``n_draft`` of a :func:`spec_speedup_state`, its best point marked.

    Taught in chapter 21, "Decoding faster".
    """
    fig, ax = new_figure(3.2)
    ax.plot(state["n_drafts"], state["speedup"], "o-", color=COLORS["compute"], ms=4, label="expected speed-up")
    ax.plot([state["best_n_draft"]], [state["best_speedup"]], "*", color=COLORS["memory"], ms=14,
            label=f"best: n_draft = {state['best_n_draft']}, {state['best_speedup']:.2f}×")
    ax.axhline(1.0, color="k", lw=1, ls="--", label="target alone")
    ax.set_xlabel("draft tokens per round (n_draft)")
    ax.set_ylabel("expected speed-up (×)")
    ax.set_ylim(0, max(2.0, 1.1 * max(state["speedup"])))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"α = {state['alpha']:.2f}, c = {state['cost_ratio']:.2f}: "
                          "(1 − α^(k+1)) / ((1 − α)(k·c + 1))")
    return fig


@validate_params(alpha=Fraction(), cost_ratio=Interval(float, 0, 1))
def spec_speedup_widget(alpha: float = 0.6, cost_ratio: float = 0.1):
    """Two sliders (acceptance α, cost ratio c) redrawing :func:`spec_speedup_figure`.

    Taught in chapter 21, "Decoding faster".
    """
    a = widgets.FloatSlider(value=alpha, min=0.0, max=0.99, step=0.01, description="α", continuous_update=False)
    c = widgets.FloatSlider(value=cost_ratio, min=0.0, max=1.0, step=0.01, description="c", continuous_update=False)
    image = widgets.Image(format="png")

    def redraw(_=None):
        image.value = figure_png(spec_speedup_figure(spec_speedup_state(a.value, c.value)), dpi=80)

    a.observe(redraw, names="value")
    c.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([a, c]), image])


__all__ = ["speculative_trace", "speedup_vs_n_draft", "spec_speedup_state", "spec_speedup_figure", "spec_speedup_widget"]
