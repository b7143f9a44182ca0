"""effdl.hardware.systolic: the step simulator against numpy, the closed form against the step
simulator on many random shapes, the trace's timing, whole networks, bad input (the animation: tests/test_viz_hardware.py)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from effdl.architectures import count_macs, get_architecture  # noqa: E402
from effdl.hardware import roofline as rl  # noqa: E402
from effdl.hardware import systolic as sy  # noqa: E402

TOTALS = ("cycles", "load_cycles", "fill_cycles", "stream_cycles", "drain_cycles", "n_folds", "macs", "weights_placed")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def random_case(rng):
    cfg = sy.SystolicConfig(int(rng.integers(1, 7)), int(rng.integers(1, 7)), bool(rng.integers(2)),
                            [None, 0.5, 1.25, 3.0, 7.0][rng.integers(5)], int(rng.choice([4, 8, 16])))
    m, k, n = (int(v) for v in rng.integers(1, 14, size=3))
    return cfg, m, k, n


@pytest.mark.parametrize("seed", range(8))
def test_step_simulator_and_closed_form_agree_on_random_shapes(seed):
    rng = np.random.default_rng(seed)
    for case in range(25):
        cfg, m, k, n = random_case(rng)
        x, w = sy.random_gemm(m, k, n, seed=100 * seed + case)
        step, closed = sy.simulate(cfg, x, w), sy.estimate(cfg, m, k, n)
        assert np.array_equal(step.output, x @ w), (cfg, m, k, n)
        assert [getattr(step, a) for a in TOTALS] == [getattr(closed, a) for a in TOTALS], (cfg, m, k, n)
        assert step.folds == closed.folds
        assert step.cycles == step.load_cycles + step.fill_cycles + step.stream_cycles + step.drain_cycles


def test_float_gemm_matches_numpy():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(7, 9)), rng.normal(size=(9, 5))
    r = sy.simulate(sy.SystolicConfig(4, 3), x, w)
    assert np.allclose(r.output, x @ w, rtol=1e-12, atol=1e-12)
    assert r.n_folds == 3 * 2


def test_cycle_count_by_hand():
    # 2×2 array, M=3, K=N=2: load 2 rows, then 3 vectors + fill (2-1) + drain (2-1)
    r = sy.simulate(sy.SystolicConfig(2, 2), *sy.random_gemm(3, 2, 2))
    assert (r.load_cycles, r.stream_cycles, r.fill_cycles, r.drain_cycles, r.cycles) == (2, 3, 1, 1, 7)
    # not double-buffered, two K-folds: each pays its load
    r = sy.simulate(sy.SystolicConfig(2, 2, double_buffered=False), *sy.random_gemm(3, 4, 2))
    assert r.cycles == 2 * (2 + 3 + 1 + 1)
    # weights at 1 byte/cycle, 8-bit, 2 per row: a row every 2 cycles
    r = sy.simulate(sy.SystolicConfig(2, 2, weight_bandwidth=1.0), *sy.random_gemm(3, 2, 2))
    assert r.load_cycles == 4


def test_trace_follows_the_skew_and_the_partial_sums():
    cfg = sy.SystolicConfig(3, 4)
    x, w = sy.random_gemm(5, 3, 4, seed=9)
    r = sy.simulate(cfg, x, w, record_trace=True)
    tr = r.trace
    start = int(np.flatnonzero(tr.phase == "compute")[0])
    assert start == r.load_cycles == 3
    for t in range(start, tr.n_cycles):
        tf = t - start
        for i in range(3):
            for j in range(4):
                m = tf - i - j                                    # x[m] reaches PE(i, j) at cycle m + i + j
                expect = m if 0 <= m < 5 else -1
                assert tr.act_tag[t, i, j] == expect
                if expect >= 0:
                    assert tr.act[t, i, j] == x[m, i]
                    assert tr.psum[t, i, j] == x[m, :i + 1] @ w[:i + 1, j]   # sum of the rows above
    assert int(tr.mac.sum()) == r.macs == 5 * 3 * 4
    assert [(c - start, m, n) for c, m, n, _ in tr.outputs][:3] == [(2, 0, 0), (3, 1, 0), (3, 0, 1)]
    assert np.all(tr.weight[-1] == w)


def test_double_buffering_and_bandwidth_only_ever_cost_cycles():
    rng = np.random.default_rng(5)
    for _ in range(40):
        m, k, n = (int(v) for v in rng.integers(1, 600, size=3))
        fast = sy.estimate(sy.SystolicConfig(16, 16), m, k, n)
        slow = sy.estimate(sy.SystolicConfig(16, 16, double_buffered=False), m, k, n)
        starved = sy.estimate(sy.SystolicConfig(16, 16, weight_bandwidth=2.0), m, k, n)
        assert fast.cycles <= slow.cycles and fast.cycles <= starved.cycles
        assert 0 < starved.utilization <= fast.utilization <= fast.mapping_efficiency <= 1
        assert fast.mapping_efficiency == pytest.approx(k * n / (fast.n_folds * 256))


def test_utilization_tends_to_mapping_efficiency_for_long_streams():
    r = sy.estimate(sy.SystolicConfig(), 10_000_000, 300, 700)
    assert r.utilization == pytest.approx(r.mapping_efficiency, rel=1e-3)
    assert r.mapping_efficiency == pytest.approx(300 * 700 / (2 * 3 * 65536))


@pytest.mark.parametrize("batch", [1, 16, 200, 1000, 4000])
def test_tpu_array_is_bounded_by_the_roofline(batch):
    r = sy.estimate(sy.SystolicConfig.tpu(), batch, 9216, 4096)
    roof = rl.Roofline.from_chip("TPU")
    bound = roof.attainable(rl.fc_work(9216, 4096, batch).intensity("weight")) / roof.peak
    # the array's 65,536 × 2 × 700 MHz is 91.75 TOPS, 0.3 % under the paper's 92: allow 1 %
    assert r.utilization <= bound * 1.01
    if batch <= 200:                                     # deep in the memory-bound region they coincide
        assert r.utilization == pytest.approx(bound, rel=0.02)


def test_network_gemms_cover_every_mac():
    for name in ("alexnet", "vgg16", "lenet5"):
        gemms = sy.network_gemms(name, batch_size=2)
        assert sum(g.macs for g in gemms) == 2 * count_macs(get_architecture(name))
    alex = {g.name: g for g in sy.network_gemms("alexnet")}
    assert (alex["conv2"].m, alex["conv2"].k, alex["conv2"].n, alex["conv2"].count) == (27 * 27, 48 * 25, 128, 2)
    assert (alex["fc6"].m, alex["fc6"].k, alex["fc6"].n) == (1, 9216, 4096)
    est = sy.estimate_gemms(sy.SystolicConfig(), sy.network_gemms("alexnet"))
    assert est["cycles"] == sum(r["cycles"] for r in est["layers"])
    assert est["macs"] == count_macs(get_architecture("alexnet"))
    assert est["utilization"] == pytest.approx(est["macs"] / (est["cycles"] * 65536))
    conv2 = next(r for r in est["layers"] if r["name"] == "conv2")
    assert conv2["cycles"] == 2 * sy.estimate(sy.SystolicConfig(), 729, 1200, 128).cycles
    for cfg in (sy.SystolicConfig(), sy.SystolicConfig.tpu(), sy.SystolicConfig(128, 64, double_buffered=False)):
        for row, g in zip(sy.estimate_gemms(cfg, sy.network_gemms("vgg16", 2))["layers"], sy.network_gemms("vgg16", 2)):
            one = sy.estimate(cfg, g.m, g.k, g.n)
            assert (row["cycles"], row["folds"]) == (one.cycles, one.n_folds)
            assert row["utilization"] == pytest.approx(one.utilization)
            assert row["mapping_efficiency"] == pytest.approx(one.mapping_efficiency)


def test_step_simulator_runs_a_full_256_array_fold():
    x, w = sy.random_gemm(3, 256, 256, seed=1)
    r = sy.simulate(sy.SystolicConfig(), x, w)
    assert np.array_equal(r.output, x @ w)
    assert r.cycles == sy.estimate(sy.SystolicConfig(), 3, 256, 256).cycles == 256 + 3 + 255 + 255




@pytest.mark.parametrize("call, exc, match", [
    (lambda: sy.SystolicConfig(0, 4), ValueError, "rows must be"),
    (lambda: sy.SystolicConfig(4, -1), ValueError, "cols must be"),
    (lambda: sy.SystolicConfig(2.5, 4), TypeError, "rows must be an integer"),
    (lambda: sy.SystolicConfig(4, 4, double_buffered="yes"), TypeError, "double_buffered must be True or False"),
    (lambda: sy.SystolicConfig(4, 4, weight_bandwidth=0.0), ValueError, "weight_bandwidth must be"),
    (lambda: sy.SystolicConfig(4, 4, weight_bits=0), ValueError, "weight_bits must be"),
    (lambda: sy.SystolicConfig(4, 4, clock_mhz=-700.0), ValueError, "clock_mhz must be"),
    (lambda: sy.simulate("cfg", np.ones((2, 2)), np.ones((2, 2))), TypeError, "config must be a SystolicConfig"),
    (lambda: sy.simulate(sy.SystolicConfig(2, 2), np.ones((2, 3)), np.ones((2, 2))), ValueError, "w must have as many rows"),
    (lambda: sy.simulate(sy.SystolicConfig(2, 2), np.ones(3), np.ones((3, 2))), ValueError, "x must be a non-empty 2-D"),
    (lambda: sy.simulate(sy.SystolicConfig(2, 2), np.ones((0, 2)), np.ones((2, 2))), ValueError, "x must be a non-empty"),
    (lambda: sy.simulate(sy.SystolicConfig(2, 2), np.ones((2, 2), bool), np.ones((2, 2))), TypeError, "x must be a 2-D numeric"),
    (lambda: sy.simulate(sy.SystolicConfig(2, 2), np.ones((2, 2)), np.full((2, 2), np.nan)), ValueError, "w must be finite"),
    (lambda: sy.simulate(sy.SystolicConfig(2, 2), "x", np.ones((2, 2))), TypeError, "x must be a 2-D numeric"),
    (lambda: sy.estimate(sy.SystolicConfig(), 0, 4, 4), ValueError, "M must be"),
    (lambda: sy.estimate(sy.SystolicConfig(), 4, 4.0, 4), TypeError, "K must be an integer"),
    (lambda: sy.Gemm("fc", 1, 2, 3, count=0), ValueError, "count must be"),
    (lambda: sy.estimate_gemms(sy.SystolicConfig(), []), TypeError, "gemms must be a non-empty sequence"),
    (lambda: sy.network_gemms("alexnet", batch_size=0), ValueError, "batch_size must be"),
    (lambda: sy.random_gemm(2, 2, 2, low=3, high=3), ValueError, "high must be"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def _fold_cycles_by_hand(rows, cols, m, k, n):
    n_k, n_n = -(-k // rows), -(-n // cols)
    return min(k, rows) + sum(n_k * (m + rows - 1 + min(cols, n - j * cols) - 1) for j in range(n_n))


def test_exercise_check_fold_cycles_accepts_the_model_and_rejects_mistakes():
    from effdl import exercises

    assert "passed" in exercises.check_fold_cycles(_fold_cycles_by_hand)
    with pytest.raises(AssertionError, match="first tile's weights"):
        exercises.check_fold_cycles(lambda *a: _fold_cycles_by_hand(*a) - min(a[3], a[0]))
    with pytest.raises(AssertionError, match="the model counts"):
        exercises.check_fold_cycles(lambda r, c, m, k, n: m * -(-k // r) * -(-n // c))
