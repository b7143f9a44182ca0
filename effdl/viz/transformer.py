"""Chapter 18's views: prefill and decode on the roofline, FlashAttention's IO, decoding speed, training curves.

The batch / context-length widget follows the book's pattern:
:func:`decode_roofline_state` (pure: calls ``effdl.transformer`` and
``effdl.hardware.roofline``) → :func:`decode_roofline_figure` →
:func:`decode_roofline_widget` (binds two sliders to them).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from ..hardware import roofline as rl
from ..llm import attention as att
from ..transformer import PUBLISHED, TransformerSpec, get_spec
from ..validation import (Dict, Instance, Interval, ListOf, OneOf, Options, PositiveInt, Records, Text,
                          validate_params)
from .roofline import draw_roofline
from .style import WIDTH, figure_png, readable

SPEC_NAME = OneOf(Options(tuple(PUBLISHED) + ("lm", "draft")), Instance(TransformerSpec, "a TransformerSpec"))
CHIP = OneOf(Text(), Instance(rl.Roofline, "an effdl.hardware.roofline.Roofline"))
BATCH = Interval(int, 1, 1 << 16)
SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
PHASE_COLORS = {"prefill": "tab:green", "decode": "tab:red"}


def _phase(spec: TransformerSpec, roof: rl.Roofline, phase: str, t: int, b: int) -> dict:
    cost = spec.step_cost(phase, t, b)
    seconds = max(cost["flops"] / roof.peak, cost["bytes"] / roof.bandwidth)     # the roofline's time
    tokens = b * (t if phase == "prefill" else 1)
    return {**cost, "attainable": float(roof.attainable(cost["intensity"])), "seconds": seconds,
            "tokens_per_s": tokens / seconds, "bound": roof.bound(cost["intensity"])}


@validate_params(batch_size=BATCH, context=PositiveInt(), spec=SPEC_NAME, chip=CHIP, precision=Text(optional=True))
def decode_roofline_state(batch_size: int = 1, context: int = 1024, *, spec="llama-2-7b", chip="V100",
                          precision: str | None = None) -> dict:
    """Prefill and decode of ``spec`` at ``batch_size`` and ``context`` on one chip's roofline.

    ``chip``: a name from ``effdl.hardware.specs`` (at ``precision``, default
    the chip's own) or a :class:`~effdl.hardware.roofline.Roofline` (e.g. a
    measured one). The x-axis counts FLOPs per byte of off-chip traffic
    (weights and KV cache; :meth:`TransformerSpec.step_cost`). Returns
    ``{"spec", "roofline", "batch_size", "context", "prefill", "decode",
    "sweep"}``; ``prefill``/``decode`` hold ``flops``, ``bytes``,
    ``intensity``, ``attainable`` (FLOP/s), ``seconds`` per step,
    ``tokens_per_s`` and ``bound``; ``sweep`` the decode intensities at
    batch sizes 1 … 1024 (the path the slider moves along).

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    s = spec if isinstance(spec, TransformerSpec) else get_spec(spec)
    if context > s.context:
        raise ValueError(f"decode_roofline_state: context must be at most {s.name}'s ({s.context}); "
                         f"got {context!r}.")
    roof = chip if isinstance(chip, rl.Roofline) else rl.Roofline.from_chip(chip, precision, "dram")
    sweep = [{"batch_size": b, **_phase(s, roof, "decode", context, b)} for b in SWEEP]
    return {"spec": s, "roofline": roof, "batch_size": batch_size, "context": context,
            "prefill": _phase(s, roof, "prefill", context, batch_size),
            "decode": _phase(s, roof, "decode", context, batch_size), "sweep": sweep}


@validate_params(state=Dict(), ax=Instance(Axes, "a matplotlib Axes", optional=True))
def decode_roofline_figure(state: dict, *, ax=None):
    """The widget's picture: prefill and decode as two points on the chip's roofline, decode's batch path dotted.

    ``state``: :func:`decode_roofline_state`. Also the widget's static rendering.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(WIDTH, 3.8), constrained_layout=True)
    roof, s = state["roofline"], state["spec"]
    scale, unit = (1e12, "TFLOP/s") if roof.peak >= 1e12 else (1e9, "GFLOP/s")
    draw_roofline(ax, roof, x_range=(0.1, 1e5), scale=scale, color="0.3", label=f"{roof.name}")
    path = state["sweep"]
    ax.plot([p["intensity"] for p in path], [p["attainable"] / scale for p in path], ".:", color="tab:red",
            lw=1.2, ms=5, zorder=3, label="decode, batch 1 … 1024")
    for phase in ("prefill", "decode"):
        p = state[phase]
        ax.plot(p["intensity"], p["attainable"] / scale, "o", ms=9, color=PHASE_COLORS[phase], mec="k", zorder=4,
                label=f"{phase}: {readable(p['tokens_per_s'])} tokens/s ({p['bound']}-bound)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(0.1, 1e5)
    ax.set_xlabel("FLOPs per byte of weights + KV cache moved")
    ax.set_ylabel(f"attainable ({unit})")
    ax.set_title(f"{s.name}, batch {state['batch_size']}, context {state['context']} · {roof.name}",
                 fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig if fig is not None else ax.figure


@validate_params(batch_size=BATCH, context=PositiveInt(), spec=SPEC_NAME, chip=CHIP, precision=Text(optional=True))
def decode_roofline_widget(batch_size: int = 1, context: int = 1024, *, spec="llama-2-7b", chip="V100",
                           precision: str | None = None):
    """Two sliders (batch size, context length) moving prefill and decode on the roofline.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    kwargs = dict(spec=spec, chip=chip, precision=precision)
    state = decode_roofline_state(batch_size, context, **kwargs)       # validate before building controls
    max_t = state["spec"].context
    contexts = sorted({2 ** k for k in range(4, 20) if 2 ** k <= max_t} | {context})
    batch = widgets.SelectionSlider(options=sorted(set(SWEEP) | {batch_size}), value=batch_size,
                                    description="batch", continuous_update=False)
    ctx = widgets.SelectionSlider(options=contexts, value=context, description="context",
                                  continuous_update=False)
    image = widgets.Image(format="png")

    def redraw(_=None):
        fig = decode_roofline_figure(decode_roofline_state(batch.value, ctx.value, **kwargs))
        image.value = figure_png(fig, dpi=80)

    batch.observe(redraw, names="value")
    ctx.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([batch, ctx]), image])


@validate_params(ns=ListOf(PositiveInt()), d=PositiveInt(), srams=ListOf(Interval(int, 2, None)),
                 title=Text(optional=True))
def attention_io_figure(ns, d: int = 64, srams=(25_000, 100_000), *, title: str | None = None):
    """HBM accesses of standard attention and of FlashAttention (one per SRAM size) against sequence length.

    Counts in elements, from :func:`effdl.llm.attention.standard_attention_io`
    and :func:`~effdl.llm.attention.flash_attention_io`.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), constrained_layout=True)
    ns = sorted(ns)
    ax.plot(ns, [att.standard_attention_io(n, d)["total"] for n in ns], "o-", color="k",
            label="standard (S and P in HBM)")
    for i, m in enumerate(srams):
        ax.plot(ns, [att.flash_attention_io(n, d, m)["total"] for n in ns], "s--", color=f"C{i}",
                label=f"FlashAttention, SRAM {readable(m)} elements")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("HBM reads + writes (elements)")
    ax.set_title(title or f"Attention's memory traffic, head width d = {d}", fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


@validate_params(rows=Records(), title=Text(optional=True))
def decode_time_figure(rows: list[dict], *, title: str | None = None):
    """Time to produce one token against its position, with and without a KV cache (measured rows).

    ``rows``: dicts with ``t`` (position), ``cache_ms`` and ``no_cache_ms``.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4), constrained_layout=True)
    t = [r["t"] for r in rows]
    ax.plot(t, [r["no_cache_ms"] for r in rows], "o-", color="tab:orange", label="no cache: all t positions")
    ax.plot(t, [r["cache_ms"] for r in rows], "s-", color="tab:blue", label="KV cache: one position")
    ax.set_xlabel("position t of the new token")
    ax.set_ylabel("time per token (ms)")
    ax.set_title(title or "One decoding step of the book's model", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return fig


@validate_params(record=Dict(), title=Text(optional=True))
def loss_curves(record: dict, *, title: str | None = None):
    """Validation loss (bits per byte) against training step for each model of the ``lm`` record.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    fig, ax = plt.subplots(figsize=(WIDTH, 3.2), constrained_layout=True)
    for i, (name, m) in enumerate(record["models"].items()):
        curve = m["curve"]
        ax.plot([c["step"] for c in curve], [c["val_loss"] / np.log(2) for c in curve], "o-", ms=3,
                color=f"C{i}", label=f"{name} ({m['params']:,} parameters)")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation loss (bits per byte)")
    ax.set_title(title or "Training the book's language models", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return fig
