"""Figures of chapter 3 (Weight sharing and trained quantization) and its weight-sharing widget.

The widget binds sliders for the conv and fc index widths and a layer menu to
the pure :func:`sharing_state` (the model's weights shared by
:func:`effdl.sharing.share_weights`, linear init, no fine-tuning, and
evaluated); :func:`sharing_figure` draws that state and is also the widget's
static rendering.
"""
from __future__ import annotations

import ipywidgets as widgets
from matplotlib.ticker import FuncFormatter, NullFormatter

from ..pruning import prunable_parameters
from ..sharing import quantized_model, share_weights
from ..data import Split
from ..train import evaluate
from .style import COLORS, figure_png, new_figure, weight_histograms
from ..validation import Dict, Instance, Interval, Module, Text, validate_params


@validate_params(series=Dict(), reference=Interval(float, 0, 100), title=Text())
def accuracy_vs_size(series: dict[str, list[tuple[float, float]]], *, reference: float, title: str):
    """Accuracy against compressed size (% of dense fp32), one line per method.

    ``series``: {method: [(size percent, accuracy percent), …]}; ``reference``: dense accuracy.

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    fig, ax = new_figure(3.6)
    palette = [COLORS["memory"], COLORS["compute"], COLORS["exponent"]]
    for (name, pts), color in zip(series.items(), palette):
        pts = sorted(pts)
        ax.plot([p for p, _ in pts], [a for _, a in pts], marker="o", ms=4, color=color, label=name)
    ax.axhline(reference, color=COLORS["other"], ls=":", label="dense fp32")
    ax.set_xscale("log")
    sizes = [p for pts in series.values() for p, _ in pts]
    ax.set_xticks([t for t in (0.5, 1, 2, 5, 10, 20, 50, 100) if min(sizes) / 2 <= t <= max(sizes) * 2])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} %"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    lowest = min(a for pts in series.values() for _, a in pts)
    ax.set_ylim(lowest - 2, max(reference, max(a for pts in series.values() for _, a in pts)) + 1)
    ax.set_xlabel("model size (% of dense fp32, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


@validate_params(model=Module(), n_bits_conv=Interval(int, 1, 16), n_bits_fc=Interval(int, 1, 16), split=Instance(Split, 'an effdl.data.Split'), layer=Text())
def sharing_state(model, n_bits_conv: int, n_bits_fc: int, split, layer: str) -> dict:
    """What the weight-sharing widget shows: ``model``'s conv and fc weights shared with
    ``2**n_bits``-entry codebooks (linear init, no fine-tuning), the accuracy on ``split``,
    and one layer's weights with its codebook.

    Returns a dict with ``n_bits_conv``, ``n_bits_fc``, ``accuracy`` (percent),
    ``layer``, ``n_bits`` (that layer's width), ``weights`` (shared, 1-D),
    ``original`` (1-D) and ``codebook`` (without the reserved zero).

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    names = list(prunable_parameters(model))
    if layer not in names:
        raise ValueError(f"layer must be one of {names}; got {layer!r}.")
    bits = {n: n_bits_conv if n.startswith("conv") else n_bits_fc for n in names}
    shared = share_weights(model, bits)
    chosen = shared.layers[layer]
    return {"n_bits_conv": n_bits_conv, "n_bits_fc": n_bits_fc, "accuracy": evaluate(quantized_model(shared), split),
            "layer": layer, "n_bits": bits[layer], "weights": chosen.weight().ravel(),
            "original": prunable_parameters(model)[layer].detach().numpy().ravel(),
            "codebook": chosen.codebook[int(chosen.reserves_zero):]}


@validate_params(state=Dict())
def sharing_figure(state: dict):
    """A :func:`sharing_state`: the layer's original and shared weights, the codebook marked
    (also the widget's static rendering).

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    shared = f"shared, {state['n_bits']} bits"
    return weight_histograms(
        [("original", state["original"]), (shared, state["weights"])], markers={shared: state["codebook"]},
        title=f"{state['layer']}: conv {state['n_bits_conv']} bits, fc {state['n_bits_fc']} bits → "
              f"test accuracy {state['accuracy']:.1f} %")


@validate_params(model=Module(), split=Instance(Split, 'an effdl.data.Split'), n_bits_conv=Interval(int, 1, 16), n_bits_fc=Interval(int, 1, 16), layer=Text())
def sharing_widget(model, split, *, n_bits_conv: int = 4, n_bits_fc: int = 2, layer: str = "fc1.weight"):
    """Sliders for the conv and fc index widths; the accuracy and a layer's shared weights.

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    sharing_state(model, n_bits_conv, n_bits_fc, split, layer)  # validate before building controls
    conv = widgets.IntSlider(value=n_bits_conv, min=1, max=8, description="conv bits", continuous_update=False)
    fc = widgets.IntSlider(value=n_bits_fc, min=1, max=8, description="fc bits", continuous_update=False)
    menu = widgets.Dropdown(options=list(prunable_parameters(model)), value=layer, description="layer")
    image = widgets.Image(format="png")

    def redraw(_=None):
        image.value = figure_png(sharing_figure(sharing_state(model, conv.value, fc.value, split, menu.value)))

    for control in (conv, fc, menu):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([conv, fc, menu]), image])
