"""Figures of chapter 2 (Pruning) and its sparsity widget.

The figures draw results of :mod:`effdl.pruning` (or the precomputed record of
``effdl precompute pruning``). The widget binds a global-sparsity slider and a
layer menu to the pure :func:`sparsity_state` (the model pruned by
:func:`effdl.pruning.pruned_copy`, no retraining, and evaluated);
:func:`sparsity_figure` draws that state and is also the widget's static
rendering.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from ..pruning import nonzero_parameters, prunable_parameters, pruned_copy
from ..data import Split
from ..train import evaluate
from .style import COLORS, WIDTH, figure_png, new_figure
from ..validation import Array, Dict, Fraction, Instance, Module, Text, validate_params


@validate_params(curves=Dict())
def pruning_curves(curves: dict):
    """Accuracy against fraction of weights pruned: prune only, prune + retrain, iterative.

    ``curves``: the ``"curves"`` record of ``effdl precompute pruning``.

    Taught in chapter 02, "Pruning".
    """
    fig, ax = new_figure(3.6)
    x = 100 * np.asarray(curves["sparsity"])
    styles = {"prune_only": ("pruning only", COLORS["memory"], "s"),
              "prune_retrain": ("pruning + retraining (one shot)", COLORS["compute"], "o"),
              "iterative": ("iterative pruning + retraining", COLORS["exponent"], "^")}
    for key, (label, color, marker) in styles.items():
        ax.plot(x, curves[key], marker=marker, color=color, label=label)
    ax.axhline(curves["acc_dense"], color=COLORS["other"], ls=":", label="dense model")
    ax.set_xlabel("weights pruned (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0, min(min(curves[k]) for k in styles) - 5), 100)
    ax.set_title(f"Pruning {curves.get('title', 'LeNet-300-100')}: accuracy against fraction pruned")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


@validate_params(curves=Dict(), title=Text())
def sensitivity_curves(curves: dict[str, list[tuple[float, float]]], *, title: str):
    """Accuracy against sparsity, one line per layer pruned alone.

    ``curves``: {layer: [(sparsity, accuracy %), …]}, e.g. :func:`effdl.pruning.sensitivity`'s result.

    Taught in chapter 02, "Pruning".
    """
    fig, ax = new_figure(3.4)
    for name, pts in curves.items():
        ax.plot([100 * s for s, _ in pts], [a for _, a in pts], marker="o", ms=4, label=name)
    ax.set_xlabel("weights pruned in this layer only (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


@validate_params(images=Array(), labels=Array(ndim=1), predictions=Dict(), title=Text())
def prediction_grid(images: np.ndarray, labels: np.ndarray, predictions: dict[str, np.ndarray], *, title: str):
    """Digits with their label and each model's prediction; a changed prediction is red.

    ``images``: (n, 28, 28); ``predictions``: {model name: (n,) predicted labels}.

    Taught in chapter 02, "Pruning".
    """
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(WIDTH, 1.9), constrained_layout=True)
    reference = next(iter(predictions.values()))
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(images[i], cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
        lines = [f"label {labels[i]}"] + [f"{k}: {v[i]}" for k, v in predictions.items()]
        changed = any(v[i] != reference[i] for v in predictions.values())
        ax.set_xlabel("\n".join(lines), fontsize=7, color="#C00000" if changed else "black")
    fig.suptitle(title, fontsize=10)
    return fig


@validate_params(model=Module(), sparsity=Fraction(closed='left'), split=Instance(Split, 'an effdl.data.Split'), layer=Text())
def sparsity_state(model, sparsity: float, split, layer: str = "fc1.weight") -> dict:
    """What the sparsity widget shows: ``model`` pruned globally to ``sparsity`` (a copy,
    no retraining), its accuracy on ``split``, its non-zero parameters, and one layer's weights.

    Taught in chapter 02, "Pruning".
    """
    pruned = pruned_copy(model, sparsity=sparsity, scope="global")
    weights = prunable_parameters(pruned)
    if layer not in weights:
        raise ValueError(f"layer must be one of {sorted(weights)}; got {layer!r}.")
    w_layer = weights[layer].detach().cpu().numpy().ravel()
    dense_w = prunable_parameters(model)[layer].detach().cpu().numpy()
    return {"sparsity": float(sparsity), "accuracy": evaluate(pruned, split), "layer": layer,
            "nonzero_params": nonzero_parameters(pruned), "weights": w_layer,
            "layer_nonzeros": int((w_layer != 0).sum()), "weight_range": float(abs(dense_w).max())}


@validate_params(state=Dict(), curve=Dict(optional=True))
def sparsity_figure(state: dict, curve: dict | None = None):
    """The sparsity widget's picture: remaining weights of one layer, and accuracy vs sparsity.

    ``state``: :func:`sparsity_state`; ``curve``: the precomputed curves record
    (``effdl precompute pruning``). Also the widget's static rendering.

    Taught in chapter 02, "Pruning".
    """
    fig, (ax_h, ax_a) = new_figure(3.0, ncols=2)
    w = state["weights"]
    lim = state["weight_range"]
    ax_h.hist(w[w != 0], bins=np.linspace(-lim, lim, 81), color=COLORS["compute"])
    ax_h.set_xlim(-lim, lim)
    ax_h.set_xlabel("weight value")
    ax_h.set_ylabel("count")
    ax_h.set_title(f"{state['layer']}: {state['layer_nonzeros']:,} of {w.size:,} weights left", fontsize=9)
    if curve is not None:
        x = 100 * np.asarray(curve["sparsity"])
        ax_a.plot(x, curve["prune_only"], color=COLORS["memory"], marker="s", ms=3, label="pruning only")
        ax_a.plot(x, curve["iterative"], color=COLORS["exponent"], marker="^", ms=3,
                  label="iterative + retraining")
    ax_a.plot([100 * state["sparsity"]], [state["accuracy"]], "o", color="black", ms=8, label="this setting")
    ax_a.set_xlim(0, 100)
    lowest = min([state["accuracy"]] + ([] if curve is None else curve["prune_only"] + curve["iterative"]))
    ax_a.set_ylim(max(0, lowest - 5), 100)
    ax_a.set_xlabel("weights pruned, all layers (%)")
    ax_a.set_ylabel("test accuracy (%)")
    ax_a.set_title(f"{100 * state['sparsity']:.0f} % pruned: {state['accuracy']:.1f} %, "
                   f"{state['nonzero_params']:,} parameters", fontsize=9)
    ax_a.legend(fontsize=7, loc="lower left")
    ax_a.grid(True, alpha=0.3)
    return fig


@validate_params(model=Module(), split=Instance(Split, 'an effdl.data.Split'), curve=Dict(optional=True), sparsity=Fraction(closed='left'), layer=Text())
def sparsity_widget(model, split, curve: dict | None = None, *, sparsity: float = 0.9,
                    layer: str = "fc1.weight"):
    """A global-sparsity slider and a layer menu: accuracy, parameters left and the histogram.

    Taught in chapter 02, "Pruning".
    """
    sparsity_state(model, sparsity, split, layer)  # validate before building controls
    slider = widgets.FloatSlider(value=sparsity, min=0.0, max=0.99, step=0.01, description="pruned",
                                 readout_format=".0%", continuous_update=False)
    menu = widgets.Dropdown(options=list(prunable_parameters(model)), value=layer, description="layer")
    image = widgets.Image(format="png")

    def redraw(_=None):
        image.value = figure_png(sparsity_figure(sparsity_state(model, slider.value, split, menu.value), curve))

    slider.observe(redraw, names="value")
    menu.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([slider, menu]), image])
