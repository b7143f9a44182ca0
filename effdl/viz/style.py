"""What the book's figures share: one palette, the text width, number labels, the figure factory,
Markdown tables, widget images, offline animations, and the few plots that several chapters draw
(bars in groups, a metric against bit width, weight histograms, small matrices).

Every figure function of :mod:`effdl.viz` takes results computed elsewhere in effdl and draws
them; none recomputes a model. One idea per figure, titled axes with units, readable at book
width. Every function returns the Figure.
"""
from __future__ import annotations

import io
import re
from typing import Callable

import matplotlib.pyplot as plt
from matplotlib.animation import Animation
from matplotlib.figure import Figure
import numpy as np
from IPython.display import HTML, Markdown
from ..validation import (Bool, Dict, Instance, Interval, ListOf, Options, PositiveInt, Records, Text, validate_params)

# One palette for the whole book (colour-blind safe, Okabe-Ito).
COLORS = {"compute": "#0072B2", "memory": "#D55E00", "sign": "#CC79A7", "exponent": "#009E73",
          "mantissa": "#56B4E9", "integer": "#E69F00", "fraction": "#56B4E9", "other": "#999999"}
WIDTH = 7.5  # inches: the book's text width


@validate_params(value=Interval(float, None, None))
def readable(value: float) -> str:
    """A number for a label: 4 significant digits past a million, thousands separators
    from 100, 3 significant digits below.

    Taught in chapter 00, "Why efficiency".
    """
    if abs(value) >= 1e6:
        return f"{value:.4g}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


@validate_params(height=Interval(float, 0, None, closed='neither'), ncols=PositiveInt(), width_ratios=ListOf(Interval(float, 0, None, closed='neither'), optional=True), sharex=Bool(), sharey=Bool())
def new_figure(height: float = 3.6, ncols: int = 1, *, width_ratios: list[float] | None = None,
               sharex: bool = False, sharey: bool = False):
    """``(fig, axes)``: one row of ``ncols`` axes at book width, ``height`` inches tall
    (``width_ratios``: one relative width per axis; ``sharex``/``sharey`` as in ``plt.subplots``).

    Behind chapter 00, "Why efficiency".
    """
    if width_ratios is not None and len(width_ratios) != ncols:
        raise ValueError(f"new_figure: width_ratios must have ncols = {ncols} entries; got {width_ratios!r}.")
    return plt.subplots(1, ncols, figsize=(WIDTH, height), constrained_layout=True, width_ratios=width_ratios,
                        sharex=sharex, sharey=sharey)


@validate_params(fig=Instance(Figure, 'a matplotlib Figure'))
def closed(fig):
    """``fig``, closed: a cell ending with the call shows it once (by its repr), not twice
    (repr and the inline backend's flush).

    Taught in chapter 09, "The roofline and the TPU".
    """
    plt.close(fig)
    return fig


@validate_params(fig=Instance(Figure, 'a matplotlib Figure'), dpi=Interval(int, 10, 1000))
def figure_png(fig, dpi: int = 100) -> bytes:
    """PNG bytes of a figure (closed afterwards), for an ``ipywidgets.Image``.

    Behind chapter 00, "Why efficiency".
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


@validate_params(rows=Records(nonempty=False), columns=Dict(), formats=Dict(optional=True))
def markdown_table(rows: list[dict], columns: dict[str, str],
                   formats: dict[str, Callable | str] | None = None):
    """Render ``rows`` as an IPython Markdown table (stable text for nbval).

    ``columns`` maps a row key to its header; ``formats`` maps a key to a
    format spec (``",d"``, ``".3g"``) or a callable; ``None`` shows as "–".

    Taught in chapter 00, "Why efficiency".
    """
    formats = formats or {}

    def cell(key, value):
        if value is None:
            return "–"
        fmt = formats.get(key)
        if callable(fmt):
            return fmt(value)
        return format(value, fmt) if fmt else str(value)

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(k, r.get(k)) for k in columns) + " |" for r in rows]
    return Markdown("\n".join(lines))


# Font Awesome icon classes in matplotlib's jshtml controls → Unicode symbols.
_ICONS = {"fa fa-minus": "−", "fa fa-fast-backward": "⏮", "fa fa-step-backward": "⏴",
          "fa fa-play fa-flip-horizontal": "◀", "fa fa-pause": "⏸", "fa fa-play": "▶",
          "fa fa-step-forward": "⏵", "fa fa-fast-forward": "⏭", "fa fa-plus": "+"}


@validate_params(anim=Instance(Animation, 'a matplotlib Animation'), default_mode=Options(('loop', 'once', 'reflect')))
def jshtml(anim, *, default_mode: str = "loop"):
    """The animation as a self-contained, offline ``IPython.display.HTML``: ``anim.to_jshtml()``
    without the Font Awesome stylesheet from a CDN (which the offline HTML book must not load);
    the control buttons show Unicode symbols instead.

    Taught in chapter 09, "The roofline and the TPU".
    """
    html = anim.to_jshtml(default_mode=default_mode)
    html = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", html)
    html = re.sub(r'<i class="(fa [^"]+)"></i>', lambda m: _ICONS.get(m.group(1), "·"), html)
    assert "://" not in re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", html), "jshtml still loads a URL"
    return HTML(html)


# ---------------------------------------------------------------- plots several chapters draw
@validate_params(values=Dict(), ylabel=Text(), title=Text(), log=Bool())
def grouped_bars(values: dict[str, dict[str, float]], *, ylabel: str, title: str, log: bool = False):
    """One group of bars per outer key, one bar per inner key (e.g. layer → method → ms).

    Taught in chapter 07, "Low-rank approximation".
    """
    fig, ax = new_figure(3.4)
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


@validate_params(rows=Records(), key=Text(), ylabel=Text(), title=Text(), log=Bool(), reference=Instance(tuple, 'a (label, value) tuple', optional=True))
def metric_vs_bits(rows: list[dict], key: str, *, ylabel: str, title: str, log: bool = False,
                   reference: tuple[str, float] | None = None):
    """A metric (``rows[i][key]``) against bit width (``rows[i]["bits"]``), one line per ``rows[i]["family"]``.

    ``reference``: an optional (label, value) drawn as a horizontal line, e.g.
    the fp32 accuracy.

    Taught in chapter 01, "Number representations".
    """
    fig, ax = new_figure(3.4)
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


@validate_params(panels=ListOf(Instance(tuple, 'a (label, weights) tuple')), bins=PositiveInt(), title=Text(), markers=Dict(optional=True))
def weight_histograms(panels: list[tuple[str, np.ndarray]], *, bins: int = 81, title: str = "",
                      markers: dict[str, np.ndarray] | None = None):
    """Side-by-side histograms of weight values (zeros of pruned weights left out).

    ``panels``: (label, 1-D array of weights); the x range is shared.
    ``markers``: {panel label: values} drawn as thin vertical lines (e.g. a codebook).

    Taught in chapter 02, "Pruning".
    """
    fig, axes = new_figure(2.9, ncols=len(panels), sharex=True)
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


@validate_params(panels=ListOf(Instance(tuple, 'a (label, matrix) tuple')), title=Text(), fmt=Text())
def matrices(panels: list[tuple[str, np.ndarray]], *, title: str, fmt: str = ".2f"):
    """Small matrices side by side as annotated heat maps (one shared colour scale per panel).

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    fig, axes = new_figure(2.6, ncols=len(panels))
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
