"""Figures of chapters 14 (hardware for training) and 16 (appendix: measured on a GPU).

Each function draws numbers from :mod:`effdl.hardware.specs`,
:mod:`effdl.hardware.trends` or :mod:`effdl.hardware.gpu_bench` and returns
the Figure; none measures or computes a model itself. Each figure is closed
before it is returned, so a cell ending with the call displays it once (by
its repr) rather than twice (repr and the inline backend).
"""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import FuncFormatter

from .roofline import draw_roofline
from .style import COLORS, closed, grouped_bars, new_figure
from ..validation import Dict, Instance, Interval, ListOf, Records, Text, Unchecked, validate_params


TREND_COLORS = {"transistors": "#E69F00", "single_thread": "#0072B2", "frequency": "#009E73",
                "power": "#D55E00", "cores": "#000000"}
TREND_MARKERS = {"transistors": "D", "single_thread": "s", "frequency": "o", "power": "v", "cores": "^"}


@validate_params(rows=Records(), measured_tflops=Interval(float, 0, None, closed='neither', optional=True), measured_label=Text())
def chip_generations(rows: list[dict], *, measured_tflops: float | None = None, measured_label: str = ""):
    """Peak TFLOPS (fp32 and the best 16-bit rate) and memory bandwidth by release year, log axes.

    ``rows``: :func:`effdl.hardware.specs.training_chip_table`. ``measured_tflops``
    draws a dashed line at a throughput measured on this machine.

    Taught in chapter 14, "Hardware for training".
    """
    fig, (left, right) = new_figure(3.8, 2, width_ratios=[3, 2])
    for r in rows:
        offset = {"KNL": -0.12, "Cloud TPU v2": 0.2}.get(r["name"], 0.0)   # same-year chips side by side
        x = r["year"] + offset
        if r["fp32_tflops"] is not None:
            left.plot(x, r["fp32_tflops"], "o", color=COLORS["compute"], ms=7, mec="k", mew=0.5)
            left.annotate(r["name"], (x, r["fp32_tflops"]), textcoords="offset points", xytext=(6, -10), fontsize=8)
        if r["low_precision_tflops"] is not None:
            left.plot(x, r["low_precision_tflops"], "s", color=COLORS["memory"], ms=7, mec="k", mew=0.5)
            if r["fp32_tflops"] is not None:
                left.plot([x, x], [r["fp32_tflops"], r["low_precision_tflops"]], color="0.6", lw=0.8, zorder=0)
            left.annotate(f"{r['name']} ({r['low_precision']})", (x, r["low_precision_tflops"]),
                          textcoords="offset points", xytext=(-6, 6), fontsize=8, ha="right")
        if r["bandwidth_gbs"] is not None:
            right.plot(x, r["bandwidth_gbs"], "o", color=COLORS["exponent"], ms=7, mec="k", mew=0.5)
            right.annotate(r["name"], (x, r["bandwidth_gbs"]), textcoords="offset points", xytext=(6, -3), fontsize=8)
    left.plot([], [], "o", color=COLORS["compute"], mec="k", label="fp32 peak")
    left.plot([], [], "s", color=COLORS["memory"], mec="k", label="16-bit peak (V100: Tensor Cores)")
    if measured_tflops is not None:
        left.axhline(measured_tflops, color="k", ls="--", lw=1)
        left.text(2013.0, measured_tflops * 1.25, measured_label, fontsize=8)
    left.set_yscale("log")
    left.set_ylim(3, 600)
    right.set_yscale("log")
    years = [r["year"] for r in rows]
    for ax in (left, right):
        ax.set_xlim(min(years) - 0.6, max(years) + 0.8)
        ax.set_xlabel("year of release")
        ax.grid(True, which="both", alpha=0.3)
    left.set_ylabel("peak (TFLOPS, multiply-add = 2)")
    left.set_title("Compute: the Tensor Core jump at V100", fontsize=10)
    left.legend(fontsize=8, loc="upper left")
    right.set_ylabel("memory bandwidth (GB/s)")
    right.set_title("Memory bandwidth", fontsize=10)
    right.set_ylim(100, 2000)
    return closed(fig)


@validate_params(trends=Dict(), split_year=Interval(float, 1900, 2100), source=Text())
def moore_trends(trends: dict, *, split_year: float = 2005.0, source: str = ""):
    """The five microprocessor trends against the year on a log axis, with a line at ``split_year``.

    ``trends``: :func:`effdl.hardware.trends.load_trends`.

    Taught in chapter 14, "Hardware for training".
    """
    fig, ax = new_figure(4.2)
    for name, s in trends.items():
        ax.plot(s.years, s.values, TREND_MARKERS[name], ms=4, color=TREND_COLORS[name], label=s.label,
                alpha=0.8, mec="none")
    ax.axvline(split_year, color="0.4", ls="--", lw=1)
    ax.text(split_year + 0.4, 0.3, f"{split_year:.0f}", fontsize=8, color="0.3")
    ax.set_yscale("log")
    ax.set_ylim(0.2, 2e8)
    ax.set_xlabel("year")
    ax.set_ylabel("value (unit in the legend)")
    ax.set_title("50 years of microprocessors: transistors keep doubling, frequency and power stop", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if source:
        fig.supxlabel(source, fontsize=6, color="0.35")
    return closed(fig)


@validate_params(step_ms=Dict(), title=Text())
def step_times(step_ms: dict[str, dict[str, float]], *, title: str):
    """Milliseconds per training step per precision mode, one bar group per mode, one bar per device.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    modes = list(dict.fromkeys(m for v in step_ms.values() for m in v))
    values = {m: {dev: step_ms[dev].get(m, np.nan) for dev in step_ms} for m in modes}
    fig = grouped_bars(values, ylabel="time per training step (ms)", title=title)
    return closed(fig)


@validate_params(peaks=Dict(), measured=Dict(), title=Text(), unit=Text())
def measured_against_peaks(peaks: dict[str, float], measured: dict[str, float], *, title: str,
                           unit: str = "TFLOPS"):
    """Horizontal bars on a log axis: cited peaks (grey-blue) and rates measured here (orange), one per row.

    ``peaks`` and ``measured`` map a label to a rate in ``unit``.

    Taught in chapter 14, "Hardware for training".
    """
    labels = list(peaks) + list(measured)
    values = list(peaks.values()) + list(measured.values())
    colors = [COLORS["compute"]] * len(peaks) + [COLORS["memory"]] * len(measured)
    fig, ax = new_figure(0.9 + 0.32 * len(labels))
    y = np.arange(len(labels))[::-1]
    ax.barh(y, values, color=colors)
    for yi, v in zip(y, values):
        ax.text(v * 1.15, yi, f"{v:.3g}", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 3, max(values) * 6)
    ax.set_xlabel(f"{unit} (log scale; multiply-add = 2)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", which="major", alpha=0.3)
    return closed(fig)


@validate_params(tflops=Dict(), title=Text())
def format_throughput(tflops: dict[str, dict[str, float]], *, title: str):
    """Matmul throughput per number format (one bar group per format, one bar per device), log axis.

    ``tflops``: device label → {format: TFLOP/s (or TOPS for int8)}.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    formats = list(dict.fromkeys(f for v in tflops.values() for f in v))
    values = {f: {dev: tflops[dev].get(f, np.nan) for dev in tflops} for f in formats}
    fig = grouped_bars(values, ylabel="TFLOP/s (int8: TOPS), log scale", title=title, log=True)
    ax = fig.axes[0]
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(
        lambda v, _: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
    return closed(fig)


@validate_params(roof=Unchecked('a roofline of effdl.hardware.roofline'), points=ListOf(Instance(tuple, 'a (label, intensity) tuple'), nonempty=False), title=Text())
def matmul_roofline(roof, points: list[tuple[str, float]], *, title: str):
    """A measured roofline (``effdl.hardware.roofline.Roofline``, DRAM convention) with matmuls placed on it.

    ``points``: (label, intensity in FLOP per DRAM byte); each is drawn at the
    roofline's attainable rate for its intensity.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    fig, ax = new_figure(3.8)
    draw_roofline(ax, roof, x_range=(0.1, 1e5), scale=1e12, color=COLORS["compute"],
                  label=f"{roof.name}: {roof.peak / 1e12:.0f} TFLOP/s, {roof.bandwidth / 1e12:.2f} TB/s")
    markers = "osD^v"
    for i, (label, intensity) in enumerate(points):
        y = roof.attainable(intensity) / 1e12
        ax.plot(intensity, y, markers[i % len(markers)], ms=8, mec="k", mew=0.5,
                color=COLORS["memory"] if intensity < roof.ridge else COLORS["exponent"],
                label=f"{label}: {intensity:,.0f} FLOP/byte → at most {y:,.3g} TFLOP/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (FLOP per DRAM byte)")
    ax.set_ylabel("attainable (TFLOP/s)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return closed(fig)
