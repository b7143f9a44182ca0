"""Figures of chapters 11 (Parallelization) and 12 (Mixed precision).

Each function draws results computed by :mod:`effdl.training.parallel` or
:mod:`effdl.training.mixed_precision` (or read from the precomputed record)
and never recomputes a model. One idea per figure, titled axes with units.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from ..numerics import FP16
from .plots import COLORS, WIDTH

RANK_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
MODE_COLORS = {"fp32": "#0072B2", "fp16_master": "#009E73", "fp16_pure": "#D55E00"}
MODE_LABELS = {"fp32": "fp32", "fp16_master": "fp16 + fp32 master weights", "fp16_pure": "pure fp16"}


def _figure(height: float = 3.4, ncols: int = 1, **kwargs):
    return plt.subplots(1, ncols, figsize=(WIDTH, height), constrained_layout=True, **kwargs)


# ------------------------------------------------------------------ chapter 11
def split_ownership(fc_out: int, conv_out: int, world_size: int, ranges):
    """Which process holds which outputs: FC rows and conv output maps, coloured by rank.

    ``ranges(n, world_size)`` is :func:`effdl.training.parallel.split_ranges`.
    """
    fig, axes = _figure(2.4, 2)
    for ax, n, what in ((axes[0], fc_out, "fc1 output activations (rows of W)"),
                        (axes[1], conv_out, "conv2 output feature maps (filters)")):
        for rank, (a, b) in enumerate(ranges(n, world_size)):
            ax.barh(0, b - a, left=a, color=RANK_COLORS[rank % 8], edgecolor="white")
            ax.text((a + b) / 2, 0, f"process {rank}\n{a}…{b - 1}", ha="center", va="center", fontsize=8,
                    color="white")
        ax.set_xlim(0, n)
        ax.set_yticks([])
        ax.set_xlabel(f"output index (of {n})")
        ax.set_title(what, fontsize=10)
    fig.suptitle(f"Model parallelism: each of {world_size} processes computes its slice of the outputs")
    return fig


def staleness(runs: dict):
    """Staleness of each parameter-server update, one panel per run; ``runs``: title → (workers, staleness)."""
    fig, axes = _figure(3.0, len(runs), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (title, (workers, stale)) in zip(axes, runs.items()):
        workers, stale = np.asarray(workers), np.asarray(stale)
        for w in sorted(set(workers.tolist())):
            k = np.flatnonzero(workers == w)
            ax.scatter(k, stale[k], s=22, color=RANK_COLORS[w % 8], label=f"worker {w}", zorder=3)
        ax.set_xlabel("update applied by the server (#)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("staleness (updates missed)")
    axes[-1].legend(fontsize=8)
    return fig


def traffic(n_params: int, workers, bytes_fn):
    """Bytes per step through the parameter server's link vs through each process in ring all-reduce."""
    workers = list(workers)
    rows = [bytes_fn(n_params, n) for n in workers]
    fig, ax = _figure(3.0)
    ax.plot(workers, [r["parameter_server_link"] / 1e6 for r in rows], "o-", color=COLORS["memory"],
            label="parameter server: the server's link")
    ax.plot(workers, [r["ring_allreduce_per_process"] / 1e6 for r in rows], "s-", color=COLORS["compute"],
            label="ring all-reduce: each process")
    ax.set_xlabel("workers")
    ax.set_ylabel("MB sent + received per step")
    ax.set_title(f"Communication per step for {n_params:,} fp32 parameters")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def pipeline_timeline(events: list, n_stages: int, *, bubble: float | None = None):
    """Gantt chart of a pipelined step: when each stage computed which micro-batch (forward, backward)."""
    fig, ax = _figure(0.7 + 0.55 * n_stages)
    for stage, phase, m, start, end in events:
        color = RANK_COLORS[m % 8]
        ax.barh(stage, (end - start) * 1e3, left=start * 1e3, color=color, edgecolor="black", linewidth=0.4,
                hatch="//" if phase == "backward" else None, height=0.6)
    ax.set_yticks(range(n_stages), [f"stage {s}" for s in range(n_stages)])
    ax.invert_yaxis()
    ax.set_xlabel("time since the first computation (ms, measured)")
    micro = sorted({e[2] for e in events})
    handles = [Patch(color=RANK_COLORS[m % 8], label=f"micro-batch {m}") for m in micro]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="backward"))
    ax.legend(handles=handles, fontsize=7, ncol=len(handles), loc="upper center", bbox_to_anchor=(0.5, -0.35))
    title = "Pipeline: forward fills the stages, backward drains them"
    if bubble is not None:
        title += f" (ideal bubble {bubble:.0%})"
    ax.set_title(title, fontsize=10)
    return fig


def epoch_times(times: dict):
    """Seconds per epoch against processes; ``times``: label → {world_size: seconds}."""
    fig, ax = _figure(3.2)
    labels = list(times)
    sizes = sorted({w for t in times.values() for w in t})
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        x = np.arange(len(sizes)) + (i - (len(labels) - 1) / 2) * width
        ax.bar(x, [times[label].get(w, np.nan) for w in sizes], width, label=label, color=RANK_COLORS[i % 8])
    ax.set_xticks(range(len(sizes)), [f"{w} process{'es' if w > 1 else ''}" for w in sizes])
    ax.set_ylabel("seconds per epoch (measured)")
    ax.set_title("DDP on this 2-core machine: time per epoch, same global batch")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


# ------------------------------------------------------------------ chapter 12
def _fp16_regions(ax):
    lo, sub, hi = np.log2(FP16.min_subnormal), np.log2(FP16.min_normal), np.log2(FP16.max)
    ax.axvspan(ax.get_xlim()[0], lo - 1, color="#D55E00", alpha=0.12, label="→ 0 in fp16")
    ax.axvspan(lo - 1, sub, color="#E69F00", alpha=0.12, label="fp16 subnormal")
    ax.axvspan(hi, ax.get_xlim()[1], color="#CC79A7", alpha=0.12, label="→ inf in fp16")


def gradient_histograms(panels: dict, *, scale: float | None = None):
    """Histograms of log2|g| (non-zero values) with fp16's ranges shaded; ``panels``: title → values."""
    fig, axes = _figure(3.0, len(panels), sharey=False)
    axes = np.atleast_1d(axes)
    bins = np.arange(-60, 18, 1.0)
    for ax, (title, values) in zip(axes, panels.items()):
        v = np.asarray(values, dtype=np.float64).ravel()
        v = np.abs(v[v != 0])
        ax.hist(np.log2(v), bins=bins, color=COLORS["compute"], alpha=0.8, label="|g| as computed in fp32")
        if scale is not None:
            ax.hist(np.log2(v * scale), bins=bins, histtype="step", color="black", linewidth=1.2,
                    label=f"× loss scale 2^{np.log2(scale):.0f}")
        ax.set_xlim(bins[0], bins[-1])
        _fp16_regions(ax)
        ax.set_xlabel("log2 |gradient|")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("values")
    axes[0].legend(fontsize=7, loc="upper left")
    return fig


def scale_sweep(log2_scales, underflow: dict, overflow: dict, *, chosen: float | None = None):
    """Underflow and overflow fractions against the loss scale, per model."""
    fig, ax = _figure(3.2)
    for i, name in enumerate(underflow):
        ax.plot(log2_scales, np.array(underflow[name]) * 100, "-", color=RANK_COLORS[i], label=f"{name}: underflow")
        ax.plot(log2_scales, np.array(overflow[name]) * 100, "--", color=RANK_COLORS[i], label=f"{name}: overflow")
    if chosen is not None:
        ax.axvline(np.log2(chosen), color="black", lw=0.8, ls=":")
        ax.text(np.log2(chosen), 0.3, " largest scale\n dynamic scaling used", fontsize=8,
                transform=ax.get_xaxis_transform())
    ax.axhline(1.0, color="#999999", lw=0.8)
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(0, 150)
    ax.set_xlabel("log2 loss scale")
    ax.set_ylabel("% of gradient values (symlog)")
    ax.set_title("Loss scaling: shift the gradients into fp16's range")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3)
    return fig


def scaler_trace(scales, skipped=None, *, title: str = "Dynamic loss scale during training"):
    """The loss scale at each step (log2), skipped steps marked."""
    fig, ax = _figure(2.8)
    steps = np.arange(len(scales))
    ax.step(steps, np.log2(scales), where="post", color=COLORS["compute"])
    if skipped is not None:
        bad = np.flatnonzero(np.asarray(skipped))
        ax.scatter(bad, np.log2(np.asarray(scales)[bad]), color=COLORS["memory"], zorder=3, s=18,
                   label="skipped step (inf/NaN)")
        if len(bad):
            ax.legend(fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("log2 loss scale")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    return fig


def precision_curves(runs: dict, *, lost: list | None = None, title: str = ""):
    """Validation accuracy per epoch for each precision (mean over seeds), and pure fp16's lost updates."""
    fig, axes = _figure(3.2, 2 if lost is not None else 1)
    axes = np.atleast_1d(axes)
    for mode, curves in runs.items():
        curves = np.array(curves, dtype=float)          # (seeds, epochs)
        epochs = np.arange(1, curves.shape[1] + 1)
        axes[0].plot(epochs, curves.mean(0), "o-", ms=3, color=MODE_COLORS[mode], label=MODE_LABELS[mode])
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("validation accuracy (%)")
    axes[0].set_title(title or "LeNet-300-100 trained in three precisions", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[0].grid(True, alpha=0.3)
    if lost is not None:
        lost = np.array(lost, dtype=float)
        axes[1].plot(np.arange(1, lost.shape[-1] + 1), (lost.mean(0) if lost.ndim == 2 else lost) * 100, "o-",
                     ms=3, color=MODE_COLORS["fp16_pure"])
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("non-zero updates lost (%)")
        axes[1].set_title("Pure fp16: fp16(w − lr·v) == w", fontsize=10)
        axes[1].grid(True, alpha=0.3)
    return fig


def lost_update_curve(ratios, fractions):
    """Fraction of updates lost against the update's size relative to its weight."""
    fig, ax = _figure(3.0)
    ax.semilogx(ratios, np.asarray(fractions) * 100, "o-", ms=3, color=COLORS["memory"])
    ax.axvline(FP16.eps / 2, color="black", lw=0.8, ls=":")
    ax.text(FP16.eps / 2, 50, " half of fp16's ε = 2^-11", fontsize=8)
    ax.set_xlabel("|update| / |weight|")
    ax.set_ylabel("updates lost in fp16 (%)")
    ax.set_title("Adding a small update to an fp16 weight", fontsize=10)
    ax.grid(True, alpha=0.3)
    return fig


def accumulation_errors(ks, errors: dict):
    """Relative error of a K-deep dot product against K, per accumulator format (log-log)."""
    fig, ax = _figure(3.0)
    for i, (label, errs) in enumerate(errors.items()):
        ax.loglog(ks, errs, "o-", ms=4, color=RANK_COLORS[i], label=label)
    ax.set_xlabel("K (products summed per output)")
    ax.set_ylabel("relative error vs exact")
    ax.set_title("Tensor Core arithmetic: fp16 products, fp32 vs fp16 accumulation", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def matmul_speed(gflops: dict, *, title: str):
    """Bars of measured GFLOP/s per dtype."""
    fig, ax = _figure(2.8)
    names = list(gflops)
    ax.bar(names, [gflops[n] for n in names], color=[RANK_COLORS[i] for i in range(len(names))])
    for i, n in enumerate(names):
        ax.text(i, gflops[n], f"{gflops[n]:.3g}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("GFLOP/s (measured)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    return fig
