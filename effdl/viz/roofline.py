"""Figures of chapter 9 (the roofline and the TPU): rooflines on log and linear axes, workloads
placed on them, batch size against latency and throughput, this machine's measured roofline,
and the systolic array's utilisation per layer. The model is Williams, Waterman and Patterson's
roofline (CACM 2009); the chips and workloads are Jouppi et al.'s (ISCA 2017).

Each function draws results computed by ``effdl.hardware.roofline`` / ``systolic`` and
returns the Figure; none recomputes a model.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .plots import COLORS, WIDTH, readable

# One colour per chip and per TPU app, shared by every figure of the chapter.
CHIP_COLORS = {"TPU": "#0072B2", "K80": "#D55E00", "Haswell": "#009E73", "P40": "#CC79A7",
               "P100": "#E69F00", "V100": "#56B4E9"}
APP_MARKERS = {"MLP0": "o", "MLP1": "s", "LSTM0": "^", "LSTM1": "v", "CNN0": "D", "CNN1": "P"}
APP_COLORS = {"MLP0": "#0072B2", "MLP1": "#56B4E9", "LSTM0": "#D55E00", "LSTM1": "#E69F00",
              "CNN0": "#009E73", "CNN1": "#CC79A7"}


def _color(name: str, i: int = 0) -> str:
    return CHIP_COLORS.get(name, plt.rcParams["axes.prop_cycle"].by_key()["color"][i % 10])


def draw_roofline(ax, roof, *, x_range=(0.1, 1e5), scale: float = 1e12, color=None, label=None,
                  log: bool = True, ridge_label: bool = True):
    """Draw one roofline (``effdl.hardware.roofline.Roofline``) on ``ax``; y in ops/s ÷ ``scale``."""
    lo, hi = x_range
    x = np.geomspace(lo, hi, 400) if log else np.linspace(max(lo, hi * 1e-6), hi, 400)  # intensity > 0
    x = np.union1d(x, [roof.ridge]) if x_range[0] < roof.ridge < x_range[1] else x
    color = color or _color(roof.name)
    ax.plot(x, roof.attainable(x) / scale, color=color, lw=2, label=label or roof.name)
    if ridge_label and x_range[0] < roof.ridge < x_range[1]:
        ax.plot([roof.ridge], [roof.peak / scale], marker="|", ms=12, color=color)
        ax.annotate(f"ridge {readable(roof.ridge)}", (roof.ridge, roof.peak / scale), textcoords="offset points",
                    xytext=(4, 4), fontsize=7, color=color)


def apps_on_rooflines(roofs, placements: list[dict], *, log: bool = True, title: str | None = None,
                      x_range=(1, 1e5), ax=None):
    """The TPU paper's six apps on one or more rooflines (weight convention).

    ``roofs``: Roofline objects; ``placements``: rows of
    ``effdl.hardware.roofline.place_apps`` (``app``, ``intensity``,
    ``attainable_tops`` per chip). Each app is marked on every roof at its
    attainable performance. Log-log or linear axes.
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


def latency_throughput(sweep: dict, *, table4: list[dict] | None = None, limit_ms: float | None = None,
                       current: int | None = None, ax=None, title: str | None = None):
    """Batch time against throughput as the batch grows, one curve per chip (``roofline.batch_sweep``).

    ``table4``: rows of ``roofline.table4_comparison`` drawn as measured
    points; ``limit_ms``: a horizontal latency limit; ``current``: a batch
    size to mark on each curve.
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


def batch_view(state: dict):
    """The batch-size widget's picture: the six apps at one batch on the TPU's roofline (left),
    and the MLP0 latency/throughput trade-off with Table 4's measurements (right).

    ``state``: ``effdl.viz.hardware_widgets.batch_size_state``.
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


def machine_roofline(measured, *, ax=None, title: str | None = None):
    """This machine's measured roofline (DRAM convention) with its kernels placed from their times.

    ``measured``: ``effdl.hardware.roofline.MachineRoofline``. Each kernel is
    drawn at its achieved GFLOP/s and its intensity; the gap to the roof above
    it is how far it falls short of the model.
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


def systolic_layers(networks: dict[str, dict], *, title: str):
    """Utilisation of the array per layer, one panel per network (``systolic.estimate_gemms`` results)."""
    fig, axes = plt.subplots(1, len(networks), figsize=(WIDTH, 3.4), constrained_layout=True,
                             gridspec_kw={"width_ratios": [len(v["layers"]) for v in networks.values()]})
    axes = np.atleast_1d(axes)
    for ax, (name, est) in zip(axes, networks.items()):
        rows = est["layers"]
        x = np.arange(len(rows))
        ax.bar(x, [100 * r["mapping_efficiency"] for r in rows], color=COLORS["other"], alpha=0.5,
               label="mapping efficiency")
        ax.bar(x, [100 * r["utilization"] for r in rows], width=0.5, color=COLORS["compute"], label="utilisation")
        ax.set_xticks(x, [r["name"] for r in rows], rotation=90, fontsize=7)
        ax.set_ylim(0, 105)
        ax.set_title(f"{name}: {100 * est['utilization']:.0f} % over the network", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("% of the array's PEs")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title)
    return fig


def gpu_panel_placeholder(ax, text: str):
    """An empty panel with a message (e.g. no CUDA device), so a figure keeps its number of axes."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
