"""Chapter 9's batch-size widget: a pure state function, its figure, and the ipywidgets wrapper.

Moving the batch size moves the TPU paper's six workloads (Jouppi et al., ISCA
2017, Table 1) along the roofline — intensity grows with the batch — and
moves MLP0 along its latency/throughput curve, next to the measured
99th-percentile latencies of Table 4. The widget shows an ``ipywidgets.Image``
of the figure (no printed output), like the other widgets of the book.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_float, check_int
from ..hardware import roofline
from . import roofline as roofline_plots
from .widgets import figure_png

BATCH_SIZES = tuple(int(b) for b in 2 ** np.arange(0, 13))       # 1 … 4096, the widget's stops


def batch_size_state(batch_size: int, *, app: str = "MLP0", chips=roofline.PAPER_CHIPS,
                     limit_ms: float = roofline.MLP0_LATENCY_LIMIT_MS) -> dict:
    """What the batch-size widget shows at ``batch_size``.

    Returns a dict with ``batch_size``, ``app``, ``chip`` (the roofline the
    apps are drawn on: the first of ``chips``), ``rooflines``, ``apps`` (every
    app at this batch, ``roofline.place_apps``), ``deployed`` (at Table 1's
    batches), ``sweep`` (``app`` over 1 … 4096 and this batch,
    ``roofline.batch_sweep``), ``current`` (per chip: ``latency_ms``,
    ``throughput_ips``, ``attainable_tops``, ``utilization`` = attainable ÷
    peak, ``bound``), ``table4`` and ``limit_ms``.
    """
    b = check_int("batch_size", batch_size, min=1, max=1 << 20)
    limit_ms = check_float("limit_ms", limit_ms, min=0, min_open=True)
    a = roofline.get_app(app)
    roofs = [roofline.Roofline.from_chip(c) for c in chips]
    sizes = np.array(sorted(set(BATCH_SIZES) | {b}))
    sweep = roofline.batch_sweep(a, chips, sizes)
    j = int(np.flatnonzero(sizes == b)[0])
    current = {}
    for roof in roofs:
        d = sweep["chips"][roof.name]
        current[roof.name] = {"latency_ms": float(d["latency_ms"][j]), "throughput_ips": float(d["throughput_ips"][j]),
                              "attainable_tops": float(d["attainable_tops"][j]),
                              "utilization": float(d["attainable_tops"][j] * 1e12 / roof.peak),
                              "bound": roof.bound(a.intensity(b))}
    return {"batch_size": b, "app": a.name, "chip": roofs[0].name, "rooflines": roofs,
            "apps": roofline.place_apps(chips, b), "deployed": roofline.place_apps(chips), "sweep": sweep,
            "current": current, "table4": roofline.table4_comparison(), "limit_ms": limit_ms}


def batch_size_figure(batch_size: int, **kwargs):
    """The figure of :func:`batch_size_state` (also the widget's static rendering)."""
    return roofline_plots.batch_view(batch_size_state(batch_size, **kwargs))


def batch_size_widget(batch_size: int = 16, **kwargs):
    """A batch-size slider (1 … 4096, powers of two); the apps on the roofline and MLP0's latency."""
    import ipywidgets as w

    batch_size_state(batch_size, **kwargs)                 # validate before building controls
    options = sorted(set(BATCH_SIZES) | {batch_size})
    slider = w.SelectionSlider(options=options, value=batch_size, description="batch size",
                               continuous_update=False)
    image = w.Image(format="png")

    def redraw(_=None):
        image.value = figure_png(batch_size_figure(slider.value, **kwargs), dpi=80)

    slider.observe(redraw, names="value")
    redraw()
    return w.VBox([slider, image])
