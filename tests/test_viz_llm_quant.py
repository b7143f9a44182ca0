"""effdl.viz.llm_quant (chapter 19): perplexity / bytes / outlier figures and the layer-error widget, on their artists."""
import matplotlib.pyplot as plt
import pytest
import torch

from effdl.viz import llm_quant as lv


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _record():
    rows = [{"method": m, "n_bits": b, "group_size": g, "ppl": 5.0 + (1 if m == "rtn" else 0.5) / b}
            for m, groups in (("rtn", (None, 32)), ("gptq", (32,)), ("awq", (32,))) for g in groups for b in (2, 3, 4, 8)]
    res = {"rtn": {"w8": 5.01, "w4_g32": 5.2, "w3_g32": 5.3}, "gptq": {"w4_g32": 5.1, "w3_g32": 5.15},
           "awq": {"w4_g32": 5.15, "w3_g32": 5.2}, "w8a8": {"naive": 5.02, "smoothquant": 5.01}}
    max_abs = {"blocks.0.attn.q": [1.0, 3.0, 1.5], "blocks.0.mlp.0": [1.0, 1.0, 2.0],
               "blocks.1.attn.q": [2.0, 1.0, 1.0]}
    summary = [{"layer": n, "ratio": max(v) / sorted(v)[1], "top_channel": v.index(max(v))} for n, v in max_abs.items()]
    return {"group_size": 32, "fp_ppl": 5.0, "results": res,
            "bytes": {"fp32": 5_000_000, "w8": 1_500_000, "w4_g32": 1_000_000, "w3_g32": 870_000,
                      "awq_w4_g32": 1_020_000, "awq_w3_g32": 890_000},
            "sweep": {"windows": 10, "fp_ppl": 5.0, "rows": rows},
            "outliers": {"max_abs": max_abs, "summary": summary}}


def test_ppl_vs_bits_draws_one_line_per_method_and_the_fp32_level():
    fig = lv.ppl_vs_bits(_record())
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ["round-to-nearest, g = 32", "GPTQ, g = 32", "AWQ, g = 32"] and labels[3].startswith("fp32")
    assert list(ax.lines[0].get_xdata()) == [2, 3, 4, 8]
    assert ax.get_yscale() == "log" and "first 10 test windows" in ax.get_title()


def test_group_sweep_draws_one_line_per_group_size():
    ax = lv.group_sweep(_record()).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["per output channel", "groups of 32 columns", "fp32"]


def test_bytes_vs_ppl_places_each_model_at_its_size():
    ax = lv.bytes_vs_ppl(_record()).axes[0]
    assert ax.lines[0].get_xdata()[0] == pytest.approx(5.0) and ax.lines[0].get_ydata()[0] == 5.0
    assert len(ax.lines) == 2 + 3 * 2
    awq4 = [ln for ln in ax.lines if ln.get_label() == "AWQ, 4 bits"][0]
    assert awq4.get_xdata()[0] == pytest.approx(1.02)                    # AWQ's file carries its channel scales


def test_activation_outliers_draws_attention_inputs_and_ratios():
    fig = lv.activation_outliers(_record())
    ax, bx = fig.axes
    assert len([ln for ln in ax.lines if len(ln.get_xdata()) == 3]) == 2    # the two blocks' attention inputs
    assert [p.get_width() for p in bx.patches] == pytest.approx([2.0, 2.0, 2.0])


def test_layer_error_state_figure_and_widget():
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(200, 32, generator=gen), torch.randn(8, 32, generator=gen)
    st = lv.layer_error_state(w, x, 3, 8)
    assert st["errors"]["gptq"] < st["errors"]["rtn"] and st["errors"]["awq"] <= st["errors"]["rtn"]
    ax = lv.layer_error_figure(st).axes[0]
    assert [p.get_height() for p in ax.patches][0] == pytest.approx(1.0)
    assert "3 bits, groups of 8" in ax.get_title()
    box = lv.layer_error_widget(w, x, 3, 8)
    (bits, group), image = box.children[0].children, box.children[1]
    first = image.value
    bits.value = 5
    assert image.value != first and image.value[:4] == b"\x89PNG"
    assert group.options[0] == ("per channel", None)
