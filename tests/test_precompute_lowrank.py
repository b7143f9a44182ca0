"""effdl.precompute.lowrank: the pieces that choose and build, without training.

The training runs themselves are exercised by ``effdl precompute lowrank`` and
``effdl reproduce lowrank``; here: the rank rule (validation only, the target
honoured, an honest fallback), the conv MAC count against effdl.lowrank's
formula, the decomposed network against the original, and the TT model.
"""
import copy
import doctest

import pytest
import torch
from torch import nn

import effdl.precompute.lowrank as pl
from effdl import lowrank
from effdl.models import LeNet5
from bounds import rounding_bound


def _rows(vals, ratios=(43.4, 21.1, 10.7, 5.4, 2.7), ranks=(5, 10, 20, 40, 80)):
    return [{"rank": r, "param_ratio": q, "val_ft": v} for r, q, v in zip(ranks, ratios, vals)]


def test_docstring_examples():
    assert doctest.testmod(pl).failed == 0


def test_choose_rank_smallest_rank_within_tolerance():
    row, met = pl.choose_rank(_rows([80.0, 94.0, 94.4, 94.9, 95.0]), 94.8)
    assert (row["rank"], met) == (20, True)          # rank 10 misses 94.8 − 0.5 = 94.3 by 0.3
    row, met = pl.choose_rank(_rows([80.0, 94.0, 94.4, 94.9, 95.0]), 94.8, tolerance=1.0)
    assert (row["rank"], met) == (10, True)


def test_choose_rank_exact_boundary_counts():
    row, met = pl.choose_rank(_rows([80.0, 94.3, 94.4, 94.9, 95.0]), 94.8)
    assert (row["rank"], met) == (10, True)          # 94.3 = 94.8 − 0.5 counts despite float rounding


def test_choose_rank_ignores_ranks_that_save_too_little():
    # only rank 80 (2.7×) is within tolerance: not eligible, so the target is not met
    row, met = pl.choose_rank(_rows([80.0, 90.0, 93.0, 93.5, 94.8]), 94.8)
    assert met is False
    assert row["rank"] == 40                          # the best validation accuracy among ≥ 4× ranks


def test_choose_rank_fallback_prefers_smaller_rank_on_tie():
    row, met = pl.choose_rank(_rows([80.0, 93.0, 93.0, 92.0, 94.8]), 94.8)
    assert (row["rank"], met) == (10, False)


def test_choose_rank_never_reads_test_accuracy():
    rows = _rows([80.0, 90.0, 94.6, 94.6, 94.8])
    for r in rows:
        r["test_ft"] = 100.0 - r["rank"]              # would change the answer if it were used
    assert pl.choose_rank(rows, 94.8)[0]["rank"] == 20


@pytest.mark.parametrize("bad, exc", [("rows", TypeError), (None, TypeError)])
def test_choose_rank_bad_rows(bad, exc):
    with pytest.raises(exc, match="rows must be"):
        pl.choose_rank(bad, 94.8)


def test_choose_rank_bad_values():
    with pytest.raises(ValueError, match="rows must contain a rank with param_ratio"):
        pl.choose_rank(_rows([90.0], ratios=(2.0,), ranks=(80,)), 94.8)
    with pytest.raises(ValueError, match="dense_val must be"):
        pl.choose_rank(_rows([90.0]), 120.0)
    with pytest.raises(TypeError, match="tolerance must be"):
        pl.choose_rank(_rows([90.0]), 94.8, tolerance="0.5")


def test_best_run_first_wins_ties():
    runs = [{"lr": 0.003, "val": 94.0}, {"lr": 0.03, "val": 94.0}, {"lr": 0.3, "val": 93.0}]
    assert pl.best_run(runs)["lr"] == 0.003
    with pytest.raises(ValueError, match="best_run: runs must be"):
        pl.best_run([])


def test_conv_macs_dense_and_decomposed_match_conv_costs():
    torch.manual_seed(0)
    model = LeNet5().eval()
    dense = lowrank.conv_costs(1, 20, 5, 20, 24)["dense_macs"] + lowrank.conv_costs(20, 50, 5, 50, 8)["dense_macs"]
    assert pl.conv_macs(model) == dense == 1_888_000
    images = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    small = pl.decompose_convs(model, [3, 10], images)
    expect = (lowrank.conv_costs(1, 20, 5, 3, 24)["lowrank_macs"]
              + lowrank.conv_costs(20, 50, 5, 10, 8)["lowrank_macs"])
    assert pl.conv_macs(small) == expect
    assert isinstance(model.conv1, torch.nn.Conv2d)   # the original is untouched


def test_decompose_convs_full_rank_reproduces_the_network():
    torch.manual_seed(0)
    model = LeNet5().eval()
    images = torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    full = pl.decompose_convs(model, [20, 50], images)
    assert isinstance(full.conv2, nn.Sequential)
    # Compared in float64, where Higham's bound through the net is ~1e-8 (in float32 it would exceed the
    # logits); the float64 fits and SVDs err by ~1e-15, far below
    model64, images64 = copy.deepcopy(model).double(), images.double()
    full64 = pl.decompose_convs(model64, [20, 50], images64)
    with torch.no_grad():
        diff = (full64(images64) - model64(images64)).abs()
    assert (diff <= rounding_bound(full64, images64) + rounding_bound(model64, images64)).all()
    with pytest.raises(ValueError, match="ranks must have one entry per conv"):
        pl.decompose_convs(model, [5], images)


def test_tt_model_is_seeded_and_counts_parameters():
    a, b = pl.tt_model(8), pl.tt_model(8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert sum(p.numel() for p in a.fc1.parameters()) == lowrank.tt_params(pl.TT_IN, pl.TT_OUT, 8) + 300
    assert a(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_forward_ms_is_positive_and_checks_input():
    assert pl.forward_ms(torch.nn.Linear(784, 300), 1, repeats=2) > 0
    with pytest.raises(ValueError, match="batch_size must be"):
        pl.forward_ms(torch.nn.Linear(784, 300), 0)
    with pytest.raises(TypeError, match="module must be"):
        pl.forward_ms("fc1", 1)


def test_chapter7_figures_have_titles_and_labels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from effdl.viz import lowrank as plots

    e = torch.linspace(1, 0.01, 30) ** 2
    figs = [plots.energy_spectra({"a": e, "b": e.flip(0)}, title="t"),
            plots.accuracy_vs_rank({"x": ([1, 10], [50.0, 90.0])}, dense_acc=94.1, param_ratio={1: 170, 10: 21.1},
                                   title="t"),
            plots.speedup_vs_accuracy([{"method": "uniform", "speedup": 2.0, "acc_no_ft": 97.0, "acc_ft": 97.5},
                                       {"method": "uniform", "speedup": 4.0, "acc_no_ft": 96.0, "acc_ft": 96.5}],
                                      dense_acc=97.9, title="t")]
    try:
        for fig in figs:
            for ax in fig.axes:
                assert ax.get_xlabel() and ax.get_ylabel() and (ax.get_title() or fig._suptitle)
        diagram = plots.conv_decomposition(20, 50, 5, 10, out_hw=8)
        texts = [t.get_text() for ax in diagram.axes for t in ax.texts]
        assert any("1,600,000 MACs" in t for t in texts) and any("320,000 MACs" in t for t in texts)
    finally:
        plt.close("all")


def test_forward_ms_restores_threads_and_mode():
    before = torch.get_num_threads()
    layer = torch.nn.Linear(784, 300).train()
    pl.forward_ms(layer, 2, repeats=1, threads=1)
    assert torch.get_num_threads() == before and layer.training
    with pytest.raises(ValueError, match="threads must be"):
        pl.forward_ms(layer, 1, threads=0)
