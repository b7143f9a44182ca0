"""The views of chapters 11–13 (parallelization, mixed precision, distillation and DSD) and 15
(wrap-up), checked on what they draw."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from effdl import summary as summary_results  # noqa: E402
from effdl.numerics import FP16  # noqa: E402
from effdl.training import parallel  # noqa: E402
from effdl.viz import summary, training  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


# ------------------------------------------------------------------ chapter 11
def test_split_ownership_one_bar_per_process():
    fig = training.split_ownership(10, 7, 3, parallel.split_ranges)
    fc, conv = fig.axes
    assert [(p.get_x(), p.get_width()) for p in fc.patches] == [(0, 4), (4, 3), (7, 3)]
    assert [t.get_text() for t in conv.texts] == ["process 0\n0…2", "process 1\n3…4", "process 2\n5…6"]
    assert fc.get_xlabel() == "output index (of 10)"


def test_staleness_one_panel_per_run():
    fig = training.staleness({"sync": ([0, 1, 0], [0, 0, 0]), "async": ([0, 1, 1], [0, 1, 2])})
    sync, asynchronous = fig.axes
    assert sync.get_title() == "sync" and len(asynchronous.collections) == 2
    assert np.array_equal(asynchronous.collections[1].get_offsets(), [[1, 1], [2, 2]])     # worker 1's updates
    assert _legend(asynchronous) == ["worker 0", "worker 1"]


def test_traffic_against_workers():
    fig = training.traffic(1_000_000, [1, 2, 4], parallel.communication_bytes)
    ax = fig.axes[0]
    expect = [parallel.communication_bytes(1_000_000, n)["parameter_server_link"] / 1e6 for n in (1, 2, 4)]
    assert list(ax.lines[0].get_ydata()) == expect and list(ax.lines[0].get_xdata()) == [1, 2, 4]
    assert "1,000,000 fp32 parameters" in ax.get_title()


def test_pipeline_timeline_hatches_backward():
    events = [(0, "forward", 0, 0.0, 0.001), (1, "forward", 0, 0.001, 0.002), (1, "backward", 0, 0.002, 0.004)]
    fig = training.pipeline_timeline(events, 2, bubble=0.25)
    ax = fig.axes[0]
    assert [(p.get_x(), p.get_width()) for p in ax.patches] == [(0.0, 1.0), (1.0, 1.0), (2.0, 2.0)]
    assert [p.get_hatch() for p in ax.patches] == [None, None, "//"] and "(ideal bubble 25%)" in ax.get_title()


def test_epoch_times_groups():
    fig = training.epoch_times({"gloo": {1: 10.0, 2: 6.0}})
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [10.0, 6.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 process", "2 processes"]


# ------------------------------------------------------------------ chapter 12
def test_gradient_histograms_shade_fp16_ranges():
    g = np.array([2.0 ** -30, 2.0 ** -10, 0.0, 1.0])
    fig = training.gradient_histograms({"g": g}, scale=2.0 ** 8)
    ax = fig.axes[0]
    assert _legend(ax) == ["|g| as computed in fp32", "× loss scale 2^8", "→ 0 in fp16", "fp16 subnormal",
                           "→ inf in fp16"]
    counts = [p.get_height() for p in ax.patches[:-4]]                        # bars, then step and 3 spans
    assert sum(counts) == 3                                                   # the zero left out
    assert ax.patches[-2].get_x() == pytest.approx(np.log2(FP16.min_subnormal) - 1)     # the subnormal band


def test_scale_sweep():
    fig = training.scale_sweep([0, 8, 16], {"m": [0.5, 0.1, 0.0]}, {"m": [0.0, 0.0, 0.2]}, chosen=2.0 ** 8)
    ax = fig.axes[0]
    assert list(ax.lines[0].get_ydata()) == [50.0, 10.0, 0.0] and ax.lines[1].get_linestyle() == "--"
    assert ax.lines[2].get_xdata()[0] == 8 and ax.get_yscale() == "symlog"


def test_scaler_trace_marks_skipped_steps():
    fig = training.scaler_trace([2.0 ** 16, 2.0 ** 15, 2.0 ** 15], [True, False, False])
    ax = fig.axes[0]
    assert list(ax.lines[0].get_ydata()) == [16, 15, 15]
    assert np.array_equal(ax.collections[0].get_offsets(), [[0, 16]]) and _legend(ax) == ["skipped step (inf/NaN)"]


def test_precision_curves_mean_over_seeds_and_lost_updates():
    runs = {"fp32": [[90.0, 95.0], [92.0, 97.0]], "fp16_pure": [[80.0, 85.0], [82.0, 83.0]]}
    fig = training.precision_curves(runs, lost=[[0.1, 0.2], [0.3, 0.4]])
    acc, lost = fig.axes
    assert list(acc.lines[0].get_ydata()) == [91.0, 96.0]
    assert _legend(acc) == [training.PRECISION_LABELS["fp32"], training.PRECISION_LABELS["fp16_pure"]]
    assert np.allclose(lost.lines[0].get_ydata(), [20.0, 30.0])


def test_lost_update_curve():
    fig = training.lost_update_curve([1e-5, 1e-3], [1.0, 0.0])
    ax = fig.axes[0]
    assert list(ax.lines[0].get_ydata()) == [100.0, 0.0] and ax.get_xscale() == "log"
    assert ax.lines[1].get_xdata()[0] == FP16.eps / 2


def test_accumulation_errors_log_log():
    fig = training.accumulation_errors([16, 256], {"fp32 acc": [1e-7, 1e-6], "fp16 acc": [1e-3, 1e-2]})
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log" and _legend(ax) == ["fp32 acc", "fp16 acc"]
    assert list(ax.lines[1].get_ydata()) == [1e-3, 1e-2]


def test_matmul_speed_bars_with_values():
    fig = training.matmul_speed({"fp32": 50.0, "bf16": 12.0}, title="T")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [50.0, 12.0] and [t.get_text() for t in ax.texts] == ["50", "12"]


# ------------------------------------------------------------------ chapter 13
def test_softmax_temperatures():
    fig = training.softmax_temperatures({1: np.full(10, 0.1), 4: np.linspace(0.01, 0.19, 10)}, label=3)
    ax = fig.axes[0]
    assert _legend(ax) == ["T = 1", "T = 4"] and ax.get_yscale() == "log" and ax.lines[2].get_xdata()[0] == 3
    assert not plt.fignum_exists(fig.number)                                    # closed: shown once


def test_dark_knowledge_figure():
    data = {"labels": np.array([3, 5]), "images": np.zeros((2, 28, 28)), "hard": np.eye(10)[[3, 5]],
            "soft_1": np.full((2, 10), 0.1), "soft_t": np.full((2, 10), 0.1), "temperature": 4.0}
    fig = training.dark_knowledge_figure(data)
    assert len(fig.axes) == 4 and fig.axes[2].get_title() == "label 5"
    bars = fig.axes[1].patches
    assert len(bars) == 30 and bars[3].get_height() == pytest.approx(1.0)        # the one-hot's 1 at class 3
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["hard target", "teacher, T = 1", "teacher, T = 4"]


def test_distillation_results():
    fig = training.distillation_results({"teacher": 97.9, "full": {"mean": 90.0, "std": 1.0},
                                         "hard": {"mean": 70.0, "std": 2.0}, "soft": {"mean": 72.0, "std": 2.0}},
                                        {"all data": 58.9, "3 % hard": 44.5, "3 % soft": 57.0})
    ours, paper = fig.axes
    assert [p.get_height() for p in ours.patches] == [97.9, 90.0, 70.0, 72.0]
    assert [t.get_text() for t in paper.texts] == ["58.9", "44.5", "57.0"] and ours.get_ylabel() == "test accuracy (%)"


def test_student_curves_mark_the_chosen_epoch():
    rec = {"eval_epochs": [0, 5, 10], "val_mean": [10.0, 60.0, 70.0], "val_std": [0.0, 2.0, 1.0]}
    fig = training.student_curves({"hard": rec, "soft": rec}, chosen={"hard": 5})
    ax = fig.axes[0]
    assert list(ax.lines[0].get_ydata()) == [10.0, 60.0, 70.0]
    assert (ax.lines[1].get_xdata()[0], ax.lines[1].get_ydata()[0]) == (5.0, 60.0)
    assert _legend(ax) == ["3 %, hard targets", "3 %, soft targets"]


def test_dsd_curves_phases_and_panels():
    curves = {"baseline": [[90.0, 91.0, 92.0, 93.0]] * 2, "dsd": [[90.0, 91.0, 92.5, 94.0], [90.0, 91.0, 92.5, 93.0]]}
    phases = [("dense", 1, 2), ("sparse", 3, 3), ("redense", 4, 4)]
    fig = training.dsd_curves(curves, phases, losses={m: [[1.0, 0.5, 0.3, 0.2]] for m in curves},
                              test_acc={"baseline": [93.0, 93.2], "dsd": [93.5, 93.9]})
    acc, loss, test = fig.axes
    assert [t.get_text() for t in acc.texts] == ["D", "S", "D′"] and loss.get_yscale() == "log"
    mean = [ln for ln in acc.lines if ln.get_label().startswith("DSD")][0]
    assert list(mean.get_ydata()) == [90.0, 91.0, 92.5, 93.5]
    assert test.get_ylabel() == "test accuracy (%)"
    assert [t.get_text() for t in test.get_xticklabels()] == ["baseline", "DSD"]


# ------------------------------------------------------------------ chapter 15
def test_claims_overview_colours_by_verdict():
    rows = [{"chapter": "04", "what": "AlexNet ratio", "unit": "×", "paper": 35.0, "ours": 35.0,
             "verdict": summary_results.REPRODUCED},
            {"chapter": "08", "what": "speedup", "unit": "×", "paper": 2.0, "ours": 1.0, "verdict": "not reproduced"},
            {"chapter": "02", "what": "accuracy change", "unit": "points", "paper": 0.0, "ours": -0.3,
             "verdict": summary_results.REPRODUCED}]
    fig = summary.claims_overview(rows)
    ratios, points = fig.axes
    markers = [ln for ln in ratios.lines if ln.get_marker() == "o"]
    assert [ln.get_xdata()[0] for ln in markers] == [1.0, 0.5] and ratios.get_xscale() == "log"
    assert [ln.get_color() for ln in markers] == [summary.VERDICT_COLORS[summary_results.REPRODUCED],
                                                  summary.VERDICT_COLORS["not reproduced"]]
    assert [t.get_text() for t in ratios.get_yticklabels()] == ["04 AlexNet ratio", "08 speedup"]   # top first
    assert _legend(points) == ["paper", "ours"]
