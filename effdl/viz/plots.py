"""Figures of the book: each function takes results computed elsewhere in effdl
and draws them; none recomputes a model. One idea per figure, titled axes
with units, readable at book width. Every function returns the Figure.

Chapters 0 (model growth, energy) and 1 (number formats) use these.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

# One palette for the whole book (colour-blind safe, Okabe-Ito).
COLORS = {"compute": "#0072B2", "memory": "#D55E00", "sign": "#CC79A7", "exponent": "#009E73",
          "mantissa": "#56B4E9", "integer": "#E69F00", "fraction": "#56B4E9", "other": "#999999"}
WIDTH = 7.5  # inches: the book's text width


def readable(value: float) -> str:
    """A number for a label: 4 significant digits past a million, thousands separators
    from 100, 3 significant digits below."""
    if abs(value) >= 1e6:
        return f"{value:.4g}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _figure(height: float = 3.6, ncols: int = 1, **kwargs):
    return plt.subplots(1, ncols, figsize=(WIDTH, height), constrained_layout=True, **kwargs)


def model_growth(rows: list[dict]):
    """Parameters (and fp32 megabytes) of architectures against their year.

    ``rows``: dicts with ``name``, ``year``, ``params`` (from ``effdl.architectures``).
    """
    fig, ax = _figure(3.8)
    years = np.array([r["year"] for r in rows], dtype=float)
    params = np.array([r["params"] for r in rows], dtype=float)
    ax.scatter(years, params / 1e6, s=60, color=COLORS["compute"], zorder=3)
    for r, x, y in zip(rows, years, params / 1e6):
        ax.annotate(f"{r['name']}\n{y:.3g} M · {readable(4 * y)} MB", (x, y), textcoords="offset points",
                    xytext=(6, -4), fontsize=8, va="top")
    ax.set_yscale("log")
    ax.set_xlabel("year published")
    ax.set_ylabel("parameters (millions, log scale)")
    ax.set_title("Model size: parameters and fp32 bytes (4 bytes per parameter)")
    ax.set_xlim(years.min() - 1, years.max() + 2.5)
    ax.set_ylim(params.min() / 1e6 / 3, params.max() / 1e6 * 2)
    ax.grid(True, which="major", alpha=0.3)
    return fig


def energy_per_operation(table: list[dict]):
    """Horizontal bars of energy per operation (pJ, log scale), relative to a 32-bit int add.

    ``table``: rows with ``description`` and ``energy_pj`` (``effdl.hardware.energy.energy_table``).
    """
    rows = sorted(table, key=lambda r: r["energy_pj"])
    fig, ax = _figure(3.8)
    base = next(r["energy_pj"] for r in table if r["name"] == "int32_add")
    colors = [COLORS["memory"] if "read" in r["name"] else COLORS["compute"] for r in rows]
    y = np.arange(len(rows))
    ax.barh(y, [r["energy_pj"] for r in rows], color=colors)
    for i, r in enumerate(rows):
        ax.text(r["energy_pj"] * 1.15, i, f"{r['energy_pj']:g} pJ  ({r['energy_pj'] / base:,.1f}×)",
                va="center", fontsize=8)
    ax.set_yticks(y, [r["description"] for r in rows])
    ax.set_xscale("log")
    ax.set_xlim(0.01, 2e4)
    ax.set_xlabel("energy per operation (pJ, log scale; × relative to a 32-bit int add)")
    ax.set_title("Energy per operation, 45 nm (Horowitz, ISSCC 2014)")
    return fig


def inference_energy(breakdowns: dict[str, dict[str, dict]]):
    """Energy of one inference split into arithmetic and weight fetches.

    ``breakdowns``: ``{model: {setting: effdl.hardware.energy.inference_energy(...)}}``;
    one panel per model, one stacked bar per setting (linear scale within a panel).
    """
    fig, axes = _figure(3.4, ncols=len(breakdowns))
    axes = np.atleast_1d(axes)
    for ax, (model, settings) in zip(axes, breakdowns.items()):
        labels = list(settings)
        compute = np.array([settings[s]["compute_uj"] for s in labels])
        memory = np.array([settings[s]["memory_uj"] for s in labels])
        x = np.arange(len(labels))
        ax.bar(x, compute, color=COLORS["compute"], label="arithmetic (MACs)")
        ax.bar(x, memory, bottom=compute, color=COLORS["memory"], label="weight fetches")
        for i in x:
            share = memory[i] / (memory[i] + compute[i])
            ax.text(i, compute[i] + memory[i], f"{readable(memory[i] + compute[i])} µJ\n{share:.0%} memory",
                    ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, labels)
        ax.set_ylim(0, 1.3 * (compute + memory).max())
        ax.set_ylabel("energy per inference (µJ)")
        ax.set_title(model)
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle("Where the energy of one inference goes (45 nm, batch 1)")
    return fig


def bit_layouts(rows: list[dict]):
    """The bit fields of several formats as coloured boxes, one row per format.

    ``rows``: ``effdl.numerics.format_table()`` rows.
    """
    fig, ax = _figure(0.45 * len(rows) + 0.9)
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


def bit_fields(bf, fmt_row: dict):
    """One value in one format: its bits coloured by field, what is stored, the error and the range.

    ``bf``: an ``effdl.numerics.BitFields``; ``fmt_row``: that format's ``format_table``-style row.
    """
    fig, ax = _figure(1.9)
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


def energy_area_vs_bits(table: list[dict]):
    """Energy and area of adders and multipliers against operand width (log scales)."""
    fig, (ax_e, ax_a) = _figure(3.2, ncols=2)
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


def metric_vs_bits(rows: list[dict], key: str, *, ylabel: str, title: str, log: bool = False,
                   reference: tuple[str, float] | None = None):
    """A metric (``rows[i][key]``) against bit width, one line per ``rows[i]["family"]``.

    ``reference``: an optional (label, value) drawn as a horizontal line, e.g.
    the fp32 accuracy.
    """
    fig, ax = _figure(3.4)
    families = list(dict.fromkeys(r["family"] for r in rows))
    for fam in families:
        pts = sorted((r["bits"], r[key]) for r in rows if r["family"] == fam)
        ax.plot([b for b, _ in pts], [v for _, v in pts], marker="o", ms=4, label=fam)
    if reference is not None:
        ax.axhline(reference[1], color=COLORS["other"], ls=":", label=reference[0])
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("bits per weight")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig
