"""Animations of the book (matplotlib ``FuncAnimation``; chapters show ``HTML(anim.to_jshtml())``).

Chapter 9: the weight-stationary systolic array computing a small GEMM cycle by
cycle — drawn from the trace of ``effdl.hardware.systolic.simulate``, never by
re-running the model — and the TPU paper's six workloads climbing the
roofline as the batch size grows (Jouppi et al., ISCA 2017), from
``effdl.hardware.roofline``'s sweeps. Frames are few and small (dpi ~70) so a
chapter stays light.

Chapters display them with :func:`jshtml`, matplotlib's ``to_jshtml`` made
offline: its control buttons use Font Awesome icons from a CDN, which the
offline HTML book must not load, so the icons become Unicode symbols.
"""
from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.patches import Rectangle

from .plots import COLORS, WIDTH, readable
from .roofline import APP_COLORS, APP_MARKERS, CHIP_COLORS

# Font Awesome icon classes in matplotlib's jshtml controls → Unicode symbols.
_ICONS = {"fa fa-minus": "−", "fa fa-fast-backward": "⏮", "fa fa-step-backward": "⏴",
          "fa fa-play fa-flip-horizontal": "◀", "fa fa-pause": "⏸", "fa fa-play": "▶",
          "fa fa-step-forward": "⏵", "fa fa-fast-forward": "⏭", "fa fa-plus": "+"}


def jshtml(anim, *, default_mode: str = "loop"):
    """The animation as a self-contained, offline ``IPython.display.HTML`` (``anim.to_jshtml()``
    without the Font Awesome stylesheet from a CDN; the buttons show Unicode symbols)."""
    from IPython.display import HTML

    html = anim.to_jshtml(default_mode=default_mode)
    html = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", html)
    html = re.sub(r'<i class="(fa [^"]+)"></i>', lambda m: _ICONS.get(m.group(1), "·"), html)
    assert "://" not in re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", html), "jshtml still loads a URL"
    return HTML(html)


def _fold_starts(trace) -> dict[int, int]:
    """First compute cycle of each fold, read from the trace."""
    starts = {}
    for t, (phase, f) in enumerate(zip(trace.phase, trace.fold)):
        if phase == "compute" and int(f) not in starts:
            starts[int(f)] = t
    return starts


def systolic_animation(result, x, *, dpi: int = 72, interval: int = 700, queue: int = 3):
    """A systolic array computing ``result``'s GEMM, one frame per cycle.

    Parameters
    ----------
    result : effdl.hardware.systolic.SystolicResult
        From ``simulate(..., record_trace=True)`` on a small array (≤ 6×6).
    x : array (M, K)
        The input it was given (to draw the skewed queue waiting left of the array).
    dpi, interval : int
        Frame resolution and milliseconds per frame.
    queue : int
        How many waiting inputs per row to draw.

    Each PE shows its weight (w), the activation passing through (a, moving
    right) and its partial sum (Σ, moving down); blue PEs do a useful
    multiply-add this cycle. The inputs wait left of the array in a
    staircase (the skew); results collect in Y on the right.
    """
    trace = result.trace
    if trace is None:
        raise ValueError("result must carry a trace: simulate(..., record_trace=True); got trace=None.")
    R, C = result.config.rows, result.config.cols
    if R > 6 or C > 6:
        raise ValueError(f"result must come from an array of at most 6×6 to be drawn; got {R}×{C}.")
    x = np.asarray(x)
    M, N = result.m, result.n
    starts = _fold_starts(trace)
    folds = result.folds
    y_left = C + 1.0                                      # where the Y grid starts
    width = y_left + N + 0.5
    height = max(R, M) + 1.5
    fig, ax = plt.subplots(figsize=(WIDTH, WIDTH * height / (width + queue + 0.6) + 0.4), dpi=dpi)
    fig.subplots_adjust(0.005, 0.005, 0.995, 0.92)

    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) and not float(v).is_integer() else f"{int(v)}"

    def draw(t):
        ax.clear()
        ax.set_xlim(-queue - 0.6, width)
        ax.set_ylim(-max(R, M) - 0.2, 1.3)
        ax.set_aspect("equal")
        ax.axis("off")
        f = int(trace.fold[t])
        fold = folds[f]
        phase = trace.phase[t]
        loading = phase == "load"
        for i in range(R):
            for j in range(C):
                mac = trace.mac[t, i, j]
                holds = trace.act_tag[t, i, j] >= 0
                face = "#BFE1F6" if mac else ("#EEEEEE" if holds else "white")
                ax.add_patch(Rectangle((j, -i - 1), 0.94, 0.94, fc=face, ec="k", lw=0.8))
                w = trace.shadow[t, i, j] if loading else trace.weight[t, i, j]
                ax.text(j + 0.47, -i - 0.2, f"w={fmt(w)}", ha="center", va="center", fontsize=8,
                        color=COLORS["memory"] if loading else "k")
                if holds:
                    ax.text(j + 0.47, -i - 0.47, f"a={fmt(trace.act[t, i, j])}", ha="center", va="center",
                            fontsize=8)
                if trace.psum_tag[t, i, j] >= 0:
                    ax.text(j + 0.47, -i - 0.74, f"Σ={fmt(trace.psum[t, i, j])}", ha="center", va="center",
                            fontsize=8, color=COLORS["compute"])
        # the skewed queue: x[m, k0 + i] enters row i at fold cycle m + i
        if not loading:
            tf = t - starts[f]
            for i in range(fold.k1 - fold.k0):
                for m in range(M):
                    wait = m + i - tf                        # cycles until it enters
                    if 1 <= wait <= queue:
                        ax.add_patch(Rectangle((-wait, -i - 0.85), 0.85, 0.6, fc="#FFF3D6", ec=COLORS["integer"]))
                        ax.text(-wait + 0.42, -i - 0.55, fmt(x[m, fold.k0 + i]), ha="center", va="center",
                                fontsize=8)
        ax.text(-queue / 2 - 0.5, 0.35, "inputs x (skewed)", ha="center", fontsize=8)
        ax.text(C / 2, 0.35, f"{R}×{C} array, weights W[{fold.k0}:{fold.k1}, {fold.n0}:{fold.n1}]",
                ha="center", fontsize=8)
        # Y accumulators, filled by what has left the bottom of the array so far
        y = np.zeros((M, N), dtype=float)
        done = np.zeros((M, N), dtype=int)
        for cyc, m, n, v in trace.outputs:
            if cyc > t:
                break
            y[m, n] += v
            done[m, n] += 1
        n_k = -(-result.k // R)
        ax.text(y_left + N / 2, 0.35, "accumulators Y = x @ W", ha="center", fontsize=8)
        for m in range(M):
            for n in range(N):
                full = done[m, n] == n_k
                ax.add_patch(Rectangle((y_left + n, -m - 1), 0.94, 0.94, lw=0.6, ec="k",
                                       fc=COLORS["exponent"] if full else ("#D8F0E4" if done[m, n] else "white")))
                if done[m, n]:
                    ax.text(y_left + n + 0.47, -m - 0.53, fmt(y[m, n]), ha="center", va="center", fontsize=8)
        what = ("loading weights (array stalled)" if loading else
                f"{int(trace.mac[t].sum())} useful multiply-adds this cycle")
        ax.set_title(f"cycle {t}: fold {f + 1} of {len(folds)}, {what}", fontsize=10)
        return []

    return FuncAnimation(fig, draw, frames=trace.n_cycles, interval=interval, blit=False)


def batch_sweep_animation(apps_sweep: dict, latency_sweep: dict, *, table4: list[dict] | None = None,
                          limit_ms: float | None = None, dpi: int = 80, interval: int = 500):
    """The six workloads climbing the roofline as the batch grows, with MLP0's latency beside them.

    ``apps_sweep``: ``effdl.hardware.roofline.apps_sweep(batch_sizes, "TPU")``;
    ``latency_sweep``: ``roofline.batch_sweep("MLP0", chips, batch_sizes)`` on
    the same batch sizes; ``table4``: ``roofline.table4_comparison()`` rows.
    One frame per batch size.
    """
    sizes = np.asarray(apps_sweep["batch_sizes"])
    if not np.array_equal(sizes, np.asarray(latency_sweep["batch_sizes"])):
        raise ValueError("latency_sweep must use the same batch sizes as apps_sweep; "
                         f"got {latency_sweep['batch_sizes']!r}.")
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.3), dpi=dpi)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.15, top=0.9, wspace=0.32)
    x = np.geomspace(1, 1e7, 300)                         # CNNs at large batches sit far right
    peak, ridge = apps_sweep["peak_tops"], apps_sweep["ridge"]
    left.plot(x, apps_sweep["roofline"].attainable(x) / 1e12, color=CHIP_COLORS.get(apps_sweep["chip"], "k"), lw=2)
    left.axvline(ridge, color=COLORS["other"], ls=":", lw=1)
    left.text(ridge * 1.1, peak * 0.012, f"ridge {readable(ridge)}", fontsize=8, color=COLORS["other"])
    points = {}
    for name, d in apps_sweep["apps"].items():
        style = dict(marker=APP_MARKERS[name], color=APP_COLORS[name], ls="none")
        left.plot(d["deployed_intensity"], d["deployed_attainable_tops"], mfc="none", ms=7, **style)
        points[name], = left.plot([], [], mec="k", mew=0.5, ms=7, label=name, **style)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlim(1, 1e7)
    left.set_ylim(peak / 5e3, peak * 2)
    left.set_xlabel("ops per weight byte (multiply-add = 2 ops)", fontsize=8)
    left.set_ylabel(f"attainable on the {apps_sweep['chip']} (TOPS)", fontsize=8)
    left.legend(fontsize=6, ncol=2, loc="lower right")
    left.grid(True, alpha=0.3)
    title = left.set_title("", fontsize=9)

    trails, heads = {}, {}
    for chip, d in latency_sweep["chips"].items():
        color = CHIP_COLORS.get(chip, "k")
        right.plot(d["throughput_ips"], d["latency_ms"], color=color, lw=0.8, alpha=0.3)
        trails[chip], = right.plot([], [], color=color, lw=2, label=chip)
        heads[chip], = right.plot([], [], "o", color=color, mec="k", ms=6)
    for r in table4 or []:
        right.plot(r["ips"], r["p99_ms"], "*", ms=10, color=CHIP_COLORS.get(r["chip"], "k"), mec="k", mew=0.5)
    if limit_ms is not None:
        right.axhline(limit_ms, color=COLORS["other"], ls=":", lw=1)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("throughput (inferences/s)", fontsize=8)
    right.set_ylabel("batch latency (ms)", fontsize=8)
    right.set_title(f"{latency_sweep.get('app', '')}: bound (lines), Table 4 (stars)", fontsize=9)
    right.legend(fontsize=6, loc="upper left")
    right.grid(True, alpha=0.3)

    def draw(k):
        for name, d in apps_sweep["apps"].items():
            points[name].set_data([d["intensity"][k]], [d["attainable_tops"][k]])
        for chip, d in latency_sweep["chips"].items():
            trails[chip].set_data(d["throughput_ips"][:k + 1], d["latency_ms"][:k + 1])
            heads[chip].set_data([d["throughput_ips"][k]], [d["latency_ms"][k]])
        title.set_text(f"batch {sizes[k]}: filled = now, hollow = deployed")
        return []

    return FuncAnimation(fig, draw, frames=len(sizes), interval=interval, blit=False)
