"""effdl.viz.design (chapter 17's block figures): what each figure draws, checked on its artists."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from effdl.viz import design  # noqa: E402


def _texts(fig) -> str:
    ax = fig.axes[0]
    return "\n".join([t.get_text() for t in ax.texts] + [ax.title.get_text(), ax.xaxis.label.get_text(),
                                                          ax.yaxis.label.get_text()])


ROWS = [{"channels": c, "size": s, "mac_ratio": 1 / c + 1 / 9, "time_ratio": 2 * t, "time_ratio_best": t,
         "standard": {"intensity": 60.0, "gflops": 20.0, "gflops_best": 40.0},
         "depthwise": {"intensity": 2.25, "gflops": 1.5, "gflops_best": 3.0},
         "pointwise": {"intensity": 15.0, "gflops": 15.0, "gflops_best": 30.0}}
        for c, s, t in [(32, 56, 0.4), (64, 28, 0.3), (128, 14, 0.25)]]


def test_fire_picture_labels_channels_and_weights():
    fig = design.fire_picture(96, 16, 64, 64)
    text = _texts(fig)
    assert "squeeze 1×1: 16" in text and "expand 3×3: 64" in text and "concatenated: 128 channels" in text
    fire, conv = 96 * 16 + 16 * 64 + 9 * 16 * 64, 9 * 96 * 128
    assert f"fire: {fire:,} weights" in text and f"{conv:,}" in text and f"({conv / fire:.1f}× more)" in text
    assert len(fig.axes[0].patches) == 5          # input, squeeze, two expands, output
    plt.close(fig)


def test_separable_picture_states_the_ratio():
    fig = design.separable_picture(32, 64, 3)
    text = _texts(fig)
    assert "1/64 + 1/9" in text and f"{(9 * 32 + 32 * 64) / (9 * 32 * 64):.3f}" in text
    assert f"{9 * 32 * 64:,} weights" in text
    plt.close(fig)


def test_mac_vs_time_bars_one_pair_per_shape():
    fig = design.mac_vs_time_bars(ROWS, title="t")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([r["mac_ratio"] for r in ROWS] + [r["time_ratio_best"] for r in ROWS])
    median = design.mac_vs_time_bars(ROWS, title="t", timing="median").axes[0]
    assert [p.get_height() for p in median.patches][3:] == pytest.approx([r["time_ratio"] for r in ROWS])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["C=32\n56×56", "C=64\n28×28", "C=128\n14×14"]
    plt.close(fig)


def test_blocks_on_roofline_places_every_layer():
    fig = design.blocks_on_roofline({"peak_gflops": 50.0, "bandwidth_gbs": 5.0}, ROWS, title="t")
    ax = fig.axes[0]
    assert len(ax.collections) == 3                              # standard, depthwise, pointwise
    assert [tuple(p) for p in ax.collections[1].get_offsets()] == [(2.25, 3.0)] * 3      # best times
    median = design.blocks_on_roofline({"peak_gflops": 50.0, "bandwidth_gbs": 5.0}, ROWS, title="t",
                                       timing="median").axes[0]
    assert [tuple(p) for p in median.collections[1].get_offsets()] == [(2.25, 1.5)] * 3
    roof = ax.lines[0].get_ydata()
    assert roof.max() == pytest.approx(50.0)                     # the compute roof
    assert ax.get_xscale() == "log" and "ridge 10.0" in ax.get_legend().get_texts()[0].get_text()
    plt.close("all")


def test_three_nets_relative_to_standard():
    nets = {"standard": {"params": 100, "macs": 1000, "cpu_ms": 2.0, "test_acc": 97.5},
            "fire": {"params": 25, "macs": 300, "cpu_ms": 1.0, "test_acc": 97.0},
            "depthwise_separable": {"params": 15, "macs": 140, "cpu_ms": 1.5, "test_acc": 96.8}}
    fig = design.three_nets(nets, title="t")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([1, 0.25, 0.15, 1, 0.3, 0.14, 1, 0.5, 0.75])
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks[2] == "depthwise-separable\n96.8 % test accuracy"
    plt.close(fig)


@pytest.mark.parametrize("call, exc", [
    (lambda: design.fire_picture(0, 1, 1, 1), ValueError),
    (lambda: design.separable_picture(8, 8, 2.5), TypeError),
    (lambda: design.mac_vs_time_bars([], title="t"), ValueError),
    (lambda: design.three_nets(None, title="t"), TypeError),
    (lambda: design.mac_vs_time_bars(ROWS, title="t", timing="mean"), ValueError),
])
def test_bad_input(call, exc):
    with pytest.raises(exc):
        call()
