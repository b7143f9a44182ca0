"""Figures of chapter 15 (Wrap-up): our numbers beside the papers'.

They draw the rows of :func:`effdl.summary.results_table` and compute nothing
themselves.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..summary import REPRODUCED
from .style import WIDTH
from ..validation import Records, validate_params

VERDICT_COLORS = {REPRODUCED: "#009E73", "not reproduced": "#D55E00"}


@validate_params(rows=Records())
def claims_overview(rows: list[dict]):
    """Top: ratios and speedups as ours ÷ paper (log axis). Bottom: accuracy changes, ours next to the paper's.

    A green marker is a claim whose criterion holds, an orange one a claim whose criterion fails. The grey
    band marks ±10 % and the dashed line a 0.5-point drop, the most common criteria; each row's own
    criterion is in the table.

    Taught in chapter 15, "Wrap-up: what reproduced".
    """
    ratios = [r for r in rows if r["unit"] == "×" and r["paper"]]
    points = [r for r in rows if "accuracy change" in r["what"] and r["paper"] is not None]
    fig, (left, right) = plt.subplots(2, 1, figsize=(WIDTH, 0.27 * (len(ratios) + len(points)) + 2.2),
                                      constrained_layout=True, height_ratios=[max(len(ratios), 1), max(len(points), 1)])

    y = np.arange(len(ratios))[::-1]
    for yi, r in zip(y, ratios):
        left.plot(r["ours"] / r["paper"], yi, "o", color=VERDICT_COLORS[r["verdict"]], ms=7)
    left.axvline(1.0, color="0.3", lw=1)
    left.axvspan(0.9, 1.1, color="0.9", zorder=0)
    left.set_xscale("log")
    left.set_xlim(0.5, 2.0)
    left.set_xticks([0.5, 0.9, 1.0, 1.1, 2.0], ["0.5", "0.9", "1", "1.1", "2"])
    left.set_xticks([], minor=True)
    left.set_yticks(y, [f"{r['chapter']} {r['what']}" for r in ratios], fontsize=7)
    left.set_xlabel("ours ÷ paper (ratio or speedup)")
    left.set_title("Compression ratios and speedups", fontsize=10)

    y = np.arange(len(points))[::-1]
    for yi, r in zip(y, points):
        right.plot(r["paper"], yi, "s", mfc="none", mec="0.4", ms=7, label="paper" if yi == y[0] else None)
        right.plot(r["ours"], yi, "o", color=VERDICT_COLORS[r["verdict"]], ms=7,
                   label="ours" if yi == y[0] else None)
    right.axvline(0.0, color="0.3", lw=1)
    right.axvline(-0.5, color="0.5", lw=1, ls="--")      # the usual criterion: a drop of at most 0.5 points
    if points:
        values = [v for r in points for v in (r["ours"], r["paper"])]
        right.set_xlim(min(min(values), -0.5) - 0.1, max(values) + 0.45)   # room for the legend on the right
    right.set_yticks(y, [f"{r['chapter']} {r['what']}" for r in points], fontsize=7)
    right.set_xlabel("accuracy change (percentage points)")
    right.set_title("Accuracy: change vs the uncompressed model", fontsize=10)
    if points:
        right.legend(fontsize=8, loc="lower right")
    return fig
