"""effdl.viz.transformer (chapter 18): the batch / context roofline widget, FlashAttention's IO figure,
the decoding-time figure and the training curves, checked on their artists."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from effdl.hardware import roofline as rl
from effdl.llm import attention as att
from effdl.transformer import get_spec
from effdl.viz import transformer as tv


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_state_places_prefill_right_of_decode_and_batch_moves_decode():
    one = tv.decode_roofline_state(1, 1024)
    assert one["decode"]["bound"] == "memory" and one["prefill"]["bound"] == "compute"
    assert one["prefill"]["intensity"] > 100 * one["decode"]["intensity"]
    many = tv.decode_roofline_state(64, 1024)
    assert many["decode"]["intensity"] > 10 * one["decode"]["intensity"]
    assert many["decode"]["tokens_per_s"] > 10 * one["decode"]["tokens_per_s"]
    # batch-1 decode is bandwidth-bound: time = bytes ÷ bandwidth
    d = one["decode"]
    assert d["seconds"] == pytest.approx(d["bytes"] / one["roofline"].bandwidth)
    assert [p["batch_size"] for p in one["sweep"]] == list(tv.SWEEP)


def test_state_accepts_a_roofline_and_refuses_a_context_too_long():
    roof = rl.Roofline("cpu", 1e11, 2e10, "dram")
    s = tv.decode_roofline_state(1, 128, spec="lm", chip=roof)
    assert s["roofline"] is roof and s["spec"].name == "TinyGPT"
    with pytest.raises(ValueError, match="context"):
        tv.decode_roofline_state(1, 2048, spec="gpt2")


def test_decode_roofline_figure_draws_both_phases():
    fig = tv.decode_roofline_figure(tv.decode_roofline_state(8, 512))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "V100" and labels[1].startswith("decode, batch")
    assert labels[2].startswith("prefill:") and labels[3].startswith("decode:")
    assert "batch 8, context 512" in ax.get_title()
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "attainable (TFLOP/s)"
    small = tv.decode_roofline_figure(tv.decode_roofline_state(1, 64, spec="lm",
                                                               chip=rl.Roofline("cpu", 1e11, 2e10, "dram")))
    assert small.axes[0].get_ylabel() == "attainable (GFLOP/s)"


def test_decode_roofline_widget_has_two_sliders_and_an_image():
    w = tv.decode_roofline_widget(4, 256, spec="gpt2")
    (sliders, image) = w.children
    batch, ctx = sliders.children
    assert batch.value == 4 and ctx.value == 256 and max(ctx.options) == 1024
    first = image.value
    batch.value = 64
    assert image.value != first and image.value[:4] == b"\x89PNG"


def test_attention_io_figure_lines_follow_the_counts():
    ns = [256, 1024, 4096]
    fig = tv.attention_io_figure(ns, 64, [25_000, 100_000])
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    assert np.allclose(lines[0].get_ydata(), [att.standard_attention_io(n, 64)["total"] for n in ns])
    assert np.allclose(lines[2].get_ydata(), [att.flash_attention_io(n, 64, 100_000)["total"] for n in ns])
    assert all(lines[2].get_ydata() < lines[0].get_ydata())


def test_decode_time_figure():
    rows = [{"t": 16, "cache_ms": 1.0, "no_cache_ms": 2.0}, {"t": 64, "cache_ms": 1.1, "no_cache_ms": 6.0}]
    fig = tv.decode_time_figure(rows, title="x")
    ax = fig.axes[0]
    assert [list(l.get_ydata()) for l in ax.get_lines()] == [[2.0, 6.0], [1.0, 1.1]]
    assert ax.get_title() == "x" and ax.get_xlabel() == "position t of the new token"


def test_loss_curves():
    record = {"models": {"lm": {"params": 1000, "curve": [{"step": 10, "val_loss": np.log(2) * 3},
                                                          {"step": 20, "val_loss": np.log(2) * 2}]}}}
    ax = tv.loss_curves(record).axes[0]
    assert np.allclose(ax.get_lines()[0].get_ydata(), [3, 2])
    assert ax.get_legend().get_texts()[0].get_text() == "lm (1,000 parameters)"


def test_spec_is_named_in_the_state():
    assert tv.decode_roofline_state(1, 16, spec=get_spec("draft"))["spec"].name == "TinyGPT draft"
