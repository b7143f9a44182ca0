"""effdl.viz.nas (chapter 17, the search): Pareto fronts, the predictor scatter, the search progress, the
targets' architectures and the constraint widget, drawn from the shipped ``nas`` record."""
import matplotlib

matplotlib.use("Agg")
import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from effdl.precompute import load_record  # noqa: E402
from effdl.viz import nas as nv  # noqa: E402


@pytest.fixture(scope="module")
def record():
    return load_record("nas")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_pareto_figure_draws_pool_front_budget_and_both_searches(record):
    fig = nv.pareto_figure(record, target="cpu")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "CPU latency, predicted (ms)" and "accuracy" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Pareto front" in labels and "evolution (seed 0)" in labels and "random (seed 0)" in labels
    pool = ax.collections[0].get_offsets()
    assert len(pool) == len(record["pool"])
    budget = [ln for ln in ax.lines if ln.get_linestyle() == "--"][0]
    assert budget.get_xdata()[0] == record["budgets"]["cpu"]
    front = [ln for ln in ax.lines if ln.get_label() == "Pareto front"][0]
    assert np.all(np.diff(front.get_ydata()) > 0)              # a front climbs as the cost grows


@pytest.mark.parametrize("target", ["systolic", "energy"])
def test_pareto_figure_other_targets(record, target):
    ax = nv.pareto_figure(record, target=target).axes[0]
    assert ax.get_xlabel() == nv.TARGET_LABELS[target]
    assert "random (seed 0)" not in [t.get_text() for t in ax.get_legend().get_texts()]


def test_predictor_scatter_plots_fit_and_held_out(record):
    ax = nv.predictor_scatter(record).axes[0]
    lat = record["latency"]
    points = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert [len(ln.get_xdata()) for ln in points] == [len(lat["fit"]), len(lat["held_out"])]
    assert f"MAPE {lat['mape']:.1f} %" in points[1].get_label()
    assert "measured" in ax.get_xlabel()


def test_search_progress_one_rising_curve_per_run(record):
    ax = nv.search_progress(record).axes[0]
    runs = record["searches"]["cpu"]
    assert len(ax.lines) == len(runs["evolution"]) + len(runs["random"])
    for ln in ax.lines:
        assert np.all(np.diff(ln.get_ydata()) >= 0) and len(ln.get_xdata()) == record["n_evaluations"]


def test_target_architectures_draws_every_block(record):
    ax = nv.target_architectures(record).axes[0]
    n_blocks = sum(sum(row["arch"]["depths"]) for row in record["targets"].values())
    drawn = [p for p in ax.patches if p.get_width() > 0]
    assert len(drawn) == n_blocks
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"kernel 3", "kernel 5", "kernel 7"}


def test_constraint_state_picks_the_best_within_budget(record):
    budget = record["budgets"]["energy"]
    state = nv.constraint_state(record, "energy", budget)
    fits = [p for p in record["pool"] if p["energy_uj"] <= budget]
    assert state["best"]["acc"] == max(p["acc"] for p in fits)
    assert state["best"]["energy_uj"] <= budget and state["unit"] == "µJ"
    assert nv.constraint_state(record, "cpu", 1e-6)["best"] is None
    loose = nv.constraint_state(record, "cpu", 1e6)
    assert loose["best"]["acc"] == max(p["acc"] for p in record["pool"])
    assert loose["best_index"] in loose["front"]                 # the unconstrained best is on the front


def test_constraint_figure_marks_the_choice_and_handles_nothing_fitting(record):
    fig = nv.constraint_figure(nv.constraint_state(record, "systolic", record["budgets"]["systolic"]))
    left, right = fig.axes
    assert "best within budget" in [t.get_text() for t in left.get_legend().get_texts()]
    assert any("params" in t.get_text() for t in right.texts)
    empty = nv.constraint_figure(nv.constraint_state(record, "cpu", 1e-6))
    assert "nothing fits" in empty.axes[0].get_title()


def test_constraint_widget_binds_target_and_budget(record):
    w = nv.constraint_widget(record)
    (dropdown, slider), image = w.children[0].children, w.children[1]
    assert isinstance(dropdown, widgets.Dropdown) and isinstance(slider, widgets.FloatSlider)
    assert slider.value == pytest.approx(record["budgets"]["cpu"]) and len(image.value) > 1000
    first = image.value
    dropdown.value = "energy"
    assert slider.value == pytest.approx(record["budgets"]["energy"]) and image.value != first


@pytest.mark.parametrize("call,exc", [
    (lambda r: nv.pareto_figure(r, target="gpu"), ValueError),
    (lambda r: nv.constraint_state(r, "cpu", -1.0), ValueError),
    (lambda r: nv.constraint_widget(r, "cpu", 0.0), ValueError),
    (lambda r: nv.predictor_scatter([1, 2]), TypeError),
])
def test_bad_inputs_are_refused(record, call, exc):
    with pytest.raises(exc):
        call(record)
