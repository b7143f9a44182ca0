"""Figures of the book: each function takes results computed elsewhere in effdl
and draws them; none recomputes a model. One idea per figure, titled axes
with units, readable at book width. Every function returns the Figure.

Chapters 0 (model growth, energy) and 1 (number formats) use these.
"""
from __future__ import annotations

import matplotlib
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


# ---------------------------------------------------------------- chapter 2
def pruning_curves(curves: dict):
    """Accuracy against fraction of weights pruned: prune only, prune + retrain, iterative.

    ``curves``: the ``"curves"`` record of ``effdl precompute pruning``.
    """
    fig, ax = _figure(3.6)
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


def weight_histograms(panels: list[tuple[str, np.ndarray]], *, bins: int = 81, title: str = "",
                      markers: dict[str, np.ndarray] | None = None):
    """Side-by-side histograms of weight values (zeros of pruned weights left out).

    ``panels``: (label, 1-D array of weights); the x range is shared.
    ``markers``: {panel label: values} drawn as thin vertical lines (e.g. a codebook).
    """
    fig, axes = _figure(2.9, ncols=len(panels), sharex=True)
    axes = np.atleast_1d(axes)
    lim = max(np.abs(w).max() for _, w in panels)
    edges = np.linspace(-lim, lim, bins)
    for ax, (label, w) in zip(axes, panels):
        nz = w[w != 0]
        ax.hist(nz, bins=edges, color=COLORS["compute"])
        ax.set_title(f"{label}\n{nz.size:,} non-zero", fontsize=9)
        ax.set_xlabel("weight value")
        for v in (markers or {}).get(label, []):
            ax.axvline(v, color=COLORS["memory"], lw=0.6, alpha=0.8)
    axes[0].set_ylabel("count")
    if title:
        fig.suptitle(title)
    return fig


def sensitivity(curves: dict[str, list[tuple[float, float]]], *, title: str):
    """Accuracy against sparsity, one line per layer pruned alone."""
    fig, ax = _figure(3.4)
    for name, pts in curves.items():
        ax.plot([100 * s for s, _ in pts], [a for _, a in pts], marker="o", ms=4, label=name)
    ax.set_xlabel("weights pruned in this layer only (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def prediction_grid(images: np.ndarray, labels: np.ndarray, predictions: dict[str, np.ndarray], *, title: str):
    """Digits with their label and each model's prediction; a changed prediction is red.

    ``images``: (n, 28, 28); ``predictions``: {model name: (n,) predicted labels}.
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


def sparsity_view(state: dict, curve: dict | None = None):
    """The sparsity widget's picture: remaining weights of one layer, and accuracy vs sparsity.

    ``state``: :func:`effdl.viz.widgets.sparsity_state`; ``curve``: the precomputed curves record.
    """
    fig, (ax_h, ax_a) = _figure(3.0, ncols=2)
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


# ---------------------------------------------------------------- chapter 8
def matrices(panels: list[tuple[str, np.ndarray]], *, title: str, fmt: str = ".2f"):
    """Small matrices side by side as annotated heat maps (one shared colour scale per panel)."""
    fig, axes = _figure(2.6, ncols=len(panels))
    for ax, (label, m) in zip(np.atleast_1d(axes), panels):
        m = np.asarray(m, dtype=float)
        lim = max(np.abs(m).max(), 1e-12)
        ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, format(v + 0.0, fmt), ha="center", va="center", fontsize=7,  # + 0.0: no "-0.00"
                    color="white" if abs(v) > 0.6 * lim else "black")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def grouped_bars(values: dict[str, dict[str, float]], *, ylabel: str, title: str, log: bool = False):
    """One group of bars per outer key, one bar per inner key (e.g. layer → method → ms)."""
    fig, ax = _figure(3.4)
    groups = list(values)
    series = list(dict.fromkeys(k for v in values.values() for k in v))
    width = 0.8 / len(series)
    palette = [COLORS["compute"], COLORS["memory"], COLORS["exponent"], COLORS["integer"], COLORS["sign"]]
    for i, name in enumerate(series):
        xs = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        ax.bar(xs, [values[g].get(name, np.nan) for g in groups], width, label=name,
               color=palette[i % len(palette)])
    ax.set_xticks(np.arange(len(groups)), groups)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


# ---------------------------------------------------------------- chapter 7
def energy_spectra(spectra: dict[str, np.ndarray], *, title: str, what: str = "σᵢ²"):
    """How fast a matrix's energy is captured by its top components, one line per matrix.

    ``spectra``: {label: energies, descending} — squared singular values of a
    weight matrix, or eigenvalues of a layer's response covariance. Left: each
    energy as a fraction of the total (log scale); right: the cumulative
    fraction kept by the top r, the quantity rank selection trades off.
    """
    fig, (ax_s, ax_c) = _figure(3.3, ncols=2)
    palette = [COLORS["compute"], COLORS["memory"], COLORS["exponent"], COLORS["integer"]]
    for (label, e), color in zip(spectra.items(), palette * 2):
        e = np.asarray(e, dtype=float)
        frac = e / e.sum()
        r = np.arange(1, len(e) + 1)
        ax_s.semilogy(r, frac, color=color, label=label)
        ax_c.plot(r, 100 * np.cumsum(frac), color=color, label=label)
    ax_s.set_xlabel("index i (descending)")
    ax_s.set_ylabel(f"{what} / Σ (log scale)")
    ax_s.set_title("each component's share of the energy", fontsize=9)
    ax_c.set_xlabel("rank r kept")
    ax_c.set_ylabel("energy kept (%)")
    ax_c.set_ylim(0, 101)
    ax_c.set_title("cumulative energy of the top r", fontsize=9)
    for ax in (ax_s, ax_c):
        ax.grid(True, alpha=0.3)
    ax_c.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return fig


def accuracy_vs_rank(curves: dict[str, tuple[list, list]], *, dense_acc: float,
                     param_ratio: dict[int, float], title: str):
    """Accuracy of a factorized layer against its rank, one line per method.

    ``curves``: {label: (ranks, accuracies in %)}; ``param_ratio``: {rank:
    dense ÷ factorized parameters of the layer}, printed under the ticks.
    """
    fig, ax = _figure(3.6)
    styles = [(COLORS["memory"], "s"), (COLORS["compute"], "o"), (COLORS["exponent"], "^")]
    for (label, (ranks, accs)), (color, marker) in zip(curves.items(), styles * 2):
        ax.plot(ranks, accs, marker=marker, color=color, label=label)
    ax.axhline(dense_acc, color=COLORS["other"], ls=":", label=f"dense layer ({dense_acc:.1f} %)")
    ax.set_xscale("log")
    ticks = sorted(param_ratio)
    ax.set_xticks(ticks, [f"{r}\n{param_ratio[r]:.3g}×" for r in ticks])
    ax.minorticks_off()
    ax.set_xlabel("rank r (and how many times fewer parameters the layer has)")
    ax.set_ylabel("test accuracy (%)")
    low = min(min(a) for _, a in curves.values())
    ax.set_ylim(max(0, low - 3), 100)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def conv_decomposition(c: int, d: int, k: int, rank: int, *, out_hw: int | None = None):
    """Zhang et al.'s decomposition as a picture: d filters k×k×c → d′ filters k×k×c, then d filters 1×1×d′.

    Boxes are feature maps (height ∝ channels); arrows carry the filter banks,
    labelled with their shapes and, if ``out_hw`` is given, MACs per image.
    """
    fig, (ax_a, ax_b) = plt.subplots(2, 1, figsize=(WIDTH, 3.6), constrained_layout=True)
    hw = 1 if out_hw is None else out_hw * out_hw
    scale = 1.6 / max(c, d, rank)

    def fmap(ax, x, channels, label, color):
        h = max(channels * scale, 0.08)
        ax.add_patch(Rectangle((x, -h / 2), 0.35, h, color=color, alpha=0.8))
        ax.text(x + 0.175, -0.95, label, ha="center", va="top", fontsize=8)

    def bank(ax, x0, x1, text):
        ax.annotate("", xy=(x1, 0), xytext=(x0, 0), arrowprops={"arrowstyle": "->", "lw": 1.2})
        ax.text((x0 + x1) / 2, 0.12, text, ha="center", va="bottom", fontsize=8)

    dense_macs = d * c * k * k * hw
    fmap(ax_a, 0, c, f"input, {c} channels", COLORS["other"])
    bank(ax_a, 0.45, 4.15, f"{d} filters {k}×{k}×{c}" + (f"\n{dense_macs:,} MACs" if out_hw else ""))
    fmap(ax_a, 4.25, d, f"output, {d} channels", COLORS["compute"])
    ax_a.set_title(f"original layer: {d}·{c}·{k}² = {d * c * k * k:,} weights", fontsize=9)

    first, second = rank * c * k * k * hw, d * rank * hw
    fmap(ax_b, 0, c, f"input, {c} channels", COLORS["other"])
    bank(ax_b, 0.45, 2.0, f"{rank} filters {k}×{k}×{c}" + (f"\n{first:,} MACs" if out_hw else ""))
    fmap(ax_b, 2.1, rank, f"{rank} channels", COLORS["integer"])
    bank(ax_b, 2.55, 4.15, f"{d} filters 1×1×{rank}" + (f"\n{second:,} MACs" if out_hw else ""))
    fmap(ax_b, 4.25, d, f"output, {d} channels", COLORS["compute"])
    ax_b.set_title(f"decomposed, d′ = {rank}: {rank}·{c}·{k}² + {d}·{rank} = "
                   f"{rank * c * k * k + d * rank:,} weights", fontsize=9)
    for ax in (ax_a, ax_b):
        ax.set_xlim(-0.2, 4.8)
        ax.set_ylim(-1.3, 1.0)
        ax.axis("off")
    fig.suptitle(f"Decomposing a {k}×{k} convolution ({c} → {d} channels) through {rank} channels", fontsize=10)
    return fig


def speedup_vs_accuracy(rows: list[dict], *, dense_acc: float, title: str):
    """Accuracy against theoretical speedup for several ways of choosing ranks.

    ``rows``: dicts with ``method`` (a label), ``speedup``, ``acc_no_ft`` and
    ``acc_ft`` (test accuracy %, before and after fine-tuning). Hollow
    markers: before fine-tuning; filled: after.
    """
    fig, ax = _figure(3.6)
    palette = [COLORS["memory"], COLORS["compute"], COLORS["exponent"]]
    for method, color in zip(dict.fromkeys(r["method"] for r in rows), palette * 2):
        pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r["speedup"])
        x = [r["speedup"] for r in pts]
        ax.plot(x, [r["acc_no_ft"] for r in pts], ls="--", marker="o", mfc="white", color=color,
                label=f"{method}, no fine-tuning")
        ax.plot(x, [r["acc_ft"] for r in pts], ls="-", marker="o", color=color, label=f"{method}, fine-tuned")
    ax.axhline(dense_acc, color=COLORS["other"], ls=":", label=f"dense ({dense_acc:.1f} %)")
    ax.set_xlabel("theoretical speedup of the conv layers (dense MACs ÷ decomposed MACs, ×)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return fig


# ---------------------------------------------------------------- chapter 3
def accuracy_vs_size(series: dict[str, list[tuple[float, float]]], *, reference: float, title: str):
    """Accuracy against compressed size (% of dense fp32), one line per method.

    ``series``: {method: [(size percent, accuracy percent), …]}; ``reference``: dense accuracy.
    """
    fig, ax = _figure(3.6)
    palette = [COLORS["memory"], COLORS["compute"], COLORS["exponent"]]
    for (name, pts), color in zip(series.items(), palette):
        pts = sorted(pts)
        ax.plot([p for p, _ in pts], [a for _, a in pts], marker="o", ms=4, color=color, label=name)
    ax.axhline(reference, color=COLORS["other"], ls=":", label="dense fp32")
    ax.set_xscale("log")
    sizes = [p for pts in series.values() for p, _ in pts]
    ax.set_xticks([t for t in (0.5, 1, 2, 5, 10, 20, 50, 100) if min(sizes) / 2 <= t <= max(sizes) * 2])
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g} %"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    lowest = min(a for pts in series.values() for _, a in pts)
    ax.set_ylim(lowest - 2, max(reference, max(a for pts in series.values() for _, a in pts)) + 1)
    ax.set_xlabel("model size (% of dense fp32, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


# ---------------------------------------------------------------- chapter 6
METHOD_COLORS = {"fp32": COLORS["other"], "binary": COLORS["memory"], "twn": COLORS["exponent"],
                 "ttq": COLORS["compute"]}


def ternary_evolution(history: dict, layers: list[str], *, title: str, steps_per_epoch: float | None = None):
    """TTQ's weight evolution (Zhu et al.'s figure): per layer, Wp and −Wn above, the fractions of
    negative / zero / positive weights below, against training steps.

    ``history``: :meth:`effdl.ternary.WeightHistory.as_dict`; ``steps_per_epoch`` adds epoch ticks.
    """
    fig, axes = plt.subplots(2, len(layers), figsize=(WIDTH, 4.6), constrained_layout=True, sharex=True,
                             squeeze=False)
    steps = np.asarray(history["step"])
    for col, name in enumerate(layers):
        row = history["layers"][name]
        top, bottom = axes[0, col], axes[1, col]
        top.plot(steps, row["wp"], color=COLORS["compute"], label="Wp")
        top.plot(steps, -np.asarray(row["wn"]), color=COLORS["memory"], label="−Wn")
        top.axhline(0, color="black", lw=0.5)
        top.set_title(name, fontsize=9)
        neg, zero, pos = (100 * np.asarray(row[k]) for k in ("neg", "zero", "pos"))
        bottom.stackplot(steps, neg, zero, pos, colors=[COLORS["memory"], "#DDDDDD", COLORS["compute"]],
                         labels=["negative", "zero", "positive"])
        bottom.set_ylim(0, 100)
        if steps_per_epoch:
            for e in np.arange(steps_per_epoch, steps.max() + 1, steps_per_epoch):
                for ax in (top, bottom):
                    ax.axvline(e, color="black", lw=0.4, ls=":")
    axes[0, 0].set_ylabel("ternary value")
    axes[1, 0].set_ylabel("weights (%)")
    axes[0, -1].legend(fontsize=7, loc="center right")
    handles, labels = axes[1, -1].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], fontsize=7, loc="outside right center")
    fig.supxlabel("training step (batches of 64 images)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def weight_thresholds(weights: np.ndarray, thresholds: dict[str, float], *, title: str, bins: int = 121):
    """Histogram of a layer's weights with each method's ±Δ marked and the share it zeroes in the legend.

    ``thresholds``: {label: Δ}; weights with |w| ≤ Δ become 0 under that rule.
    """
    fig, ax = _figure(3.0)
    w = np.asarray(weights, dtype=float).ravel()
    lim = np.abs(w).max()
    ax.hist(w, bins=np.linspace(-lim, lim, bins), color=COLORS["other"], alpha=0.7)
    palette = [COLORS["exponent"], COLORS["compute"], COLORS["memory"], COLORS["sign"]]
    for (label, delta), color, ls in zip(thresholds.items(), palette, ["--", "-", "-.", ":"]):
        share = 100 * np.mean(np.abs(w) <= delta)
        for x in (-delta, delta):
            ax.axvline(x, color=color, lw=1.6, ls=ls, label=f"{label}: ±{delta:.4f}, {share:.1f} % become 0"
                       if x > 0 else None)
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def kernel_images(panels: list[tuple[str, np.ndarray]], *, title: str, ncols: int = 10):
    """Small kernels as images, one block per panel (e.g. full precision next to ternary).

    ``panels``: (label, (n, k, k) array); each panel has its own symmetric colour scale
    (blue negative, white zero, red positive) so that a ternary panel shows exactly three colours.
    """
    n = max(len(k) for _, k in panels)
    rows = -(-n // ncols)
    fig = plt.figure(figsize=(WIDTH, 0.95 * rows * len(panels) + 0.5), constrained_layout=True)
    subfigs = np.atleast_1d(fig.subfigures(len(panels), 1))
    for sub, (label, kernels) in zip(subfigs, panels):
        kernels = np.asarray(kernels, dtype=float)
        lim = max(np.abs(kernels).max(), 1e-12)
        axes = np.atleast_2d(sub.subplots(rows, ncols))
        for i, ax in enumerate(axes.flat):
            ax.set_xticks([])
            ax.set_yticks([])
            if i < len(kernels):
                ax.imshow(kernels[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
            else:
                ax.axis("off")
        sub.suptitle(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def accuracy_vs_bytes(rows: list[dict], *, title: str):
    """Test accuracy against stored size (kB, log scale): one marker per (model, method).

    ``rows``: dicts with ``model``, ``method`` (fp32 / binary / twn / ttq), ``kbytes`` and ``acc``.
    """
    fig, ax = _figure(3.6)
    markers, labels = {}, {}
    for r in rows:
        marker = markers.setdefault(r["model"], "os^D"[len(markers) % 4])
        ax.scatter(r["kbytes"], r["acc"], s=55, marker=marker, color=METHOD_COLORS.get(r["method"], "black"),
                   zorder=3)
        # points that coincide on the plot (same accuracy, sizes within 0.5 %) share one label
        key = (round(float(np.log10(r["kbytes"])), 2), r["acc"])
        labels.setdefault(key, [r["kbytes"], r["acc"], []])[2].append(r["method"])
    for x, y, methods in labels.values():
        ax.annotate(" = ".join(methods), (x, y), textcoords="offset points", xytext=(6, 3), fontsize=7)
    for model, marker in markers.items():
        pts = sorted((r["kbytes"], r["acc"]) for r in rows if r["model"] == model)
        ax.plot(*zip(*pts), color=COLORS["other"], lw=0.6, zorder=1)
        ax.scatter([], [], marker=marker, color="black", label=model)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("stored size (kB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


# ---------------------------------------------------------------- chapter 4
def symbol_histograms(panels: list[tuple[str, np.ndarray, dict]], *, title: str):
    """Counts of each symbol of a stream, with the Huffman codeword length on a second axis.

    ``panels``: [(label, stream (n,) int, code {symbol: codeword}), …], one subplot each.
    """
    fig, axes = _figure(3.2, ncols=len(panels))
    axes = np.atleast_1d(axes)
    for ax, (label, stream, code) in zip(axes, panels):
        counts = np.bincount(np.asarray(stream))
        symbols = np.arange(counts.size)
        ax.bar(symbols, counts, color=COLORS["compute"], width=0.85)
        ax.set_xlabel("symbol")
        ax.set_ylabel("count", color=COLORS["compute"])
        ax.set_title(label, fontsize=10)
        twin = ax.twinx()
        used = [s for s in symbols if s in code]
        twin.plot(used, [len(code[s]) for s in used], "o-", ms=3, color=COLORS["memory"])
        twin.set_ylabel("codeword length (bits)", color=COLORS["memory"])
        twin.set_ylim(0, max(len(w) for w in code.values()) + 1)
    fig.suptitle(title)
    return fig


def index_width_sweep(rows: list[dict], *, title: str, chosen: int | None = None):
    """Bits per non-zero weight against the relative-index width: fixed width and Huffman-coded.

    ``rows``: [{"index_bits", "fixed", "huffman", "fillers"}, …] with the two costs in
    bits per non-zero and ``fillers`` as filler entries per non-zero.
    """
    fig, (ax, ax2) = _figure(3.2, ncols=2)
    bits = [r["index_bits"] for r in rows]
    ax.plot(bits, [r["fixed"] for r in rows], "o-", ms=4, color=COLORS["memory"], label="fixed width")
    ax.plot(bits, [r["huffman"] for r in rows], "o-", ms=4, color=COLORS["compute"], label="Huffman-coded")
    if chosen is not None:
        ax.axvline(chosen, color=COLORS["other"], ls=":", label=f"chosen: {chosen} bits")
    ax.set_xlabel("relative-index width (bits)")
    ax.set_ylabel("bits per non-zero weight\n(weight index + relative index)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    floor = 1e-4                                     # below this the log axis would stretch to 0
    ax2.semilogy(bits, [r["fillers"] if r["fillers"] >= floor else np.nan for r in rows], "o-", ms=4,
                 color=COLORS["exponent"], label="measured")
    if "expected" in rows[0]:
        ax2.semilogy(bits, [r["expected"] if r["expected"] >= floor else np.nan for r in rows], "--",
                     color=COLORS["other"], label="i.i.d. Bernoulli model")
    ax2.set_xlabel("relative-index width (bits)")
    ax2.set_ylabel("filler entries per non-zero")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    return fig


BYTE_PARTS = {"codebook": "codebook", "code_lengths": "Huffman tables", "weight_index_huffman": "weight indexes",
              "relative_index_huffman": "relative indexes", "bias": "biases (fp32)"}


def byte_breakdown(breakdowns: dict[str, dict], *, title: str):
    """Where the bytes of compressed files go: one stacked bar per layer of each file.

    ``breakdowns``: {file label: :func:`effdl.compression.size_breakdown` result}.
    """
    labels, stacks = [], []
    for file_label, b in breakdowns.items():
        for name, layer in b["layers"].items():
            labels.append(f"{file_label}\n{name.removesuffix('.weight')}")
            stacks.append([layer[k] for k in BYTE_PARTS])
        labels.append(f"{file_label}\nheader+CRC")
        stacks.append([0, 0, 0, 0, 0, b["header_bytes"] + b["checksum_bytes"] + b["other_bytes"]])
    palette = [COLORS["exponent"], COLORS["other"], COLORS["compute"], COLORS["memory"], COLORS["integer"],
               COLORS["sign"]]
    fig, ax = _figure(3.6)
    bottom = np.zeros(len(labels))
    for i, part in enumerate(list(BYTE_PARTS.values()) + ["header, table, checksum"]):
        vals = np.array([s[i] if i < len(s) else 0 for s in stacks], dtype=float)
        ax.bar(np.arange(len(labels)), vals / 1024, bottom=bottom / 1024, color=palette[i], label=part)
        bottom += vals
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=7)
    ax.set_ylim(0, bottom.max() / 1024 * 1.3)
    ax.set_ylabel("KiB in the file")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def stage_sizes(stages: dict[str, dict[str, tuple[int, float]]], *, title: str):
    """Size after each Deep Compression stage (log scale) with the ratio and accuracy on each bar.

    ``stages``: {model: {stage: (bytes, accuracy %)}} with stages in pipeline order.
    """
    models = list(stages)
    fig, axes = _figure(3.4, ncols=len(models))
    axes = np.atleast_1d(axes)
    palette = [COLORS["other"], COLORS["memory"], COLORS["integer"], COLORS["compute"]]
    for ax, model in zip(axes, models):
        names = list(stages[model])
        sizes = [stages[model][s][0] for s in names]
        ax.bar(range(len(names)), [s / 1024 for s in sizes], color=palette[:len(names)])
        for i, (n_bytes, acc) in enumerate(stages[model].values()):
            ax.text(i, n_bytes / 1024 * 1.15, f"{sizes[0] / n_bytes:.1f}×\n{acc:.1f} %", ha="center", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylim(min(sizes) / 1024 / 2, max(sizes) / 1024 * 4)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_ylabel("KiB (log scale)")
        ax.set_title(model, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title)
    return fig


def speedups(values: dict[str, dict[str, float]], *, title: str):
    """Measured speed-up (dense time ÷ sparse time) per layer and backend, with the break-even line."""
    fig = grouped_bars(values, ylabel="speed-up over dense (×)", title=title, log=True)
    ax = fig.axes[0]
    ax.axhline(1.0, color="black", lw=0.8)
    ax.tick_params(axis="x", labelsize=7)
    times = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}×")
    ax.yaxis.set_major_formatter(times)
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}×" if v in (0.2, 0.5, 2, 5) else ""))
    return fig
