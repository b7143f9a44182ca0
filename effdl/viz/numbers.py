"""Figures of chapter 1 (Number representations) and its bit-width widget.

The figures draw :func:`effdl.numerics.format_table` rows and
:func:`effdl.hardware.energy.energy_table` rows. The widget binds a format
menu, a value and the fixed-point split to the pure :func:`bit_width_state`
(a format and :func:`effdl.numerics.bit_fields` of the value);
:func:`bit_width_figure` draws that state and is also the widget's static
rendering, so the chapter reads well without a kernel.
"""
from __future__ import annotations

import ipywidgets as widgets
from matplotlib.patches import Rectangle

from .. import numerics
from .._validate import check_choice
from .style import COLORS, figure_png, new_figure
from ..validation import Dict, Interval, Records, Text, validate_params

BIT_WIDTH_FORMATS = ["fp32", "fp16", "bf16", "fp8_e5m2", "int8", "int16", "fixed point"]


@validate_params(rows=Records())
def bit_layouts(rows: list[dict]):
    """The bit fields of several formats as coloured boxes, one row per format.

    ``rows``: ``effdl.numerics.format_table()`` rows.

    Taught in chapter 01, "Number representations".
    """
    fig, ax = new_figure(0.45 * len(rows) + 0.9)
    for i, r in enumerate(rows[::-1]):
        if r["kind"] == "float":
            fields = [("sign", r["sign_bits"]), ("exponent", r["exponent_bits"]), ("mantissa", r["mantissa_bits"])]
        else:
            fields = [("sign", r["sign_bits"]), ("integer", r["integer_bits"]),
                      ("fraction", r["fraction_bits"] or 0)]
        x = 32 - r["bits"]  # right-align so the least significant bits line up
        for field, n in fields:
            if n:
                ax.add_patch(Rectangle((x, i + 0.1), n, 0.8, color=COLORS[field], ec="white"))
                label = f"{field} {n}" if n >= 3 else field[0]
                ax.text(x + n / 2, i + 0.5, label, ha="center", va="center", fontsize=7)
                x += n
        ax.text(-0.5, i + 0.5, f"{r['name']} ({r['bits']} bits)", ha="right", va="center", fontsize=9)
    ax.set_xlim(-9, 32)
    ax.set_ylim(0, len(rows))
    ax.axis("off")
    ax.set_title("Bit fields (most significant bit on the left)")
    return fig


@validate_params(table=Records())
def energy_area_vs_bits(table: list[dict]):
    """Energy and area of adders and multipliers against operand width (log scales).

    Taught in chapter 01, "Number representations".
    """
    fig, (ax_e, ax_a) = new_figure(3.2, ncols=2)
    for family in ("int", "fp"):
        for op, marker in (("add", "o"), ("mult", "s")):
            pts = sorted((r["bits"], r) for r in table if r["family"] == family and r["op"] == op)
            style = dict(marker=marker, ls="-" if family == "int" else "--",
                         color=COLORS["compute"] if op == "add" else COLORS["memory"],
                         label=f"{'int' if family == 'int' else 'float'} {op}")
            ax_e.plot([b for b, _ in pts], [r["energy_pj"] for _, r in pts], **style)
            ax_a.plot([b for b, _ in pts], [r["area_um2"] for _, r in pts], **style)
    for ax, what in [(ax_e, "energy (pJ)"), (ax_a, "area (µm²)")]:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks([8, 16, 32], ["8", "16", "32"])
        ax.set_xlabel("operand width (bits)")
        ax.set_ylabel(f"{what}, log scale")
        ax.grid(True, alpha=0.3)
    ax_e.set_title("Energy per operation")
    ax_a.set_title("Area per unit")
    ax_e.legend(fontsize=8)
    fig.suptitle("Narrower numbers are cheaper (45 nm, Horowitz ISSCC 2014)")
    return fig


@validate_params(value=Interval(float, None, None), format_name=Text(), int_bits=Interval(int, 0, 16), frac_bits=Interval(int, 0, 24))
def bit_width_state(value: float, format_name: str, int_bits: int = 3, frac_bits: int = 4) -> dict:
    """What the bit-width widget shows: the format, the value's bits and its rounding.

    ``format_name`` is one of ``BIT_WIDTH_FORMATS``; ``"fixed point"`` uses
    signed Q``int_bits``.``frac_bits``. Returns ``{"format": format_row,
    "bits": BitFields}`` (:func:`effdl.numerics.format_row`, :func:`effdl.numerics.bit_fields`).

    Taught in chapter 01, "Number representations".
    """
    if format_name == "fixed point":
        fmt = numerics.FixedPointFormat(int_bits, frac_bits)
    else:
        fmt = numerics.get_format(check_choice("format_name", format_name, BIT_WIDTH_FORMATS))
    return {"format": numerics.format_row(fmt), "bits": numerics.bit_fields(value, fmt)}


@validate_params(state=Dict())
def bit_width_figure(state: dict):
    """One value in one format (a :func:`bit_width_state`): its bits coloured by field, what is stored,
    the error and the range. Also the widget's static rendering.

    Taught in chapter 01, "Number representations".
    """
    bf, fmt_row = state["bits"], state["format"]
    fig, ax = new_figure(1.9)
    x = 0
    for field, bits in bf.fields.items():
        for b in bits:
            ax.add_patch(Rectangle((x, 0), 1, 1, color=COLORS.get(field, COLORS["other"]), ec="white"))
            if len(bf.bits) <= 32:
                ax.text(x + 0.5, 0.5, b, ha="center", va="center", fontsize=8, family="monospace")
            x += 1
    ax.set_xlim(0, max(x, 8))
    ax.set_ylim(-1.6, 1.2)
    ax.axis("off")
    rng = f"range [{fmt_row['min']:.6g}, {fmt_row['max']:.6g}]"
    step = (f"eps {fmt_row['eps']:.3g}" if fmt_row.get("eps") else f"resolution {fmt_row['resolution']:.3g}")
    ax.text(0, -0.45, f"value {bf.value:.8g} → stored {bf.stored:.8g}   error {bf.abs_error:.3g} "
            f"(relative {bf.rel_error:.2e})", fontsize=9, va="center")
    ax.text(0, -1.15, f"{bf.format}: {len(bf.bits)} bits, {rng}, {step}", fontsize=9, va="center")
    legend = [Rectangle((0, 0), 1, 1, color=COLORS.get(f, COLORS["other"])) for f in bf.fields]
    ax.legend(legend, list(bf.fields), loc="upper right", bbox_to_anchor=(1, 1.45), ncol=3, fontsize=8,
              frameon=False)
    return fig


@validate_params(value=Interval(float, None, None), format_name=Text(), int_bits=Interval(int, 0, 16), frac_bits=Interval(int, 0, 24))
def bit_width_widget(value: float = 0.1, format_name: str = "fp16", int_bits: int = 3, frac_bits: int = 4):
    """Pick a format (and fixed-point split) and a value; see its bits, error and range.

    The picture is an ``ipywidgets.Image`` whose bytes are replaced on every
    change: no display messages, so the cell's stored output is only the widget.

    Taught in chapter 01, "Number representations".
    """
    bit_width_state(value, format_name, int_bits, frac_bits)  # validate before building controls
    fmt = widgets.Dropdown(options=BIT_WIDTH_FORMATS, value=format_name, description="format")
    number = widgets.FloatText(value=value, description="value")
    ib = widgets.IntSlider(value=int_bits, min=0, max=15, description="int bits")
    fb = widgets.IntSlider(value=frac_bits, min=0, max=15, description="frac bits")
    image = widgets.Image(format="png")
    message = widgets.HTML()

    def redraw(_=None):
        ib.disabled = fb.disabled = fmt.value != "fixed point"
        try:
            state = bit_width_state(number.value, fmt.value, ib.value, fb.value)
            image.value = figure_png(bit_width_figure(state))
            message.value = ""
        except (ValueError, TypeError) as err:  # e.g. Q0.0 has too few bits: say so in the widget
            message.value = f"<b>{err}</b>"

    for control in (fmt, number, ib, fb):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([fmt, number]), widgets.HBox([ib, fb]), message, image])
