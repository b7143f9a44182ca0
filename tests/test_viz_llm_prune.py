"""effdl.viz.llm_prune (chapter 20): sparsity sweep, mask, storage figures and the layer-error widget, on their artists."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from effdl.llm import prune as pr
from effdl.viz import llm_prune as lv


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _record():
    rows = [{"method": m, "sparsity": s, "ppl": 5.0 + k * s} for k, m in ((3, "magnitude"), (2, "wanda"),
                                                                          (1, "sparsegpt")) for s in (0.1, 0.5, 0.8)]
    computed = {"fp32": {"dense": 4_000_000, "values": 2_000_000, "indices": 125_000},
                "fp16": {"dense": 2_000_000, "values": 1_000_000, "indices": 125_000}}
    return {"sweep": {"windows": 20, "dense_ppl": 5.0, "rows": rows},
            "bytes": {"computed": computed, "on_disk_fp32": {"dense": 4_001_000, "2:4": 2_130_000}}}


def test_ppl_vs_sparsity_draws_one_line_per_method_and_the_dense_level():
    ax = lv.ppl_vs_sparsity(_record()).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ["magnitude", "Wanda", "SparseGPT"] and labels[3].startswith("dense")
    assert list(ax.lines[0].get_xdata()) == [10, 50, 80]
    assert list(ax.lines[2].get_ydata()) == pytest.approx([5.1, 5.5, 5.8])
    assert ax.get_yscale() == "log" and "first 20 validation windows" in ax.get_title()


def test_mask_picture_blanks_pruned_entries_and_marks_groups():
    w = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    _, mask = pr.magnitude(w, pattern="2:4")
    fig = lv.mask_picture(w, mask)
    dense, pruned = fig.axes[0].images[0].get_array(), fig.axes[1].images[0].get_array()
    assert np.ma.count_masked(dense) == 0 and np.ma.count_masked(pruned) == 16
    assert len(fig.axes[0].lines) == 1 and "Kept per group of 4 columns: 2" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="mask"):
        lv.mask_picture(w, mask.float())


def test_storage_bars_stack_indices_on_values():
    ax = lv.storage_bars(_record()).axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths[:6] == pytest.approx([4.0, 2.0, 2.0, 1.0, 4.001, 2.13])
    assert widths[6:] == pytest.approx([0, 0.125, 0, 0.125, 0, 0])
    assert [t.get_text() for t in ax.get_yticklabels()][1] == "fp32 2:4"


def test_prune_error_state_figure_and_widget():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 32, generator=gen) * torch.linspace(0.2, 3, 32)
    w = torch.randn(8, 32, generator=gen)
    st = lv.prune_error_state(w, x, 0.5)
    e = st["errors"]
    assert e["sparsegpt"] <= e["wanda"] <= e["magnitude"] and 0 < e["sparsegpt"]
    ax = lv.prune_error_figure(st).axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([100 * e[m] for m in lv.METHOD_STYLE])
    assert "50 % of each row pruned" in ax.get_title()
    box = lv.prune_error_widget(w, x, 0.5)
    slider, image = box.children
    first = image.value
    slider.value = 0.8
    assert image.value != first and image.value[:4] == b"\x89PNG"
