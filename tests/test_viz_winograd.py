"""effdl.viz.winograd (chapter 8): the time-breakdown and speed-up figures, on a small hand-made record
shaped like benchmarks/results/winograd.json and on the recorded file itself."""
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from effdl.viz import winograd as wv

RECORD = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "winograd.json"


def _layer(c, h, scale):
    return {"C": c, "K": c, "H": h, "W": h, "ms": {"im2col": 10.0 * scale, "torch": 6.0 * scale},
            "breakdown_ms": {"im2col": {"im2col": 2.0 * scale, "gemm": 7.0 * scale, "output": 1.0 * scale},
                             "winograd": {"input_transform": 2.0 * scale, "gemm": 3.0 * scale,
                                          "output_transform": 1.0 * scale},
                             "winograd_4x4": {"input_transform": 1.5 * scale, "gemm": 2.0 * scale,
                                              "output_transform": 0.5 * scale}}}


LAYERS = {"conv2_2": _layer(128, 112, 2.0), "conv5_2": _layer(512, 14, 1.0)}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_breakdown_bars_stacks_every_stage_of_every_method():
    fig = wv.breakdown_bars(LAYERS, title="t")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 2 * 3 * 3                     # layers × methods × stages
    # each method's stages stack to its total: im2col 10, F(2×2) 6, F(4×4) 4 (× the layer's scale)
    tops = sorted(round(p.get_y() + p.get_height(), 6) for p in ax.patches)
    for total in (20.0, 12.0, 8.0, 10.0, 6.0, 4.0):
        assert total in tops
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["torch conv2d (total)", "before: im2col copy / input transform", "GEMM",
                      "after: output copy / output transform"]
    assert np.allclose(ax.collections[0].get_offsets()[:, 1], [12.0, 6.0])   # torch's totals
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv2_2\nC=128, 112²", "conv5_2\nC=512, 14²"]
    assert ax.get_ylabel() == "time per layer (ms)" and ax.get_title() == "t"
    assert sorted({t.get_text() for t in ax.texts}) == ["F(2×2)", "F(4×4)", "im2col"]


def test_speedups_vs_limits_draws_measured_bars_and_both_limits():
    runs = {"1 thread, batch 1": {"geomean_F2_vs_im2col": 1.5, "geomean_F4_vs_im2col": 2.1},
            "2 threads, batch 8": {"geomean_F2_vs_im2col": 1.2, "geomean_F4_vs_im2col": 1.8}}
    fig = wv.speedups_vs_limits(runs, title="s")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [1.5, 1.2, 2.1, 1.8]
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()) == [1.0, 2.25, 4.0]
    assert [t.get_text() for t in ax.texts] == ["1.50×", "1.20×", "2.10×", "1.80×"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "F(2×2, 3×3) multiply limit 2.25×" in legend and "F(4×4, 3×3) multiply limit 4×" in legend
    assert [t.get_text() for t in ax.get_xticklabels()] == list(runs)


def test_views_draw_the_recorded_benchmark():
    bench = json.loads(RECORD.read_text())
    layers = bench["threads_1"]["batch_1"]["layers"]
    fig = wv.breakdown_bars(layers, title="recorded")
    assert len(fig.axes[0].patches) == 3 * 3 * len(layers)
    runs = {f"{t}, {b}": bench[t][b] for t in ("threads_1", "threads_2") for b in ("batch_1", "batch_8")}
    assert len(wv.speedups_vs_limits(runs, title="recorded").axes[0].patches) == 2 * len(runs)


@pytest.mark.parametrize("call", [lambda: wv.breakdown_bars([], title="t"), lambda: wv.breakdown_bars({}, title=3),
                                  lambda: wv.speedups_vs_limits("runs", title="t")])
def test_bad_inputs_are_refused(call):
    with pytest.raises(TypeError):
        call()
