"""Flip-books: a widget's states drawn ahead of time, so that the static book still shows the interaction.

A live widget (``*_widget``) redraws ``*_figure(*_state(...))`` each time a
control moves; a page without a kernel shows only its starting state. A
flip-book calls the same figure function for a few chosen settings, keeps
each picture as a small PNG, and plays them in the page: a play/pause
button, previous/next buttons and a slider, in plain HTML and a few lines of
JavaScript, with nothing loaded from the network. Cells that show one pass
under nbval as stored: the output holds no random id and no timestamp, only
the frames (palette PNGs without metadata) and their labels, so the same
settings give the same bytes.

Taught in the widget chapters: 01 (bit widths), 02 (sparsity), 03 (weight
sharing), 05 (quantization), 10 (EIE densities), 17 (latency budget), 18
(batch and context), 19 (bits and groups), 20 (LLM sparsity) and 21
(speculative decoding's acceptance).
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
from IPython.display import HTML
from PIL import Image

from ..validation import Callable, Dict, Interval, ListOf, OneOf, Text, Unchecked, validate_params

# the buttons' symbols (in every common font; ⏴ ⏵ ⏸ are not) and accessible names (a browser test
# presses "Play" and "Pause")
_BUTTONS = (("prev", "‹", "Previous frame"), ("play", "▶", "Play"), ("next", "›", "Next frame"))

# One script per flip-book; it finds its own <div> (document.currentScript's parent, or the
# div's id where a notebook front end runs scripts detached) and binds the controls.
_SCRIPT = """(function (root) {
  if (!root) { return; }
  var frames = %(frames)s, labels = %(labels)s, interval = %(interval)d;
  var img = root.querySelector("img.effdl-flipbook-frame");
  var slider = root.querySelector("input.effdl-flipbook-slider");
  var text = root.querySelector(".effdl-flipbook-label");
  var play = root.querySelector("button.effdl-flipbook-play");
  var timer = null;
  frames[%(start)d] = img.getAttribute("src");
  function show(k) {
    k = (k + frames.length) %% frames.length;
    img.src = frames[k]; img.alt = labels[k]; slider.value = k;
    text.textContent = labels[k]; root.setAttribute("data-frame", k);
  }
  function stop() {
    if (timer !== null) { clearInterval(timer); timer = null; }
    play.textContent = "\\u25B6"; play.setAttribute("aria-label", "Play"); play.title = "Play";
  }
  function start() {
    timer = setInterval(function () { show(Number(slider.value) + 1); }, interval);
    play.textContent = "\\u2016"; play.setAttribute("aria-label", "Pause"); play.title = "Pause";
  }
  play.addEventListener("click", function () { if (timer === null) { start(); } else { stop(); } });
  root.querySelector("button.effdl-flipbook-prev").addEventListener("click", function () {
    stop(); show(Number(slider.value) - 1); });
  root.querySelector("button.effdl-flipbook-next").addEventListener("click", function () {
    stop(); show(Number(slider.value) + 1); });
  slider.addEventListener("input", function () { stop(); show(Number(slider.value)); });
})(document.currentScript ? document.currentScript.parentNode : document.getElementById("%(id)s"));"""


def _png(fig, dpi: int, colors: int) -> bytes:
    """The figure as a palette PNG (``colors`` colours, no dithering, no metadata); closes it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    rgb = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = io.BytesIO()
    rgb.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=True)
    return out.getvalue()


@validate_params(figure=Callable(), values=ListOf(Unchecked("any setting the figure function accepts")),
                 dpi=Interval(int, 20, 300), colors=Interval(int, 2, 256))
def flipbook_frames(figure, values, *, dpi: int = 80, colors: int = 128) -> list[bytes]:
    """One PNG per setting: ``figure(value)`` for each of ``values``, rendered at ``dpi``.

    ``figure`` returns a matplotlib Figure (e.g. ``lambda s:
    sparsity_figure(sparsity_state(model, s, split))``); each is closed once
    saved. The PNGs use a palette of ``colors`` colours (no dithering), which
    keeps a frame of a book-width figure near 10 kB at 80 dpi.

    Behind chapter 01, "Number representations".
    """
    pngs = []
    for value in values:
        fig = figure(value)
        if not isinstance(fig, plt.Figure):
            plt.close("all")
            raise TypeError(f"figure must return a matplotlib Figure; got {type(fig).__name__} for {value!r}.")
        pngs.append(_png(fig, dpi, colors))
    return pngs


def _labels(values, label) -> tuple[list, list[str]]:
    if isinstance(values, Mapping):
        if label != "{}":
            raise ValueError(f"label must be left at '{{}}' when values is a dict (its keys are the labels); "
                             f"got {label!r}.")
        return list(values.values()), [str(k) for k in values]
    values = list(values)
    if callable(label):
        return values, [str(label(v)) for v in values]
    try:
        return values, [label.format(v) for v in values]
    except (ValueError, IndexError, KeyError, TypeError) as err:
        raise ValueError(f"label must be a format string that takes one value; got {label!r} ({err}).") from None


@validate_params(figure=Callable(), values=OneOf(Dict(), ListOf(Unchecked("any setting the figure accepts"))),
                 label=OneOf(Text(), Callable()), dpi=Interval(int, 20, 300), colors=Interval(int, 2, 256),
                 interval=Interval(int, 50, 10_000), start=Interval(int, 0, None),
                 title=Text(optional=True))
def flipbook(figure, values, *, label="{}", dpi: int = 80, colors: int = 128, interval: int = 900,
             start: int = 0, title: str | None = None) -> HTML:
    """A widget's states as a flip-book that plays in a static page: frames, slider, play button.

    Parameters
    ----------
    figure : callable
        ``figure(value) -> matplotlib.figure.Figure``, the same ``*_figure(*_state(...))``
        as the live widget draws.
    values : list or dict
        The settings, one frame each, in playing order; a dict maps each
        frame's label to its setting.
    label : str or callable
        With a list of ``values``: a format string (``"{:.0%} pruned"``) or a
        function of the value, giving each frame's label.
    dpi, colors : int
        Resolution and palette size of the frames (:func:`flipbook_frames`).
    interval : int
        Milliseconds per frame while playing.
    start : int
        The frame shown first (and without JavaScript): the widget's starting setting.
    title : str, optional
        A caption above the frames.

    Returns
    -------
    IPython.display.HTML
        Self-contained and offline: the frames as ``data:`` PNGs, the same
        bytes for the same settings.

    Taught in chapter 01, "Number representations".
    """
    settings, labels = _labels(values, label)
    if start >= len(settings):
        raise ValueError(f"start must be a frame index below {len(settings)}; got {start!r}.")
    pngs = flipbook_frames(figure, settings, dpi=dpi, colors=colors)
    uris = ["data:image/png;base64," + base64.b64encode(p).decode("ascii") for p in pngs]
    digest = hashlib.sha1("\n".join(uris + labels).encode()).hexdigest()[:12]
    div_id = f"effdl-flipbook-{digest}"
    js_frames = [None if k == start else u for k, u in enumerate(uris)]   # the start frame is the <img>'s src
    script = _SCRIPT % {"frames": json.dumps(js_frames), "labels": json.dumps(labels).replace("</", "<\\/"),
                        "interval": interval, "start": start, "id": div_id}
    buttons = "".join(f'<button type="button" class="effdl-flipbook-{cls}" aria-label="{name}" title="{name}" '
                      f'style="min-width:2.2em">{symbol}</button>' for cls, symbol, name in _BUTTONS)
    caption = f'<div class="effdl-flipbook-title"><b>{html.escape(title)}</b></div>' if title else ""
    text = (f'<div class="effdl-flipbook" id="{div_id}" data-frame="{start}" data-frames="{len(uris)}" '
            f'style="max-width:100%">{caption}'
            f'<img class="effdl-flipbook-frame" src="{uris[start]}" alt="{html.escape(labels[start])}" '
            f'style="display:block;max-width:100%;height:auto">'
            f'<div class="effdl-flipbook-controls" style="display:flex;flex-wrap:wrap;align-items:center;'
            f'gap:0.4em;max-width:100%">{buttons}'
            f'<input type="range" class="effdl-flipbook-slider" min="0" max="{len(uris) - 1}" step="1" '
            f'value="{start}" aria-label="frame" style="flex:1 1 8em;min-width:6em">'
            f'<span class="effdl-flipbook-label">{html.escape(labels[start])}</span></div>'
            f"<script>{script}</script></div>")
    return HTML(text)


__all__ = ["flipbook", "flipbook_frames"]
