"""The wrap-up's results table (effdl.summary): coverage of the experiments, verdicts, bad input."""
import copy

import pytest

from effdl import reproduce, summary

FAST = ["numbers", "paper-tables", "winograd", "roofline"]


@pytest.fixture(scope="module")
def fast_results():
    return summary.run_all(FAST, log=None)


def test_every_experiment_has_a_claim_and_every_claim_an_experiment():
    claimed = {c.experiment for c in summary.CLAIMS}
    assert claimed == set(reproduce.EXPERIMENTS)


def test_claims_cite_a_source_and_say_their_criterion():
    for c in summary.CLAIMS:
        assert c.source and c.criterion and c.paper_note, c.what
        assert c.chapter == reproduce.EXPERIMENTS[c.experiment].chapter, c.what


def test_rows_from_real_results(fast_results):
    rows = summary.results_table(fast_results, experiments=FAST)
    assert {r["experiment"] for r in rows} == set(FAST)
    by_what = {r["what"]: r for r in rows}
    assert by_what["F(2×2,3×3) multiply reduction"]["ours"] == 2.25
    assert by_what["TPU: memory-bound apps of the six"]["ours"] == 4.0
    assert all(r["verdict"] in (summary.REPRODUCED, summary.NOT_REPRODUCED) for r in rows)
    counts = summary.verdict_counts(rows)
    assert sum(counts.values()) == len(rows)


def test_a_result_that_misses_the_criterion_is_not_reproduced(fast_results):
    worse = copy.deepcopy(fast_results)
    worse["winograd"]["F(4x4,3x3)"]["reduction"] = 3.0
    worse["paper-tables"]["alexnet"]["total"]["ratio_pqh"] = 20.0        # 35× in the paper
    rows = {r["what"]: r for r in summary.results_table(worse, experiments=FAST)}
    assert rows["F(4×4,3×3) multiply reduction"]["verdict"] == summary.NOT_REPRODUCED
    assert rows["AlexNet P+Q+H, calculated from the per-layer table"]["verdict"] == summary.NOT_REPRODUCED
    assert rows["F(2×2,3×3) multiply reduction"]["verdict"] == summary.REPRODUCED


def test_dsd_must_beat_the_seed_spread():
    def dsd(base, ours, std):
        return {"dsd": {"seeds": 3, "sparsity": 0.3, "baseline": {"mean": base, "std": std},
                        "dsd": {"mean": ours, "std": std}}}
    assert summary.results_table(dsd(95.0, 95.5, 0.2), experiments=["dsd"])[0]["verdict"] == summary.REPRODUCED
    assert summary.results_table(dsd(95.0, 95.1, 0.2), experiments=["dsd"])[0]["verdict"] == summary.NOT_REPRODUCED
    assert summary.results_table(dsd(95.0, 94.5, 0.1), experiments=["dsd"])[0]["verdict"] == summary.NOT_REPRODUCED


def test_missing_experiment_is_named(fast_results):
    with pytest.raises(ValueError, match="roofline"):
        summary.results_table({k: v for k, v in fast_results.items() if k != "roofline"}, experiments=FAST)


@pytest.mark.parametrize("bad, exc", [([("winograd", {})], TypeError), ("winograd", TypeError)])
def test_results_must_be_a_dict(bad, exc):
    with pytest.raises(exc, match="results must be"):
        summary.results_table(bad)


@pytest.mark.parametrize("names, exc, match", [(["no-such"], ValueError, "names"), ("numbers", TypeError, "names")])
def test_run_all_bad_names(names, exc, match):
    with pytest.raises(exc, match=match):
        summary.run_all(names, log=None)


def test_run_all_logs_one_timing_line_per_experiment():
    lines = []
    summary.run_all(["numbers", "winograd"], log=lines.append)
    assert [line.split(" took ")[0] for line in lines] == ["numbers", "winograd"]
    assert all(line.endswith(" s") for line in lines)


def test_overview_figure_has_both_panels(fast_results):
    import matplotlib
    matplotlib.use("Agg")
    from effdl.viz.summary import claims_overview

    fig = claims_overview(summary.results_table(fast_results, experiments=FAST))
    assert len(fig.axes) == 2
    assert len(fig.axes[0].lines) >= 4          # AlexNet, VGG-16, two Winograd ratios (+ the unity line)


def test_a_result_without_the_claimed_key_is_named(fast_results):
    broken = copy.deepcopy(fast_results)
    del broken["winograd"]["F(4x4,3x3)"]
    with pytest.raises(ValueError, match="winograd.*F\\(4×4,3×3\\) multiply reduction"):
        summary.results_table(broken, experiments=FAST)


def test_display_rows_text(fast_results):
    rows = summary.display_rows(summary.results_table(fast_results, experiments=FAST))
    by_what = {r["what"]: r for r in rows}
    assert by_what["F(2×2,3×3) multiply reduction"]["ours_text"] == "2.25×"
    assert by_what["F(2×2,3×3) multiply reduction"]["paper_text"].startswith("**2.25×**: 16 multiplies")
    assert by_what["fp32 / fp16 / bf16 / int fields and ranges match numpy and torch"]["ours_text"] == "yes"
    change = summary.display_rows([{"ours": -0.2, "paper": 0.05, "unit": "pts", "criterion": "drop",
                                    "paper_note": "n", "source": "—"}])[0]
    assert (change["ours_text"], change["paper_text"]) == ("-0.2 pts", "**+0.05 pts**: n")
