"""Figures of chapters 11 (Parallelization), 12 (Mixed precision) and 13 (Distillation and DSD).

Each function draws results computed by :mod:`effdl.training.parallel`,
:mod:`effdl.training.mixed_precision`, :mod:`effdl.training.distillation` or
:mod:`effdl.training.dsd` (or read from the precomputed record) and never recomputes a model. One idea
per figure, titled axes with units.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from ..numerics import FP16
from .style import COLORS, WIDTH, closed, new_figure
from ..validation import (Array, Callable, Dict, Interval, ListOf, PositiveInt, Text, Unchecked, validate_params)

RANK_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
PRECISION_COLORS = {"fp32": "#0072B2", "fp16_master": "#009E73", "fp16_pure": "#D55E00"}
PRECISION_LABELS = {"fp32": "fp32", "fp16_master": "fp16 + fp32 master weights", "fp16_pure": "pure fp16"}


# ------------------------------------------------------------------ chapter 11
@validate_params(fc_out=PositiveInt(), conv_out=PositiveInt(), world_size=PositiveInt(), ranges=Callable())
def split_ownership(fc_out: int, conv_out: int, world_size: int, ranges):
    """Which process holds which outputs: FC rows and conv output maps, coloured by rank.

    ``ranges(n, world_size)`` is :func:`effdl.training.parallel.split_ranges`.

    Taught in chapter 11, "Parallelization".
    """
    fig, axes = new_figure(2.4, 2)
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


@validate_params(runs=Dict())
def staleness(runs: dict):
    """Staleness of each parameter-server update, one panel per run; ``runs``: title → (workers, staleness).

    Taught in chapter 11, "Parallelization".
    """
    fig, axes = new_figure(3.0, len(runs), sharey=True)
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


@validate_params(n_params=PositiveInt(), workers=ListOf(PositiveInt()), bytes_fn=Callable())
def traffic(n_params: int, workers, bytes_fn):
    """Bytes per step through the parameter server's link vs through each process in ring all-reduce.

    Taught in chapter 11, "Parallelization".
    """
    workers = list(workers)
    rows = [bytes_fn(n_params, n) for n in workers]
    fig, ax = new_figure(3.0)
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


@validate_params(events=ListOf(Unchecked('events of effdl.training.parallel.pipeline_schedule')), n_stages=PositiveInt(), bubble=Interval(float, 0, 1, optional=True))
def pipeline_timeline(events: list, n_stages: int, *, bubble: float | None = None):
    """Gantt chart of a pipelined step: when each stage computed which micro-batch (forward, backward).

    Taught in chapter 11, "Parallelization".
    """
    fig, ax = new_figure(0.7 + 0.55 * n_stages)
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


@validate_params(times=Dict())
def epoch_times(times: dict):
    """Seconds per epoch against processes; ``times``: label → {world_size: seconds}.

    Taught in chapter 11, "Parallelization".
    """
    fig, ax = new_figure(3.2)
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


@validate_params(panels=Dict(), scale=Interval(float, 0, None, closed='neither', optional=True))
def gradient_histograms(panels: dict, *, scale: float | None = None):
    """Histograms of log2|g| (non-zero values) with fp16's ranges shaded; ``panels``: title → values.

    Taught in chapter 12, "Mixed precision".
    """
    fig, axes = new_figure(3.0, len(panels), sharey=False)
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


@validate_params(log2_scales=Array(ndim=1), underflow=Dict(), overflow=Dict(), chosen=Interval(float, None, None, optional=True))
def scale_sweep(log2_scales, underflow: dict, overflow: dict, *, chosen: float | None = None):
    """Underflow and overflow fractions against the loss scale, per model.

    Taught in chapter 12, "Mixed precision".
    """
    fig, ax = new_figure(3.2)
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


@validate_params(scales=Array(ndim=1), skipped=Array(ndim=1, nonempty=False, optional=True), title=Text())
def scaler_trace(scales, skipped=None, *, title: str = "Dynamic loss scale during training"):
    """The loss scale at each step (log2), skipped steps marked.

    Taught in chapter 12, "Mixed precision".
    """
    fig, ax = new_figure(2.8)
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


@validate_params(runs=Dict(), lost=Array(ndim=(1, 2), optional=True), title=Text())
def precision_curves(runs: dict, *, lost: list | None = None, title: str = ""):
    """Validation accuracy per epoch for each precision (mean over seeds), and pure fp16's lost updates.

    Taught in chapter 12, "Mixed precision".
    """
    fig, axes = new_figure(3.2, 2 if lost is not None else 1)
    axes = np.atleast_1d(axes)
    for mode, curves in runs.items():
        curves = np.array(curves, dtype=float)          # (seeds, epochs)
        epochs = np.arange(1, curves.shape[1] + 1)
        axes[0].plot(epochs, curves.mean(0), "o-", ms=3, color=PRECISION_COLORS[mode], label=PRECISION_LABELS[mode])
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("validation accuracy (%)")
    axes[0].set_title(title or "LeNet-300-100 trained in three precisions", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[0].grid(True, alpha=0.3)
    if lost is not None:
        lost = np.array(lost, dtype=float)
        axes[1].plot(np.arange(1, lost.shape[-1] + 1), (lost.mean(0) if lost.ndim == 2 else lost) * 100, "o-",
                     ms=3, color=PRECISION_COLORS["fp16_pure"])
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("non-zero updates lost (%)")
        axes[1].set_title("Pure fp16: fp16(w − lr·v) == w", fontsize=10)
        axes[1].grid(True, alpha=0.3)
    return fig


@validate_params(ratios=Array(ndim=1), fractions=Array(ndim=1))
def lost_update_curve(ratios, fractions):
    """Fraction of updates lost against the update's size relative to its weight.

    Taught in chapter 12, "Mixed precision".
    """
    fig, ax = new_figure(3.0)
    ax.semilogx(ratios, np.asarray(fractions) * 100, "o-", ms=3, color=COLORS["memory"])
    ax.axvline(FP16.eps / 2, color="black", lw=0.8, ls=":")
    ax.text(FP16.eps / 2, 50, " half of fp16's ε = 2^-11", fontsize=8)
    ax.set_xlabel("|update| / |weight|")
    ax.set_ylabel("updates lost in fp16 (%)")
    ax.set_title("Adding a small update to an fp16 weight", fontsize=10)
    ax.grid(True, alpha=0.3)
    return fig


@validate_params(ks=Array(ndim=1), errors=Dict())
def accumulation_errors(ks, errors: dict):
    """Relative error of a K-deep dot product against K, per accumulator format (log-log).

    Taught in chapter 12, "Mixed precision".
    """
    fig, ax = new_figure(3.0)
    for i, (label, errs) in enumerate(errors.items()):
        ax.loglog(ks, errs, "o-", ms=4, color=RANK_COLORS[i], label=label)
    ax.set_xlabel("K (products summed per output)")
    ax.set_ylabel("relative error vs exact")
    ax.set_title("Tensor Core arithmetic: fp16 products, fp32 vs fp16 accumulation", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


@validate_params(gflops=Dict(), title=Text())
def matmul_speed(gflops: dict, *, title: str):
    """Bars of measured GFLOP/s per dtype.

    Taught in chapter 12, "Mixed precision".
    """
    fig, ax = new_figure(2.8)
    names = list(gflops)
    ax.bar(names, [gflops[n] for n in names], color=[RANK_COLORS[i] for i in range(len(names))])
    for i, n in enumerate(names):
        ax.text(i, gflops[n], f"{gflops[n]:.3g}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("GFLOP/s (measured)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


# ------------------------------------------------------------------ chapter 13
# Chapter 13's figures are closed before they are returned, so that a cell ending with the call
# shows the figure once (by its repr) instead of twice (repr and the inline backend's flush).
DISTILL_COLORS = {"teacher": "#999999", "full": "#0072B2", "hard": "#D55E00", "soft": "#009E73"}


@validate_params(probs=Dict(), label=Interval(int, 0, None, optional=True), title=Text())
def softmax_temperatures(probs: dict, *, label: int | None = None, title: str = ""):
    """One image's class probabilities at several temperatures (log scale); ``probs``: T → (classes,).

    Taught in chapter 13, "Distillation and DSD".
    """
    fig, ax = new_figure(3.0)
    for i, (t, p) in enumerate(probs.items()):
        p = np.asarray(p, dtype=float)
        ax.semilogy(np.arange(len(p)), p, "o-", ms=4, color=RANK_COLORS[i % 8], label=f"T = {t:g}")
    if label is not None:
        ax.axvline(label, color="black", lw=0.8, ls=":")
    ax.set_xticks(range(len(p)))
    ax.set_xlabel("class (digit)" + (f"; true label {label} dotted" if label is not None else ""))
    ax.set_ylabel("probability softmax(z/T) (log scale)")
    ax.set_title(title or "Raising the temperature softens the distribution", fontsize=10)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(True, alpha=0.3)
    return closed(fig)


@validate_params(data=Dict())
def dark_knowledge_figure(data: dict):
    """Per image: the hard one-hot target vs the teacher's probabilities at T = 1 and at T (log scale).

    ``data`` is :func:`effdl.training.distillation.dark_knowledge`'s result.

    Taught in chapter 13, "Distillation and DSD".
    """
    n = len(data["labels"])
    fig, axes = plt.subplots(n, 2, figsize=(WIDTH, 1.9 * n), constrained_layout=True,
                             width_ratios=[1, 6], squeeze=False)
    k = data["hard"].shape[1]
    x = np.arange(k)
    floor = 1e-12
    series = [("hard target", data["hard"], "#999999"), ("teacher, T = 1", data["soft_1"], DISTILL_COLORS["hard"]),
              (f"teacher, T = {data['temperature']:g}", data["soft_t"], DISTILL_COLORS["soft"])]
    for row in range(n):
        axes[row, 0].imshow(data["images"][row], cmap="gray_r", vmin=0, vmax=1)
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
        axes[row, 0].set_title(f"label {int(data['labels'][row])}", fontsize=9)
        ax = axes[row, 1]
        for j, (name, p, color) in enumerate(series):
            ax.bar(x + (j - 1) * 0.27, np.maximum(p[row], floor), 0.27, bottom=floor, color=color, label=name)
        ax.set_yscale("log")
        ax.set_ylim(floor, 2)
        ax.set_xticks(x)
        ax.set_ylabel("probability (log)")
        ax.grid(True, axis="y", alpha=0.3)
    axes[-1, 1].set_xlabel("class (digit)")
    fig.legend(*axes[0, 1].get_legend_handles_labels(), fontsize=8, ncol=3, loc="outside lower center")
    fig.suptitle("Dark knowledge: what the teacher thinks each digit also resembles", fontsize=10)
    return closed(fig)


@validate_params(summary=Dict(), paper=Dict())
def distillation_results(summary: dict, paper: dict):
    """Test accuracy of teacher, full-data student, 3 % hard and 3 % soft (mean ± std over seeds),
    next to the paper's speech numbers. ``summary``: key → {"mean", "std"} or a float; ``paper``: label → %.

    Taught in chapter 13, "Distillation and DSD".
    """
    fig, axes = new_figure(3.3, 2, width_ratios=[4, 3])
    names = [("teacher", "teacher"), ("full", "student,\nall data"), ("hard", "student, 3 %\nhard targets"),
             ("soft", "student, 3 %\nsoft targets")]
    names = [(k, lab) for k, lab in names if k in summary]
    for i, (key, label) in enumerate(names):
        v = summary[key]
        mean, std = (v["mean"], v["std"]) if isinstance(v, dict) else (float(v), 0.0)
        axes[0].bar(i, mean, color=DISTILL_COLORS[key], yerr=std or None, capsize=4)
        axes[0].text(i, mean + std + 0.5, f"{mean:.1f}", ha="center", va="bottom", fontsize=8)
    axes[0].set_xticks(range(len(names)), [lab for _, lab in names], fontsize=8)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_title("MNIST (this book, mean ± std over seeds)", fontsize=10)
    colors = [DISTILL_COLORS["full"], DISTILL_COLORS["hard"], DISTILL_COLORS["soft"]]
    for i, (label, value) in enumerate(paper.items()):
        axes[1].bar(i, value, color=colors[i % 3])
        axes[1].text(i, value + 0.5, f"{value:.1f}", ha="center", va="bottom", fontsize=8)
    axes[1].set_xticks(range(len(paper)), list(paper), fontsize=8)
    axes[1].set_ylabel("frame accuracy (%)")
    axes[1].set_title("Speech (Hinton et al. 2015)", fontsize=10)
    for ax in axes:
        ax.set_ylim(0, 105 if ax is axes[0] else 70)
        ax.grid(True, axis="y", alpha=0.3)
    return closed(fig)


@validate_params(curves=Dict(), chosen=Dict(optional=True))
def student_curves(curves: dict, *, chosen: dict | None = None):
    """Validation accuracy against epochs (mean ± std over seeds) per condition; the chosen epoch marked.

    ``curves``: condition → {"eval_epochs", "val_mean", "val_std"}; ``chosen``: condition → epoch.

    Taught in chapter 13, "Distillation and DSD".
    """
    fig, ax = new_figure(3.2)
    labels = {"full": "all data, hard labels", "hard": "3 %, hard targets", "soft": "3 %, soft targets"}
    late = [np.asarray(c["val_mean"], dtype=float)[len(c["val_mean"]) // 10:] for c in curves.values()]
    ax.set_ylim(max(0.0, min(m.min() for m in late) - 8), 100)   # the plateaus, not the first epochs
    for key, c in curves.items():
        e, m, s = (np.asarray(c[k], dtype=float) for k in ("eval_epochs", "val_mean", "val_std"))
        ax.plot(e, m, "-", color=DISTILL_COLORS[key], label=labels.get(key, key))
        ax.fill_between(e, m - s, m + s, color=DISTILL_COLORS[key], alpha=0.2, lw=0)
        if chosen and key in chosen:
            i = int(np.searchsorted(e, chosen[key]))
            ax.plot(e[i], m[i], "o", color=DISTILL_COLORS[key], ms=6, mec="black")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("The student during training (dot: epoch chosen on validation)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return closed(fig)


# ------------------------------------------------------------ chapter 13: DSD
DSD_COLORS = {"baseline": "#0072B2", "dsd": "#D55E00"}
PHASE_SHADES = {"dense": "#FFFFFF", "sparse": "#E8E8E8", "redense": "#D6EAF8"}


@validate_params(curves=Dict(), phases=ListOf(Unchecked('(name, start, end) phases of the DSD record')), losses=Dict(optional=True), test_acc=Dict(optional=True), title=Text())
def dsd_curves(curves: dict, phases, *, losses: dict | None = None, test_acc: dict | None = None,
               title: str = "DSD vs a dense baseline trained as long (phases D, S, D′ shaded)"):
    """Validation accuracy per epoch of DSD and its baseline with the phases D, S, D′ shaded.

    ``curves``: method ("baseline", "dsd") → one validation-accuracy list per
    seed (mean drawn bold, seeds thin); ``phases``: ``(phase, first epoch,
    last epoch)`` rows of :class:`effdl.training.dsd.DSDResult`. Optional
    panels: ``losses`` (same shape, training loss, log scale) and
    ``test_acc`` (method → per-seed test accuracy: points joined by seed,
    mean ± std bars). The accuracy axis starts a little below the lowest
    mean after the first quarter of phase D, so that the late phases are
    readable.

    Taught in chapter 13, "Distillation and DSD".
    """
    ncols = 1 + (losses is not None) + (test_acc is not None)
    fig, axes = new_figure(3.3, ncols, width_ratios=[2, 2, 1] if ncols == 3 else None)
    axes = np.atleast_1d(axes)

    def shade(ax):
        for name, first, last in phases:
            if last >= first:
                ax.axvspan(first - 0.5, last + 0.5, color=PHASE_SHADES[name], zorder=0)
                ax.text((first + last) / 2, 1.0, {"dense": "D", "sparse": "S", "redense": "D′"}[name],
                        transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=9)

    def lines(ax, data, ylabel, log=False):
        shade(ax)
        for method, runs in data.items():
            runs = np.array(runs, dtype=float)            # (seeds, epochs)
            epochs = np.arange(1, runs.shape[1] + 1)
            for r in runs:
                ax.plot(epochs, r, color=DSD_COLORS[method], lw=0.4, alpha=0.2)
            ax.plot(epochs, runs.mean(0), "o-", ms=2.5, color=DSD_COLORS[method],
                    label=f"{'DSD' if method == 'dsd' else 'baseline'} (mean of {len(runs)})")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)

    lines(axes[0], curves, "validation accuracy (%)")
    start = max(1, phases[0][2] // 4)                          # skip the first quarter of phase D
    means = [np.array(r, dtype=float).mean(0)[start - 1:] for r in curves.values()]
    if all(len(m) for m in means):
        axes[0].set_ylim(min(m.min() for m in means) - 0.5, max(np.max(r) for r in curves.values()) + 0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[0].set_title("Validation accuracy", fontsize=10, pad=14)
    if losses is not None:
        lines(axes[1], losses, "training loss (nats, log)", log=True)
        axes[1].set_title("Training loss", fontsize=10, pad=14)
    if test_acc is not None:
        ax = axes[-1]
        methods = list(test_acc)
        per_seed = np.array([test_acc[m] for m in methods], dtype=float)   # (methods, seeds)
        for s in range(per_seed.shape[1]):
            ax.plot(range(len(methods)), per_seed[:, s], "-", color="#999999", lw=0.6)
        for i, m in enumerate(methods):
            ax.plot(np.full(per_seed.shape[1], i), per_seed[i], "o", ms=3.5, color=DSD_COLORS[m], alpha=0.7)
            std = per_seed[i].std(ddof=1) if per_seed.shape[1] > 1 else 0.0
            ax.errorbar(i + 0.18, per_seed[i].mean(), yerr=std, fmt="s", color="black", ms=4, capsize=3)
        ax.set_xticks(range(len(methods)), ["DSD" if m == "dsd" else m for m in methods])
        ax.set_xlim(-0.4, len(methods) - 0.4)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("Test, per seed", fontsize=10, pad=14)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return fig
