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
