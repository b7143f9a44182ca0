"""Chapter 20's views: perplexity against sparsity, a 2:4 mask, 2:4 storage, a layer-error widget.

The figures read the ``llm_sparsity`` record (:mod:`effdl.precompute.llm_sparsity`)
or tensors the chapter computes. The widget follows the book's pattern:
:func:`prune_error_state` (pure: prunes one layer three ways with
:mod:`effdl.llm.prune`) → :func:`prune_error_figure` → :func:`prune_error_widget`
(a sparsity slider).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from ..llm import calibration as cal
from ..llm import prune as pr
from ..validation import Dict, Instance, Interval, Tensor, Text, validate_params
from .llm_quant import _log_ppl_axis
from .style import WIDTH, figure_png

METHOD_STYLE = {"magnitude": ("magnitude", "tab:gray", "o-"), "wanda": ("Wanda", "tab:orange", "^-"),
                "sparsegpt": ("SparseGPT", "tab:blue", "s-")}
SPARSITY = Interval(float, 0, 1, closed="left")


@validate_params(record=Dict(), title=Text(optional=True))
def ppl_vs_sparsity(record: dict, *, title: str | None = None):
    """Perplexity per byte against unstructured sparsity for magnitude, Wanda and SparseGPT; dense dashed.

    From the record's sweep (the first validation windows); log-scaled perplexity.

    Taught in chapter 20, "Pruning a language model".
    """
    sweep = record["sweep"]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), constrained_layout=True)
    for method, (label, color, fmt) in METHOD_STYLE.items():
        rows = sorted((r for r in sweep["rows"] if r["method"] == method), key=lambda r: r["sparsity"])
        ax.plot([100 * r["sparsity"] for r in rows], [r["ppl"] for r in rows], fmt, color=color, label=label)
    ax.axhline(sweep["dense_ppl"], color="k", ls="--", lw=1, label=f"dense ({sweep['dense_ppl']:.3f})")
    _log_ppl_axis(ax)
    ax.set_xlabel("weights pruned in every linear layer, per output row (%)")
    ax.set_ylabel("perplexity per byte (log scale)")
    ax.set_title(title or f"One-shot pruning of the book's GPT (first {sweep['windows']} validation windows)",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


@validate_params(weight=Tensor(ndim=2), mask=Instance(torch.Tensor, "a bool tensor (True = kept)"),
                 group=Interval(int, 1, None), title=Text(optional=True))
def mask_picture(weight: torch.Tensor, mask: torch.Tensor, group: int = 4, *, title: str | None = None):
    """A weight tile as a heat map with its pruned entries blanked; thin lines between groups of ``group`` columns.

    Taught in chapter 20, "Pruning a language model".
    """
    if mask.shape != weight.shape or mask.dtype != torch.bool:
        raise ValueError(f"mask_picture: mask must be a bool tensor of weight's shape {tuple(weight.shape)}; "
                         f"got {mask.dtype} {tuple(mask.shape)}.")
    w = weight.detach().float().numpy()
    shown = np.where(mask.numpy(), w, np.nan)
    lim = float(np.abs(w).max()) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 2.2 + 0.12 * w.shape[0]), constrained_layout=True)
    for ax, data, name in zip(axes, (w, shown), ("dense", "pruned (blank = 0)")):
        im = ax.imshow(data, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="equal")
        for c in range(group, w.shape[1], group):
            ax.axvline(c - 0.5, color="k", lw=0.6)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("input column")
    axes[0].set_ylabel("output row")
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
    fig.suptitle(title or f"Kept per group of {group} columns: {int(mask[:, :group].sum(1).max())}", fontsize=9)
    return fig


@validate_params(record=Dict(), title=Text(optional=True))
def storage_bars(record: dict, *, title: str | None = None):
    """Bytes of the 24 weights, dense against 2:4 (values + 2-bit indices), fp32 and fp16 values, and on disk.

    Taught in chapter 20, "Pruning a language model".
    """
    b = record["bytes"]
    rows = [("fp32 dense", b["computed"]["fp32"]["dense"], 0), ("fp32 2:4", b["computed"]["fp32"]["values"],
                                                               b["computed"]["fp32"]["indices"]),
            ("fp16 dense", b["computed"]["fp16"]["dense"], 0), ("fp16 2:4", b["computed"]["fp16"]["values"],
                                                               b["computed"]["fp16"]["indices"]),
            ("fp32 dense, .npz on disk", b["on_disk_fp32"]["dense"], 0),
            ("fp32 2:4, .npz on disk", b["on_disk_fp32"]["2:4"], 0)]
    fig, ax = plt.subplots(figsize=(WIDTH, 2.8), constrained_layout=True)
    y = np.arange(len(rows))
    ax.barh(y, [r[1] / 1e6 for r in rows], color=["tab:gray", "tab:blue"] * 3, label="values")
    ax.barh(y, [r[2] / 1e6 for r in rows], left=[r[1] / 1e6 for r in rows], color="tab:red", label="2-bit indices")
    for i, r in enumerate(rows):
        ax.text((r[1] + r[2]) / 1e6, i, f" {(r[1] + r[2]) / 1e6:.2f} MB", va="center", fontsize=7)
    ax.set_yticks(y, [r[0] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.25 * max(r[1] + r[2] for r in rows) / 1e6)
    ax.set_xlabel("bytes of the linear weights (MB)")
    ax.set_title(title or "2:4 storage: half the values, plus 2 bits of index per kept value", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


@validate_params(weight=Tensor(ndim=2), x=Tensor(ndim=2), sparsity=SPARSITY)
def prune_error_state(weight, x, sparsity: float = 0.5) -> dict:
    """One layer pruned three ways at ``sparsity``: relative output error ``‖XWᵀ − XŴᵀ‖² / ‖XWᵀ‖²`` on ``x``.

    Returns ``{"sparsity", "errors": {"magnitude", "wanda", "sparsegpt"}}``.

    Taught in chapter 20, "Pruning a language model".
    """
    ref = x.double() @ weight.double().T
    pruned = {"magnitude": pr.magnitude(weight, sparsity)[0],
              "wanda": pr.wanda(weight, pr.input_norms(x), sparsity)[0],
              "sparsegpt": pr.sparsegpt(weight, cal.hessian(x), sparsity)[0]}
    errors = {m: float((ref - x.double() @ p.double().T).pow(2).sum() / ref.pow(2).sum()) for m, p in pruned.items()}
    return {"sparsity": sparsity, "errors": errors}


@validate_params(state=Dict(), ax=Instance(Axes, "a matplotlib Axes", optional=True), title=Text(optional=True))
def prune_error_figure(state: dict, *, ax=None, title: str | None = None):
    """Bars: the layer's relative output error for magnitude, Wanda and SparseGPT.

    Taught in chapter 20, "Pruning a language model".
    """
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(WIDTH, 2.8), constrained_layout=True)
    names = list(METHOD_STYLE)
    err = [100 * state["errors"][m] for m in names]
    ax.bar(range(3), err, color=[METHOD_STYLE[m][1] for m in names])
    ax.set_xticks(range(3), [METHOD_STYLE[m][0] for m in names])
    for i, e in enumerate(err):
        ax.text(i, e, f"{e:.2g} %", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.2 * max(max(err), 1e-9))
    ax.set_ylabel("output error ÷ output energy (%)")
    ax.set_title(title or f"{100 * state['sparsity']:.0f} % of each row pruned", fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    return fig if fig is not None else ax.figure


@validate_params(weight=Tensor(ndim=2), x=Tensor(ndim=2), sparsity=SPARSITY)
def prune_error_widget(weight, x, sparsity: float = 0.5):
    """A sparsity slider (10 % to 90 %) redrawing :func:`prune_error_figure` for one layer.

    Taught in chapter 20, "Pruning a language model".
    """
    prune_error_state(weight, x, sparsity)                              # validate before building controls
    slider = widgets.FloatSlider(value=sparsity, min=0.1, max=0.9, step=0.1, description="sparsity",
                                 continuous_update=False, readout_format=".1f")
    image = widgets.Image(format="png")

    def redraw(_=None):
        image.value = figure_png(prune_error_figure(prune_error_state(weight, x, slider.value)), dpi=80)

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, image])


__all__ = ["ppl_vs_sparsity", "mask_picture", "storage_bars", "prune_error_state", "prune_error_figure",
           "prune_error_widget"]
