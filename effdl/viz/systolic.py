"""Chapter 9's systolic-array views: per-layer utilisation, the array cycle by cycle, the dataflow widget,
and cycles and utilisation against the array's size.

Everything drawn is read from results of ``effdl.hardware.systolic``
(:class:`~effdl.hardware.systolic.SystolicResult`,
:class:`~effdl.hardware.systolic.NetworkResult`); no view re-runs the model.

- :func:`systolic_layers` — utilisation and mapping efficiency per layer of
  whole networks;
- :func:`systolic_animation` — one frame per cycle of the step simulator's
  trace, for any of the three dataflows (ws, os, is) on a small array;
- the dataflow widget: :func:`dataflow_state` (pure: the three dataflows on
  one array and GEMM, from the closed form) → :func:`dataflow_figure` (its
  static rendering) → :func:`dataflow_widget` (controls bound to them);
- :func:`array_size_figure` — a network's cycles and utilisation on square
  arrays of growing size, one line per dataflow
  (``systolic.sweep_array_sizes``).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.patches import Rectangle

from ..hardware import systolic as sy
from .style import COLORS, WIDTH, figure_png, readable
from ..validation import Dict, Interval, Options, PositiveInt, Text, Unchecked, validate_params

DATAFLOW_COLORS = {"ws": COLORS["compute"], "os": COLORS["memory"], "is": COLORS["exponent"]}
DATAFLOW_NAMES = {"ws": "weight-stationary", "os": "output-stationary", "is": "input-stationary"}
# per dataflow: labels of the stationary, horizontal and vertical registers, the queue and the tile
_LABELS = {"ws": ("w", "a", "Σ", "inputs x (skewed)", "weights W", "weights"),
           "is": ("x", "w", "Σ", "weights W (skewed)", "inputs Xᵀ", "inputs"),
           "os": ("Σ", "x", "w", "inputs x (skewed)", "outputs Y", "")}


@validate_params(networks=Dict(), title=Text())
def systolic_layers(networks: dict, *, title: str):
    """Utilisation of the array per layer, one panel per network (``systolic.estimate_network`` results).

    Taught in chapter 09, "The roofline and the TPU".
    """
    fig, axes = plt.subplots(1, len(networks), figsize=(WIDTH, 3.4), constrained_layout=True,
                             width_ratios=[len(v.layers) for v in networks.values()])
    axes = np.atleast_1d(axes)
    for ax, (name, net) in zip(axes, networks.items()):
        rows = net.layers
        x = np.arange(len(rows))
        ax.bar(x, [100 * r.mapping_efficiency for r in rows], color=COLORS["other"], alpha=0.5,
               label="mapping efficiency")
        ax.bar(x, [100 * r.utilization for r in rows], width=0.5, color=COLORS["compute"], label="utilisation")
        ax.set_xticks(x, [r.gemm.name for r in rows], rotation=90, fontsize=7)
        ax.set_ylim(0, 105)
        ax.set_title(f"{name}: {100 * net.utilization:.0f} % over the network", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("% of the array's PEs")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title)
    return fig


@validate_params(result=Unchecked('a step-simulator result of effdl.hardware.systolic'), dpi=Interval(int, 10, 600), interval=PositiveInt(), queue=PositiveInt())
def systolic_animation(result, *, dpi: int = 72, interval: int = 700, queue: int = 3):
    """A systolic array computing ``result``'s GEMM, one frame per cycle.

    Parameters
    ----------
    result : effdl.hardware.systolic.SystolicResult
        From ``simulate(..., record_trace=True)`` on a small array (≤ 6×6),
        any dataflow. Everything drawn is read from it: the trace's
        registers, what entered each row (``trace.feed``) and what left the array.
    dpi, interval : int
        Frame resolution and milliseconds per frame.
    queue : int
        How many waiting inputs per row to draw.

    Each PE shows its stationary register (ws: weight w, is: input x, os:
    accumulator Σ), the value passing right (ws: activation a, is: weight w,
    os: input x) and the value moving down (ws, is: partial sum Σ; os:
    weight w); blue PEs do a useful multiply-add this cycle. The values
    entering from the left wait in a staircase (the skew): those the trace
    shows entering each row in the next ``queue`` cycles of the fold.
    Results collect in Y on the right.

    Taught in chapter 09, "The roofline and the TPU".
    """
    trace = result.trace
    if trace is None:
        raise ValueError("result must carry a trace: simulate(..., record_trace=True); got trace=None.")
    cfg = result.config
    R, C = cfg.rows, cfg.cols
    if R > 6 or C > 6:
        raise ValueError(f"result must come from an array of at most 6×6 to be drawn; got {R}×{C}.")
    M, N = result.gemm.M, result.gemm.N
    folds = result.folds
    stay_l, h_l, v_l, queue_l, tile_l, load_l = _LABELS[cfg.dataflow]
    n_k = 1 if cfg.dataflow == "os" else -(-result.gemm.K // R)      # contributions to each Y entry
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
        phase = trace.phase[t]
        loading = phase == "load"
        for i in range(R):
            for j in range(C):
                mac = trace.mac[t, i, j]
                holds = trace.h_tag[t, i, j] >= 0
                face = "#BFE1F6" if mac else ("#EEEEEE" if holds else "white")
                ax.add_patch(Rectangle((j, -i - 1), 0.94, 0.94, fc=face, ec="k", lw=0.8))
                s = trace.shadow[t, i, j] if loading else trace.stay[t, i, j]
                ax.text(j + 0.47, -i - 0.2, f"{stay_l}={fmt(s)}", ha="center", va="center", fontsize=8,
                        color=COLORS["memory"] if loading else "k")
                if holds:
                    ax.text(j + 0.47, -i - 0.47, f"{h_l}={fmt(trace.h[t, i, j])}", ha="center", va="center",
                            fontsize=8)
                if trace.v_tag[t, i, j] >= 0:
                    ax.text(j + 0.47, -i - 0.74, f"{v_l}={fmt(trace.v[t, i, j])}", ha="center", va="center",
                            fontsize=8, color=COLORS["compute"])
        # the skewed queue: what the trace shows entering each row in the next cycles of this fold
        if not loading:
            for wait in range(1, queue + 1):
                later = t + wait
                if later >= trace.n_cycles or trace.fold[later] != f or trace.phase[later] != "compute":
                    break
                for i in np.flatnonzero(trace.feed_tag[later] >= 0):
                    ax.add_patch(Rectangle((-wait, -i - 0.85), 0.85, 0.6, fc="#FFF3D6", ec=COLORS["integer"]))
                    ax.text(-wait + 0.42, -i - 0.55, fmt(trace.feed[later, i].item()), ha="center", va="center",
                            fontsize=8)
        ax.text(-queue / 2 - 0.5, 0.35, queue_l, ha="center", fontsize=8)
        r0, r1, c0, c1 = (int(a[f]) for a in (folds.r0, folds.r1, folds.c0, folds.c1))
        tile = f"W[{r0}:{r1}, {c0}:{c1}]" if cfg.dataflow == "ws" else (
            f"X[{c0}:{c1}, {r0}:{r1}]ᵀ" if cfg.dataflow == "is" else f"Y[{r0}:{r1}, {c0}:{c1}]")
        ax.text(C / 2, 0.35, f"{R}×{C} array, {tile_l.split()[0]} {tile}", ha="center", fontsize=8)
        # Y accumulators, filled by what has left the array so far
        y = np.zeros((M, N), dtype=float)
        done = np.zeros((M, N), dtype=int)
        for cyc, m, n, v in trace.outputs:
            if cyc > t:
                break
            y[m, n] += v
            done[m, n] += 1
        ax.text(y_left + N / 2, 0.35, "accumulators Y = x @ W", ha="center", fontsize=8)
        for m in range(M):
            for n in range(N):
                full = done[m, n] == n_k
                ax.add_patch(Rectangle((y_left + n, -m - 1), 0.94, 0.94, lw=0.6, ec="k",
                                       fc=COLORS["exponent"] if full else ("#D8F0E4" if done[m, n] else "white")))
                if done[m, n]:
                    ax.text(y_left + n + 0.47, -m - 0.53, fmt(y[m, n]), ha="center", va="center", fontsize=8)
        what = (f"loading {load_l} (array stalled)" if loading else
                f"{int(trace.mac[t].sum())} useful multiply-adds this cycle")
        ax.set_title(f"cycle {t}: fold {f + 1} of {len(folds)}, {what}", fontsize=10)
        return []

    anim = FuncAnimation(fig, draw, frames=trace.n_cycles, interval=interval, blit=False)
    plt.close(fig)          # shown once, as the player: an open figure would also show as a static frame
    return anim


# ---------------------------------------------------------------- the dataflow widget
@validate_params(dataflow=Options(('ws', 'os', 'is')), rows=PositiveInt(), cols=PositiveInt(), M=PositiveInt(), K=PositiveInt(), N=PositiveInt(), timing=Options(('tpu', 'scalesim')))
def dataflow_state(*, dataflow: str = "ws", rows: int = 32, cols: int = 32, M: int = 256, K: int = 256,
                   N: int = 256, timing: str = "tpu") -> dict:
    """What the dataflow widget shows: the three dataflows on one array and GEMM (closed form).

    Returns ``{"dataflow", "timing", "gemm", "results": {dataflow: SystolicResult}}``.

    Taught in chapter 09, "The roofline and the TPU".
    """
    gemm = sy.Gemm(name="gemm", M=M, K=K, N=N)
    results = {df: sy.estimate(sy.SystolicConfig(rows=rows, cols=cols, dataflow=df, timing=timing), gemm)
               for df in sy.DATAFLOWS}
    if dataflow not in results:
        raise ValueError(f"dataflow must be one of {list(sy.DATAFLOWS)}; got {dataflow!r}.")
    return {"dataflow": dataflow, "timing": timing, "gemm": gemm, "results": results}


@validate_params(state=Dict())
def dataflow_figure(state: dict):
    """Cycles and utilisation (left) and SRAM traffic (right) of the three dataflows; the chosen one bold.

    Taught in chapter 09, "The roofline and the TPU".
    """
    res, chosen, g = state["results"], state["dataflow"], state["gemm"]
    cfg = res[chosen].config
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.2), constrained_layout=True)
    dfs = list(sy.DATAFLOWS)
    x = np.arange(len(dfs))
    bars = left.bar(x, [res[d].total_cycles for d in dfs], color=[DATAFLOW_COLORS[d] for d in dfs])
    for bar, d in zip(bars, dfs):
        bar.set_alpha(1.0 if d == chosen else 0.35)
        left.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{100 * res[d].utilization:.0f} %",
                  ha="center", va="bottom", fontsize=8)
    left.set_xticks(x, [f"{d}\n({res[d].n_folds:,} folds)" for d in dfs], fontsize=8)
    left.set_ylabel("cycles (labels: utilisation)")
    left.set_ylim(0, 1.18 * max(res[d].total_cycles for d in dfs))
    left.set_title("cycles", fontsize=9)
    kinds = [("ifmap reads", lambda t: t.sram_ifmap_reads), ("filter reads", lambda t: t.sram_filter_reads),
             ("ofmap writes", lambda t: t.sram_ofmap_writes)]
    w = 0.8 / len(kinds)
    for i, ((label, get), color) in enumerate(zip(kinds, (COLORS["compute"], COLORS["memory"], COLORS["exponent"]))):
        right.bar(x + (i - 1) * w, [get(res[d].traffic) for d in dfs], width=w, color=color, label=label)
    right.set_xticks(x, dfs)
    right.set_ylabel("SRAM words")
    right.set_title("SRAM traffic", fontsize=9)
    right.legend(fontsize=7)
    r = res[chosen]
    fig.suptitle(f"{cfg.rows}×{cfg.cols} array, (M={g.M}, K={g.K}, N={g.N}), {state['timing']} timing — "
                 f"{chosen}: {sy.STATIONARY[chosen]} stay put, {readable(r.total_cycles)} cycles", fontsize=9)
    return fig


@validate_params(dataflow=Options(('ws', 'os', 'is')), rows=PositiveInt(), cols=PositiveInt(), M=PositiveInt(), K=PositiveInt(), N=PositiveInt(), timing=Options(('tpu', 'scalesim')))
def dataflow_widget(*, dataflow: str = "ws", rows: int = 32, cols: int = 32, M: int = 256, K: int = 256,
                    N: int = 256, timing: str = "tpu"):
    """Controls for dataflow, timing, array size and GEMM shape, bound to :func:`dataflow_state`.

    Taught in chapter 09, "The roofline and the TPU".
    """
    dataflow_state(dataflow=dataflow, rows=rows, cols=cols, M=M, K=K, N=N, timing=timing)   # validate first
    sizes = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 9216, M, K, N})
    controls = {
        "dataflow": widgets.ToggleButtons(options=list(sy.DATAFLOWS), value=dataflow, description="dataflow"),
        "timing": widgets.ToggleButtons(options=list(sy.TIMINGS), value=timing, description="timing"),
        "rows": widgets.SelectionSlider(options=[4, 8, 16, 32, 64, 128, 256], value=rows, description="rows"),
        "cols": widgets.SelectionSlider(options=[4, 8, 16, 32, 64, 128, 256], value=cols, description="cols"),
        "M": widgets.SelectionSlider(options=sizes, value=M, description="M"),
        "K": widgets.SelectionSlider(options=sizes, value=K, description="K"),
        "N": widgets.SelectionSlider(options=sizes, value=N, description="N"),
    }
    for c in controls.values():
        if isinstance(c, widgets.SelectionSlider):
            c.continuous_update = False
    image = widgets.Image(format="png")

    def redraw(_=None):
        state = dataflow_state(**{k: c.value for k, c in controls.items()})
        image.value = figure_png(dataflow_figure(state), dpi=80)

    for c in controls.values():
        c.observe(redraw, names="value")
    redraw()
    return widgets.VBox([*controls.values(), image])


# ---------------------------------------------------------------- array size
@validate_params(sweep=Dict(), title=Text())
def array_size_figure(sweep: dict, *, title: str):
    """A network's cycles (left, log-log) and utilisation (right) against the array's side, one line per
    dataflow (``systolic.sweep_array_sizes`` results).

    Taught in chapter 09, "The roofline and the TPU".
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.2), constrained_layout=True)
    for df, nets in sweep.items():
        sizes = [n.config.rows for n in nets]
        style = dict(color=DATAFLOW_COLORS[df], marker="o", ms=4, label=f"{df} ({DATAFLOW_NAMES[df]})")
        left.plot(sizes, [n.cycles for n in nets], **style)
        right.plot(sizes, [100 * n.utilization for n in nets], **style)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("array side (rows = columns)")
        ax.grid(True, alpha=0.3)
    left.set_yscale("log")
    left.set_ylabel("cycles for the network")
    right.set_ylabel("overall utilisation (%)")
    right.set_ylim(0, 105)
    right.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


__all__ = ["array_size_figure", "dataflow_figure", "dataflow_state", "dataflow_widget", "systolic_animation",
           "systolic_layers"]
