"""effdl.viz.speculative (chapter 21): the round-by-round trace, speed-up vs n_draft and the α / c widget."""
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.patches import Rectangle

from effdl.llm.speculative import SpeculativeResult, expected_speedup
from effdl.viz import speculative as sv


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _result():
    trace = [{"start": 3, "drafted": [104, 101, 108], "accepted": 3, "next": 108, "bonus": True},
             {"start": 7, "drafted": [111, 32, 120], "accepted": 1, "next": 10, "bonus": False}]
    tokens = torch.tensor([65, 66, 67, 104, 101, 108, 108, 111, 10])
    return SpeculativeResult(tokens, 6, 2, 6, 4, 2, 6, trace)


def _record():
    rows = [{"draft": d, "n_draft": k, "greedy_acceptance": a, "greedy_target_calls_per_token": 1 / (1 + a * k),
             "measured_speedup": 0.5 + a / k, "expected_speedup": expected_speedup(a, k, 0.3)}
            for d, a in (("plain", 0.4), ("distilled", 0.6)) for k in (1, 2, 4, 8)]
    return {"speculation": {"rows": rows, "cost_ratio": {"plain": 0.3, "distilled": 0.3}}}


def test_speculative_trace_colours_each_cell_by_its_fate():
    fig = sv.speculative_trace(_result())
    ax = fig.axes[0]
    cells = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(cells) == 3 + 1 + 3 + 1                                   # drafts + the target's token, per round
    colours = [p.get_facecolor()[:3] for p in cells]
    as_rgb = {k: plt.matplotlib.colors.to_rgb(v) for k, v in sv.CELL.items()}
    assert colours[:4] == [as_rgb["accepted"]] * 3 + [as_rgb["target"]]
    assert colours[4:] == [as_rgb["accepted"], as_rgb["rejected"], as_rgb["discarded"], as_rgb["target"]]
    labels = [t.get_text() for t in ax.texts]
    assert labels[:4] == ["h", "e", "l", "l"] and "␣" in labels and "↵" in labels
    assert "2 rounds for 6 tokens" in ax.get_title()


def test_speedup_vs_n_draft_draws_measured_and_expected_per_draft():
    fig = sv.speedup_vs_n_draft(_record())
    left, right = fig.axes
    assert len(left.lines) == len(right.lines) == 2 * 2 + 1               # measured + expected per draft, and 1
    assert list(right.lines[0].get_xdata()) == [1, 2, 4, 8]
    assert right.lines[1].get_ydata()[0] == pytest.approx(expected_speedup(0.4, 1, 0.3))
    assert left.lines[1].get_ydata()[0] == pytest.approx(1 / 1.4)       # 1 / E[tokens per round] at k = 1
    assert [t.get_text() for t in right.get_legend().get_texts()][0] == "plain draft (c = 0.30)"


def test_speedup_state_and_figure_mark_the_best_n_draft():
    state = sv.spec_speedup_state(0.8, 0.05)
    assert state["speedup"][0] == pytest.approx(expected_speedup(0.8, 1, 0.05))
    assert state["best_speedup"] == max(state["speedup"]) and 1 < state["best_n_draft"] < 16
    assert sv.spec_speedup_state(0.0, 0.5)["best_n_draft"] == 1               # nothing accepted: draft as little as possible
    ax = sv.spec_speedup_figure(state).axes[0]
    assert ax.lines[1].get_xdata()[0] == state["best_n_draft"]
    assert "α = 0.80" in ax.get_title()


def test_speedup_widget_has_two_sliders_and_an_image():
    box = sv.spec_speedup_widget(0.6, 0.1)
    sliders, image = box.children
    assert [s.description for s in sliders.children] == ["α", "c"]
    assert image.value[:4] == b"\x89PNG"
    sliders.children[0].value = 0.9                                       # redraws
    assert image.value[:4] == b"\x89PNG"
