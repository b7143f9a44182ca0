"""Figures, animations and the batch-size widget of chapter 9 (the roofline and the TPU).

Static figures: rooflines on log and linear axes, workloads placed on them,
batch size against latency and throughput, and this machine's measured
roofline (the systolic array's views are in :mod:`effdl.viz.systolic`). The
model is Williams, Waterman and Patterson's roofline (CACM 2009); the chips
and workloads are Jouppi et al.'s (ISCA 2017).

Animation (matplotlib ``FuncAnimation``; chapters show
:func:`effdl.viz.style.jshtml`): the six workloads climbing the roofline as
the batch size grows, from ``effdl.hardware.roofline``'s sweeps. Frames
are few and small (dpi ~70) so a chapter stays light.

The batch-size widget: moving the batch size moves the six workloads
(Table 1) along the roofline — intensity grows with the batch — and moves
MLP0 along its latency/throughput curve, next to the measured
99th-percentile latencies of Table 4. It binds a slider to the pure
:func:`batch_size_state`; :func:`batch_size_figure` draws that state and is
also the widget's static rendering.

Each function draws results computed by ``effdl.hardware.roofline`` and
returns the Figure (or animation); none recomputes a model.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.patches import FancyBboxPatch

from .._validate import check_float, check_int
from ..hardware import roofline as rl
from ..hardware import specs
from .style import COLORS, WIDTH, figure_png, readable
from ..validation import (Bool, Dict, Instance, Interval, ListOf, PositiveInt, Records, Text, Unchecked, validate_params)

# One colour per chip and per TPU app, shared by every figure of the chapter.
CHIP_COLORS = {"TPU": "#0072B2", "K80": "#D55E00", "Haswell": "#009E73", "P40": "#CC79A7",
               "P100": "#E69F00", "V100": "#56B4E9"}
APP_MARKERS = {"MLP0": "o", "MLP1": "s", "LSTM0": "^", "LSTM1": "v", "CNN0": "D", "CNN1": "P"}
APP_COLORS = {"MLP0": "#0072B2", "MLP1": "#56B4E9", "LSTM0": "#D55E00", "LSTM1": "#E69F00",
              "CNN0": "#009E73", "CNN1": "#CC79A7"}


def _color(name: str, i: int = 0) -> str:
    return CHIP_COLORS.get(name, plt.rcParams["axes.prop_cycle"].by_key()["color"][i % 10])


@validate_params(ax=Instance(Axes, 'a matplotlib Axes'), roof=Instance(rl.Roofline, 'an effdl.hardware.roofline.Roofline'), x_range=Instance(tuple, 'a (low, high) tuple'), scale=Interval(float, 0, None, closed='neither'), color=Unchecked('any matplotlib colour'), label=Text(optional=True), log=Bool(), ridge_label=Bool())
def draw_roofline(ax, roof, *, x_range=(0.1, 1e5), scale: float = 1e12, color=None, label=None,
                  log: bool = True, ridge_label: bool = True):
    """Draw one roofline (``effdl.hardware.roofline.Roofline``) on ``ax``; y in ops/s ÷ ``scale``.

    Behind chapter 09, "The roofline and the TPU".
    """
    lo, hi = x_range
    x = np.geomspace(lo, hi, 400) if log else np.linspace(max(lo, hi * 1e-6), hi, 400)  # intensity > 0
    x = np.union1d(x, [roof.ridge]) if x_range[0] < roof.ridge < x_range[1] else x
    color = color or _color(roof.name)
    ax.plot(x, roof.attainable(x) / scale, color=color, lw=2, label=label or roof.name)
    if ridge_label and x_range[0] < roof.ridge < x_range[1]:
        ax.plot([roof.ridge], [roof.peak / scale], marker="|", ms=12, color=color)
        ax.annotate(f"ridge {readable(roof.ridge)}", (roof.ridge, roof.peak / scale), textcoords="offset points",
                    xytext=(4, 4), fontsize=7, color=color)


@validate_params(roofs=ListOf(Instance(rl.Roofline, 'an effdl.hardware.roofline.Roofline')), placements=Records(nonempty=False), log=Bool(), title=Text(optional=True), x_range=Instance(tuple, 'a (low, high) tuple'), ax=Instance(Axes, 'a matplotlib Axes', optional=True))
def apps_on_rooflines(roofs, placements: list[dict], *, log: bool = True, title: str | None = None,
                      x_range=(1, 1e5), ax=None):
    """The TPU paper's six apps on one or more rooflines (weight convention).

    ``roofs``: Roofline objects; ``placements``: rows of
    ``effdl.hardware.roofline.place_apps`` (``app``, ``intensity``,
    ``attainable_tops`` per chip). Each app is marked on every roof at its
    attainable performance. Log-log or linear axes.

    Taught in chapter 09, "The roofline and the TPU".
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(WIDTH, 4.0), constrained_layout=True)
    else:
        fig = ax.figure
    for i, roof in enumerate(roofs):
        draw_roofline(ax, roof, x_range=x_range, log=log, color=_color(roof.name, i),
                      label=f"{roof.name}: {readable(roof.peak_tops)} TOPS, {readable(roof.bandwidth_gbs)} GB/s")
    for row in placements:
        for i, roof in enumerate(roofs):
            ax.plot(row["intensity"], row["attainable_tops"][roof.name], ls="none",
                    marker=APP_MARKERS.get(row["app"], "o"), color=APP_COLORS.get(row["app"], "k"),
                    mec="k", mew=0.5, ms=7, label=row["app"] if i == 0 else None)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlim(*x_range)
    ax.set_xlabel("operational intensity (ops per weight byte, multiply-add = 2 ops)")
    ax.set_ylabel("attainable performance (TOPS)")
    ax.set_title(title or ("Rooflines, log-log" if log else "Rooflines, linear axes"))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right" if log else "center right")
    return fig


@validate_params(sweep=Dict(), table4=Records(nonempty=False, optional=True), limit_ms=Interval(float, 0, None, closed='neither', optional=True), current=PositiveInt(optional=True), ax=Instance(Axes, 'a matplotlib Axes', optional=True), title=Text(optional=True))
def latency_throughput(sweep: dict, *, table4: list[dict] | None = None, limit_ms: float | None = None,
                       current: int | None = None, ax=None, title: str | None = None):
    """Batch time against throughput as the batch grows, one curve per chip (``roofline.batch_sweep``).

    ``table4``: rows of ``roofline.table4_comparison`` drawn as measured
    points; ``limit_ms``: a horizontal latency limit; ``current``: a batch
    size to mark on each curve.

    Behind chapter 09, "The roofline and the TPU".
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(WIDTH, 3.8), constrained_layout=True)
    else:
        fig = ax.figure
    sizes = np.asarray(sweep["batch_sizes"])
    for i, (chip, d) in enumerate(sweep["chips"].items()):
        color = _color(chip, i)
        ax.plot(d["throughput_ips"], d["latency_ms"], color=color, lw=1.5, label=f"{chip}: roofline bound")
        if current is not None and current in sizes:
            j = int(np.flatnonzero(sizes == current)[0])
            ax.plot(d["throughput_ips"][j], d["latency_ms"][j], "o", color=color, ms=8, mec="k")
    for r in table4 or []:
        ax.plot(r["ips"], r["p99_ms"], "*", ms=13, color=_color(r["chip"]), mec="k", mew=0.5)
        ax.annotate(f"{r['label']} batch {r['batch_size']}", (r["ips"], r["p99_ms"]), textcoords="offset points",
                    xytext=(-10, -13) if r["label"] == "GPU" else (5, 3), fontsize=7)
    if table4:
        ax.plot([], [], "*", color="grey", mec="k", ms=10, label="measured, 99th percentile (Table 4)")
    if limit_ms is not None:
        ax.axhline(limit_ms, color=COLORS["other"], ls=":", label=f"{limit_ms:g} ms limit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("throughput (inferences per second, log)")
    ax.set_ylabel("latency of one batch (ms, log)")
    ax.set_title(title or f"{sweep.get('app', '')}: latency against throughput as the batch grows")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return fig


@validate_params(state=Dict())
def batch_size_figure(state: dict):
    """The batch-size widget's picture: the six apps at one batch on the TPU's roofline (left),
    and the MLP0 latency/throughput trade-off with Table 4's measurements (right).

    ``state``: :func:`batch_size_state`. Also the widget's static rendering.

    Taught in chapter 09, "The roofline and the TPU".
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH * 1.25, 4.2), constrained_layout=True)
    roofs = state["rooflines"]
    for i, roof in enumerate(roofs):
        draw_roofline(left, roof, x_range=(1, 1e5), color=_color(roof.name, i), ridge_label=roof.name == "TPU",
                      label=f"{roof.name} ({readable(roof.peak_tops)} TOPS)")
    tpu = state["chip"]
    for row, deployed in zip(state["apps"], state["deployed"]):
        style = dict(marker=APP_MARKERS[row["app"]], color=APP_COLORS[row["app"]], ls="none")
        left.plot(deployed["intensity"], deployed["attainable_tops"][tpu], mfc="none", ms=8, **style)
        left.plot(row["intensity"], row["attainable_tops"][tpu], mec="k", mew=0.5, ms=8, label=row["app"], **style)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlim(1, 1e5)
    left.set_xlabel("ops per weight byte (multiply-add = 2 ops)")
    left.set_ylabel(f"attainable on the {tpu} (TOPS)")
    left.set_title(f"batch {state['batch_size']}: filled = now, hollow = deployed batch", fontsize=9)
    left.grid(True, alpha=0.3)
    left.legend(fontsize=6, ncol=2, loc="lower right")
    latency_throughput(state["sweep"], table4=state["table4"], limit_ms=state["limit_ms"],
                       current=state["batch_size"], ax=right,
                       title=f"{state['app']} at batch {state['batch_size']}: "
                             + ", ".join(f"{c} {v['latency_ms']:.2g} ms" for c, v in state["current"].items()))
    right.title.set_fontsize(9)
    fig.suptitle("Batch size: intensity, attainable performance, latency and throughput")
    return fig


@validate_params(measured=Unchecked('a measured roofline of effdl.hardware.roofline'), ax=Instance(Axes, 'a matplotlib Axes', optional=True), title=Text(optional=True))
def machine_roofline(measured, *, ax=None, title: str | None = None):
    """This machine's measured roofline (DRAM convention) with its kernels placed from their times.

    ``measured``: ``effdl.hardware.roofline.MachineRoofline``. Each kernel is
    drawn at its achieved GFLOP/s and its intensity; the gap to the roof above
    it is how far it falls short of the model.

    Taught in chapter 09, "The roofline and the TPU".
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(WIDTH, 4.0), constrained_layout=True)
    else:
        fig = ax.figure
    roof = measured.roofline
    draw_roofline(ax, roof, x_range=(0.01, 1e4), scale=1e9, color=COLORS["compute"],
                  label=f"{measured.device}: {measured.peak_gflops:.0f} GFLOP/s matmul, "
                        f"{measured.bandwidth_gbs:.1f} GB/s streaming")
    markers = "osDv^P"
    for i, k in enumerate(measured.kernels):
        ax.plot(k.intensity, k.performance / 1e9, markers[i % len(markers)], ms=8, mec="k", mew=0.5,
                color=COLORS["memory"] if k.intensity < roof.ridge else COLORS["exponent"],
                label=f"{k.name}: {k.performance / 1e9:.3g} GFLOP/s "
                      f"({k.performance / roof.attainable(k.intensity):.0%} of the roof)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(0.01, 1e4)
    ax.set_xlabel("operational intensity (FLOP per DRAM byte)")
    ax.set_ylabel("performance (GFLOP/s)")
    ax.set_title(title or f"This machine's roofline, measured ({measured.threads} torch threads)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


@validate_params(ax=Instance(Axes, 'a matplotlib Axes'), text=Text())
def gpu_panel_placeholder(ax, text: str):
    """An empty panel with a message (e.g. no CUDA device), so a figure keeps its number of axes.

    Taught in chapter 09, "The roofline and the TPU".
    """
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------- animations
@validate_params(apps_sweep=Dict(), latency_sweep=Dict(), table4=Records(nonempty=False, optional=True), limit_ms=Interval(float, 0, None, closed='neither', optional=True), dpi=Interval(int, 10, 600), interval=PositiveInt())
def batch_sweep_animation(apps_sweep: dict, latency_sweep: dict, *, table4: list[dict] | None = None,
                          limit_ms: float | None = None, dpi: int = 80, interval: int = 500):
    """The six workloads climbing the roofline as the batch grows, with MLP0's latency beside them.

    ``apps_sweep``: ``effdl.hardware.roofline.apps_sweep(batch_sizes, "TPU")``;
    ``latency_sweep``: ``roofline.batch_sweep("MLP0", chips, batch_sizes)`` on
    the same batch sizes; ``table4``: ``roofline.table4_comparison()`` rows.
    One frame per batch size.

    Taught in chapter 09, "The roofline and the TPU".
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

    anim = FuncAnimation(fig, draw, frames=len(sizes), interval=interval, blit=False)
    plt.close(fig)          # shown once, as the player: an open figure would also show as a static frame
    return anim


# ---------------------------------------------------------------- the batch-size widget
BATCH_SIZES = tuple(int(b) for b in 2 ** np.arange(0, 13))       # 1 … 4096, the widget's stops


@validate_params(batch_size=Interval(int, 1, 1 << 20), app=Text(), chips=ListOf(Text()), limit_ms=Interval(float, 0, None, closed='neither'))
def batch_size_state(batch_size: int, *, app: str = "MLP0", chips=rl.PAPER_CHIPS,
                     limit_ms: float = rl.MLP0_LATENCY_LIMIT_MS) -> dict:
    """What the batch-size widget shows at ``batch_size``.

    Returns a dict with ``batch_size``, ``app``, ``chip`` (the roofline the
    apps are drawn on: the first of ``chips``), ``rooflines``, ``apps`` (every
    app at this batch, ``effdl.hardware.roofline.place_apps``), ``deployed`` (at Table 1's
    batches), ``sweep`` (``app`` over 1 … 4096 and this batch,
    ``effdl.hardware.roofline.batch_sweep``), ``current`` (per chip: ``latency_ms``,
    ``throughput_ips``, ``attainable_tops``, ``utilization`` = attainable ÷
    peak, ``bound``), ``table4`` and ``limit_ms``.

    Taught in chapter 09, "The roofline and the TPU".
    """
    b = check_int("batch_size", batch_size, min=1, max=1 << 20)
    limit_ms = check_float("limit_ms", limit_ms, min=0, min_open=True)
    a = rl.get_app(app)
    roofs = [rl.Roofline.from_chip(c) for c in chips]
    sizes = np.array(sorted(set(BATCH_SIZES) | {b}))
    sweep = rl.batch_sweep(a, chips, sizes)
    j = int(np.flatnonzero(sizes == b)[0])
    current = {}
    for roof in roofs:
        d = sweep["chips"][roof.name]
        current[roof.name] = {"latency_ms": float(d["latency_ms"][j]), "throughput_ips": float(d["throughput_ips"][j]),
                              "attainable_tops": float(d["attainable_tops"][j]),
                              "utilization": float(d["attainable_tops"][j] * 1e12 / roof.peak),
                              "bound": roof.bound(a.intensity(b))}
    return {"batch_size": b, "app": a.name, "chip": roofs[0].name, "rooflines": roofs,
            "apps": rl.place_apps(chips, b), "deployed": rl.place_apps(chips), "sweep": sweep,
            "current": current, "table4": rl.table4_comparison(), "limit_ms": limit_ms}


@validate_params(batch_size=Interval(int, 1, 1 << 20), app=Text(), chips=ListOf(Text()), limit_ms=Interval(float, 0, None, closed='neither'))
def batch_size_widget(batch_size: int = 16, *, app: str = "MLP0", chips=("TPU", "K80", "Haswell"),
                      limit_ms: float = 7.0):
    """A batch-size slider (1 … 4096, powers of two); the apps on the roofline and MLP0's latency.

    Taught in chapter 09, "The roofline and the TPU".
    """
    kwargs = dict(app=app, chips=chips, limit_ms=limit_ms)
    batch_size_state(batch_size, **kwargs)                 # validate before building controls
    options = sorted(set(BATCH_SIZES) | {batch_size})
    slider = widgets.SelectionSlider(options=options, value=batch_size, description="batch size",
                                     continuous_update=False)
    image = widgets.Image(format="png")

    def redraw(_=None):
        image.value = figure_png(batch_size_figure(batch_size_state(slider.value, **kwargs)), dpi=80)

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, image])


def _block(ax, x: float, y: float, w: float, h: float, text: str, color: str, *, dashed: bool = False):
    """A labelled box with its lower-left corner at (x, y), in the diagram's data units."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="black", alpha=0.9,
                                lw=1.0, ls="--" if dashed else "-"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], label: str = ""):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", lw=1.3, color="black"))
    if label:                      # beside a vertical arrow, above any other
        vertical = abs(end[0] - start[0]) < 1e-9
        x, y = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        ax.text(x + (0.1 if vertical else 0), y + (0 if vertical else 0.12), label,
                ha="left" if vertical else "center", va="center" if vertical else "bottom",
                fontsize=7, color="#444444")


@validate_params(title=Text(optional=True))
def tpu_block_diagram(*, title: str | None = None):
    """The first TPU's main blocks and its data paths, drawn from ``effdl.hardware.specs``.

    Weights come from the off-chip weight memory through the weight FIFO
    into the matrix unit; activations leave the unified buffer, cross the
    matrix unit, are summed in the accumulators, go through the activation
    and normalise/pool units, and return to the unified buffer. Sizes and
    rates are :func:`effdl.hardware.specs.get_chip` ("TPU") and
    :data:`effdl.hardware.specs.TPU_V1_BLOCKS` (after Jouppi et al., ISCA
    2017, Fig. 1).

    Taught in chapter 09, "The roofline and the TPU".
    """
    tpu, blocks = specs.get_chip("TPU"), specs.TPU_V1_BLOCKS
    side = blocks["matrix_side"]
    memory, compute, offchip = "#F6D3BF", "#BFD9EC", "#EEEEEE"
    fig, ax = plt.subplots(figsize=(WIDTH, 4.2), constrained_layout=True)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 6)
    ax.axis("off")
    # off chip (dashed): weight memory above, host below
    _block(ax, 6.0, 5.0, 3.8, 0.85, f"weight memory (off chip)\n{tpu.memory}, {tpu.bandwidth_gbs:g} GB/s",
           offchip, dashed=True)
    _block(ax, 0.1, 0.1, 3.0, 0.8, f"host (off chip)\n{blocks['host_interface']}", offchip, dashed=True)
    # on chip
    _block(ax, 6.0, 3.75, 3.8, 0.8, f"weight FIFO\n{blocks['weight_fifo_tiles']} tiles deep", memory)
    _block(ax, 0.1, 2.0, 2.5, 1.7, f"unified buffer\n{blocks['unified_buffer_mib']} MiB\n(activations)",
           memory)
    _block(ax, 3.2, 1.6, 5.0, 1.9, f"matrix multiply unit\n{side} × {side} = {tpu.macs:,} 8-bit MACs\n"
           f"{tpu.clock_mhz:g} MHz, {tpu.peak_tops():g} TOPS", compute)
    _block(ax, 8.5, 1.6, 1.4, 1.9, f"accumu-\nlators\n{blocks['accumulators_mib']} MiB", memory)
    _block(ax, 5.6, 0.1, 2.0, 0.8, "activation\n(ReLU, sigmoid …)", compute)
    _block(ax, 3.4, 0.1, 2.0, 0.8, "normalise /\npool", compute)
    _arrow(ax, (7.9, 5.0), (7.9, 4.55), "weights")
    _arrow(ax, (7.9, 3.75), (7.9, 3.5))
    _arrow(ax, (2.6, 2.85), (3.2, 2.85), "inputs")
    _arrow(ax, (8.2, 2.55), (8.5, 2.55))
    _arrow(ax, (9.2, 1.6), (7.6, 0.5), "sums")
    _arrow(ax, (5.6, 0.5), (5.4, 0.5))
    _arrow(ax, (3.4, 0.5), (1.35, 2.0), "outputs")
    _arrow(ax, (1.6, 0.9), (1.6, 2.0))
    ax.set_title(title or "The TPU's blocks (after Jouppi et al., ISCA 2017, Fig. 1); "
                          "blue computes, orange stores", fontsize=10)
    return fig

