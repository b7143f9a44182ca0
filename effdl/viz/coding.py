"""Figures of chapter 4 (Huffman coding and Deep Compression): symbol statistics, the relative-index
width, where a compressed file's bytes go, the pipeline's stages and sparse speed-ups.

Each function draws results of :mod:`effdl.coding`, :mod:`effdl.compression` or their records.
"""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import FuncFormatter

from .style import COLORS, grouped_bars, new_figure
from ..validation import Dict, Instance, ListOf, PositiveInt, Records, Text, validate_params


@validate_params(panels=ListOf(Instance(tuple, 'a (label, stream, code) tuple')), title=Text())
def symbol_histograms(panels: list[tuple[str, np.ndarray, dict]], *, title: str):
    """Counts of each symbol of a stream, with the Huffman codeword length on a second axis.

    ``panels``: [(label, stream (n,) int, code {symbol: codeword}), …], one subplot each.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    fig, axes = new_figure(3.2, ncols=len(panels))
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


@validate_params(rows=Records(), title=Text(), chosen=PositiveInt(optional=True))
def index_width_sweep(rows: list[dict], *, title: str, chosen: int | None = None):
    """Bits per non-zero weight against the relative-index width: fixed width and Huffman-coded.

    ``rows``: [{"index_bits", "fixed", "huffman", "fillers"}, …] with the two costs in
    bits per non-zero and ``fillers`` as filler entries per non-zero.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    fig, (ax, ax2) = new_figure(3.2, ncols=2)
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


@validate_params(breakdowns=Dict(), title=Text())
def byte_breakdown(breakdowns: dict[str, dict], *, title: str):
    """Where the bytes of compressed files go: one stacked bar per layer of each file.

    ``breakdowns``: {file label: :func:`effdl.compression.size_breakdown` result}.

    Taught in chapter 04, "Huffman coding and Deep Compression".
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
    fig, ax = new_figure(3.6)
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


@validate_params(stages=Dict(), title=Text())
def stage_sizes(stages: dict[str, dict[str, tuple[int, float]]], *, title: str):
    """Size after each Deep Compression stage (log scale) with the ratio and accuracy on each bar.

    ``stages``: {model: {stage: (bytes, accuracy %)}} with stages in pipeline order.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    models = list(stages)
    fig, axes = new_figure(3.4, ncols=len(models))
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


@validate_params(values=Dict(), title=Text())
def speedups(values: dict[str, dict[str, float]], *, title: str):
    """Measured speed-up (dense time ÷ sparse time) per layer and backend, with the break-even line.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    fig = grouped_bars(values, ylabel="speed-up over dense (×)", title=title, log=True)
    ax = fig.axes[0]
    ax.axhline(1.0, color="black", lw=0.8)
    ax.tick_params(axis="x", labelsize=7)
    times = FuncFormatter(lambda v, _: f"{v:g}×")
    ax.yaxis.set_major_formatter(times)
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}×" if v in (0.2, 0.5, 2, 5) else ""))
    return fig
