"""Interactive controls for the chapters. Each widget only binds controls to a
pure function that the tests call directly; it draws into an ``Output`` it
owns, so a notebook cell that displays the widget stores no printed text
(strict nbval compares stored and fresh outputs). Chapters show the default
state as a static figure first, so the book reads well without a kernel.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from .. import numerics
from . import plots

BIT_WIDTH_FORMATS = ["fp32", "fp16", "bf16", "fp8_e5m2", "int8", "int16", "fixed point"]


def bit_width_state(value: float, format_name: str, int_bits: int = 3, frac_bits: int = 4) -> dict:
    """What the bit-width widget shows: the format, the value's bits and its rounding.

    ``format_name`` is one of ``BIT_WIDTH_FORMATS``; ``"fixed point"`` uses
    signed Q``int_bits``.``frac_bits``. Returns ``{"format": format_row,
    "bits": BitFields}``.
    """
    if format_name == "fixed point":
        fmt = numerics.FixedPointFormat(int_bits, frac_bits)
    else:
        from .._validate import check_choice
        fmt = numerics.get_format(check_choice("format_name", format_name, BIT_WIDTH_FORMATS))
    return {"format": numerics.format_row(fmt), "bits": numerics.bit_fields(value, fmt)}


def bit_width_figure(value: float, format_name: str, int_bits: int = 3, frac_bits: int = 4):
    """The figure of :func:`bit_width_state` (also the widget's static rendering)."""
    state = bit_width_state(value, format_name, int_bits, frac_bits)
    return plots.bit_fields(state["bits"], state["format"])


def figure_png(fig, dpi: int = 100) -> bytes:
    """PNG bytes of a figure (closed afterwards), for an ``ipywidgets.Image``."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def bit_width_widget(value: float = 0.1, format_name: str = "fp16", int_bits: int = 3, frac_bits: int = 4):
    """Pick a format (and fixed-point split) and a value; see its bits, error and range.

    The picture is an ``ipywidgets.Image`` whose bytes are replaced on every
    change: no display messages, so the cell's stored output is only the widget.
    """
    import ipywidgets as w

    bit_width_state(value, format_name, int_bits, frac_bits)  # validate before building controls
    fmt = w.Dropdown(options=BIT_WIDTH_FORMATS, value=format_name, description="format")
    number = w.FloatText(value=value, description="value")
    ib = w.IntSlider(value=int_bits, min=0, max=15, description="int bits")
    fb = w.IntSlider(value=frac_bits, min=0, max=15, description="frac bits")
    image = w.Image(format="png")
    message = w.HTML()

    def redraw(_=None):
        ib.disabled = fb.disabled = fmt.value != "fixed point"
        try:
            image.value = figure_png(bit_width_figure(number.value, fmt.value, ib.value, fb.value))
            message.value = ""
        except (ValueError, TypeError) as err:  # e.g. Q0.0 has too few bits: say so in the widget
            message.value = f"<b>{err}</b>"

    for control in (fmt, number, ib, fb):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([fmt, number]), w.HBox([ib, fb]), message, image])


def sparsity_state(model, sparsity: float, split, layer: str = "fc1.weight") -> dict:
    """What the sparsity widget shows: ``model`` pruned globally to ``sparsity`` (a copy,
    no retraining), its accuracy on ``split``, its non-zero parameters, and one layer's weights."""
    from .. import pruning
    from ..train import evaluate

    pruned = pruning.pruned_copy(model, sparsity=sparsity, scope="global")
    weights = pruning.prunable_parameters(pruned)
    if layer not in weights:
        raise ValueError(f"layer must be one of {sorted(weights)}; got {layer!r}.")
    w = weights[layer].detach().cpu().numpy().ravel()
    dense_w = pruning.prunable_parameters(model)[layer].detach().cpu().numpy()
    return {"sparsity": float(sparsity), "accuracy": evaluate(pruned, split), "layer": layer,
            "nonzero_params": pruning.nonzero_parameters(pruned), "weights": w,
            "layer_nonzeros": int((w != 0).sum()), "weight_range": float(abs(dense_w).max())}


def sparsity_figure(model, sparsity: float, split, layer: str = "fc1.weight", curve: dict | None = None):
    """The figure of :func:`sparsity_state` (also the widget's static rendering)."""
    return plots.sparsity_view(sparsity_state(model, sparsity, split, layer), curve)


def sparsity_widget(model, split, curve: dict | None = None, *, sparsity: float = 0.9,
                    layer: str = "fc1.weight"):
    """A global-sparsity slider and a layer menu: accuracy, parameters left and the histogram."""
    import ipywidgets as w

    from .. import pruning

    sparsity_state(model, sparsity, split, layer)  # validate before building controls
    slider = w.FloatSlider(value=sparsity, min=0.0, max=0.99, step=0.01, description="pruned",
                           readout_format=".0%", continuous_update=False)
    menu = w.Dropdown(options=list(pruning.prunable_parameters(model)), value=layer, description="layer")
    image = w.Image(format="png")

    def redraw(_=None):
        image.value = figure_png(sparsity_figure(model, slider.value, split, menu.value, curve))

    slider.observe(redraw, names="value")
    menu.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([slider, menu]), image])


def sharing_state(model, conv_bits: int, fc_bits: int, split, layer: str) -> dict:
    """What the weight-sharing widget shows: ``model``'s conv and fc weights shared with
    ``2**bits``-entry codebooks (linear init, no fine-tuning), the accuracy on ``split``,
    and one layer's weights with its codebook."""
    from .. import pruning, sharing
    from ..train import evaluate

    names = list(pruning.prunable_parameters(model))
    if layer not in names:
        raise ValueError(f"layer must be one of {names}; got {layer!r}.")
    bits = {n: conv_bits if n.startswith("conv") else fc_bits for n in names}
    shared = sharing.share_weights(model, bits)
    chosen = shared.layers[layer]
    return {"accuracy": evaluate(sharing.quantized_model(shared), split), "layer": layer,
            "bits": bits[layer], "weights": chosen.weight().ravel(),
            "original": pruning.prunable_parameters(model)[layer].detach().numpy().ravel(),
            "codebook": chosen.codebook[int(chosen.reserves_zero):]}


def sharing_figure(model, conv_bits: int, fc_bits: int, split, layer: str = "fc1.weight"):
    """The figure of :func:`sharing_state` (also the widget's static rendering)."""
    state = sharing_state(model, conv_bits, fc_bits, split, layer)
    fig = plots.weight_histograms(
        [("original", state["original"]), (f"shared, {state['bits']} bits", state["weights"])],
        markers={f"shared, {state['bits']} bits": state["codebook"]},
        title=f"{layer}: conv {conv_bits} bits, fc {fc_bits} bits → test accuracy {state['accuracy']:.1f} %")
    return fig


def sharing_widget(model, split, *, conv_bits: int = 4, fc_bits: int = 2, layer: str = "fc1.weight"):
    """Sliders for the conv and fc index widths; the accuracy and a layer's shared weights."""
    import ipywidgets as w

    from .. import pruning

    sharing_state(model, conv_bits, fc_bits, split, layer)  # validate before building controls
    conv = w.IntSlider(value=conv_bits, min=1, max=8, description="conv bits", continuous_update=False)
    fc = w.IntSlider(value=fc_bits, min=1, max=8, description="fc bits", continuous_update=False)
    menu = w.Dropdown(options=list(pruning.prunable_parameters(model)), value=layer, description="layer")
    image = w.Image(format="png")

    def redraw(_=None):
        image.value = figure_png(sharing_figure(model, conv.value, fc.value, split, menu.value))

    for control in (conv, fc, menu):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([conv, fc, menu]), image])
