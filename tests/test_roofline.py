"""effdl.hardware.roofline: the model, layer intensities against torch's FLOP counter, the TPU apps,
batch size and latency, this machine's measurement, bad input."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from effdl.architectures import count_macs, get_architecture  # noqa: E402
from effdl.hardware import roofline as rl  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def torch_flops(module, *inputs) -> int:
    with FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops()


# --------------------------------------------------------------------------- the model
def test_attainable_is_the_min_of_the_two_roofs_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(50):
        peak, bw = 10 ** rng.uniform(9, 14), 10 ** rng.uniform(9, 12)
        i = 10 ** rng.uniform(-2, 5, size=20)
        got = rl.attainable(i, peak, bw)
        assert got.shape == i.shape
        assert np.allclose(got, [min(peak, bw * v) for v in i])
        assert np.all(np.diff(rl.attainable(np.sort(i), peak, bw)) >= 0)       # never decreases
    assert isinstance(rl.attainable(3.0, 1e12, 1e9), float)


def test_ridge_is_where_the_roofs_meet():
    peak, bw = 92e12, 34e9
    r = rl.ridge_point(peak, bw)
    assert rl.attainable(r, peak, bw) == pytest.approx(peak) == pytest.approx(bw * r)
    assert rl.attainable(r * 0.999, peak, bw) < peak
    roof = rl.Roofline.from_chip("TPU")
    assert roof.ridge == pytest.approx(r)
    assert roof.bound(r * 0.99) == "memory" and roof.bound(r) == "compute"
    assert (roof.peak_tops, roof.bandwidth_gbs) == (92.0, 34.0)


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_fc_work_matches_torch_flop_counter_and_parameters(batch):
    layer = torch.nn.Linear(300, 100, bias=False)
    w = rl.fc_work(300, 100, batch)
    assert w.ops == torch_flops(layer, torch.randn(batch, 300))
    assert w.weight_bytes == layer.weight.numel()                          # 8-bit weights
    assert w.activation_bytes == batch * (300 + 100)
    assert w.intensity("weight") == 2 * batch                              # each weight used once per input
    assert w.intensity("dram") < w.intensity("weight")
    fp32 = rl.fc_work(300, 100, batch, n_bits_weight=32, n_bits_act=32)
    assert fp32.intensity("weight") == pytest.approx(w.intensity("weight") / 4)


@pytest.mark.parametrize("c_in, c_out, k, size, stride, padding, groups, batch", [
    (3, 96, 11, 227, 4, 0, 1, 1), (96, 256, 5, 27, 1, 2, 2, 2), (64, 64, 3, 56, 1, 1, 1, 3), (8, 4, 1, (10, 7), 2, 0, 4, 1)])
def test_conv_work_matches_torch_flop_counter(c_in, c_out, k, size, stride, padding, groups, batch):
    conv = torch.nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, groups=groups, bias=False)
    h, w_ = (size, size) if isinstance(size, int) else size
    x = torch.randn(batch, c_in, h, w_)
    out = conv(x)
    work = rl.conv_work(c_in, c_out, k, size, batch, stride=stride, padding=padding, groups=groups)
    assert work.ops == torch_flops(conv, x)
    assert work.weight_bytes == conv.weight.numel()
    assert work.activation_bytes == x.numel() + out.numel()


def test_lstm_cell_work_matches_torch_flop_counter():
    cell = torch.nn.LSTMCell(120, 80, bias=False)
    x, h, c = torch.randn(16, 120), torch.randn(16, 80), torch.randn(16, 80)
    w = rl.lstm_cell_work(120, 80, 16)
    assert w.ops == torch_flops(cell, x, (h, c))
    assert w.weight_bytes == cell.weight_ih.numel() + cell.weight_hh.numel()
    assert w.intensity("weight") == 2 * 16


def test_intensity_grows_with_batch_weight_convention_linearly_dram_saturating():
    i_w = [rl.fc_work(1024, 1024, b).intensity("weight") for b in (1, 2, 4, 1024)]
    assert i_w == [2, 4, 8, 2048]
    i_d = [rl.fc_work(1024, 1024, b).intensity("dram") for b in (1, 10, 100, 10_000, 1_000_000)]
    assert np.all(np.diff(i_d) > 0)
    assert i_d[-1] < 2 * 1024 * 1024 / 2048 + 1e-9          # limit: ops / activation bytes = 1024


def test_network_work_adds_up_to_the_architecture_macs():
    works = rl.network_work("alexnet", batch_size=4)
    assert sum(w.ops for w in works) == 2 * 4 * count_macs(get_architecture("alexnet"))
    fc6 = next(w for w in works if w.name == "fc6")
    assert fc6.intensity("weight") == 2 * 4


# --------------------------------------------------------------------------- the TPU apps
def test_apps_are_table_1_with_a_multiply_add_counted_twice():
    assert [a.name for a in rl.TPU_APPS.values()] == ["MLP0", "MLP1", "LSTM0", "LSTM1", "CNN0", "CNN1"]
    for app in rl.TPU_APPS.values():
        assert app.intensity() == 2 * app.table1_intensity
        if app.kind in ("MLP", "LSTM"):
            assert app.table1_intensity == app.batch_size                   # FC weights: reuse = batch
            assert app.intensity(1) == 2
    cnn0 = rl.TPU_APPS["CNN0"]
    assert cnn0.intensity(16) == pytest.approx(2 * cnn0.intensity(8))
    assert sum(rl.DEPLOYED_SHARE.values()) == pytest.approx(0.95)


def test_place_apps_on_the_three_rooflines():
    rows = {r["app"]: r for r in rl.place_apps()}
    assert rows["MLP0"]["attainable_tops"]["TPU"] == pytest.approx(34e9 * 400 / 1e12)      # 13.6
    assert rows["CNN0"]["attainable_tops"]["TPU"] == 92.0 and rows["CNN0"]["bound"]["TPU"] == "compute"
    for name in ("MLP0", "MLP1", "LSTM0", "LSTM1"):
        assert rows[name]["bound"]["TPU"] == "memory"
        assert rows[name]["bound"]["K80"] == rows[name]["bound"]["Haswell"] == "compute"
    moved = {r["app"]: r for r in rl.place_apps(batch_size=1)}
    assert all(moved[a]["intensity"] < rows[a]["intensity"] for a in ("MLP0", "CNN0", "CNN1"))


def test_batch_time_flat_while_memory_bound_then_linear():
    tpu = rl.Roofline.from_chip("TPU")
    mlp0 = rl.TPU_APPS["MLP0"]
    t = [rl.batch_time(mlp0.work(b), tpu) for b in (1, 16, 200, 1000)]
    assert t == pytest.approx([20e6 / 34e9] * 4)                          # weights fetched once per batch
    big = [rl.batch_time(mlp0.work(b), tpu) for b in (4000, 8000)]
    assert big[1] == pytest.approx(2 * big[0])                             # compute-bound: linear
    sweep = rl.batch_sweep("MLP0", ("TPU",), [1, 10, 100, 1000, 10_000])
    ips = sweep["chips"]["TPU"]["throughput_ips"]
    assert np.all(np.diff(ips) > 0) and ips[-1] == pytest.approx(92e12 / (2 * 20e6))


def test_max_batch_under_latency_is_the_largest_that_fits():
    for chip, limit in [("TPU", 1.0), ("Haswell", 0.5), ("K80", 2.0)]:
        b = rl.max_batch_under_latency("MLP0", chip, limit)
        roof, app = rl.Roofline.from_chip(chip), rl.TPU_APPS["MLP0"]
        assert rl.batch_time(app.work(b), roof) * 1e3 <= limit < rl.batch_time(app.work(b + 1), roof) * 1e3
    assert rl.max_batch_under_latency("MLP0", "TPU", 0.1) == 0               # 20 MB at 34 GB/s > 0.1 ms


def test_table_4_runs_below_its_roofline_bound():
    rows = rl.table4_comparison()
    assert [(r["label"], r["batch_size"]) for r in rows] == [("CPU", 16), ("GPU", 16), ("TPU", 200), ("TPU", 250)]
    for r in rows:
        assert 0 < r["fraction_of_bound"] < 1                             # measured IPS under the bound
        assert r["bound_ms"] < r["p99_ms"]


def test_report_without_measuring():
    rep = rl.roofline_report(measure=False)
    assert rep["chips"]["TPU"]["ridge"] == pytest.approx(2705.88, abs=0.01)
    assert rep["apps"]["MLP0"]["intensity"] == 400.0
    assert rep["systolic"]["utilization"] == pytest.approx(rep["apps"]["MLP0"]["attainable_tops"]["TPU"] / 92, rel=0.01)
    assert set(rep["apps"]) == set(rl.TPU_APPS)


# --------------------------------------------------------------------------- measured
def test_measure_machine_is_quick_and_consistent():
    m = rl.measure_machine(budget_s=0.5)
    assert m.peak > 1e8 and m.bandwidth > 1e7
    names = [k.name for k in m.kernels]
    assert len(names) == 4 and names[0] == "dense mat-vec"
    dense = m.kernels[0]
    assert dense.intensity == pytest.approx(2 * 4096 ** 2 / (4 * (4096 ** 2 + 2 * 4096)))
    assert all(k.seconds > 0 and k.performance > 0 for k in m.kernels)
    assert m.roofline.convention == "dram" and m.roofline.ridge == pytest.approx(m.peak / m.bandwidth)
    assert m.kernels[0].performance < m.peak                               # a mat-vec cannot beat a matmul


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when no GPU is present")
def test_measure_machine_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="device must be available"):
        rl.measure_machine("cuda")


# --------------------------------------------------------------------------- widget and figures: tests/test_viz_hardware.py






@pytest.mark.parametrize("call, exc, match", [
    (lambda: rl.attainable(0.0, 1e12, 1e9), ValueError, "intensity must be finite and > 0"),
    (lambda: rl.attainable([1.0, -2.0], 1e12, 1e9), ValueError, "intensity must be finite and > 0"),
    (lambda: rl.attainable(float("nan"), 1e12, 1e9), ValueError, "intensity"),
    (lambda: rl.attainable("high", 1e12, 1e9), TypeError, "intensity must be"),
    (lambda: rl.attainable(True, 1e12, 1e9), TypeError, "intensity must be"),
    (lambda: rl.attainable(1.0, 0, 1e9), ValueError, "peak must be"),
    (lambda: rl.attainable(1.0, 1e12, -5.0), ValueError, "bandwidth must be"),
    (lambda: rl.ridge_point(1e12, 0), ValueError, "bandwidth must be"),
    (lambda: rl.Roofline("x", 1e12, 0.0), ValueError, "bandwidth must be"),
    (lambda: rl.Roofline("x", 1e12, 1e9, "flops"), ValueError, "convention must be one of"),
    (lambda: rl.Roofline.from_chip("TPU v9"), ValueError, "name must be one of"),
    (lambda: rl.Roofline.from_chip("Cloud TPU v2"), ValueError, "known memory bandwidth"),
    (lambda: rl.fc_work(0, 10), ValueError, "n_in must be"),
    (lambda: rl.fc_work(10, 10, batch_size=0), ValueError, "batch_size must be"),
    (lambda: rl.fc_work(10.0, 10), TypeError, "n_in must be an integer"),
    (lambda: rl.fc_work(10, 10, n_bits_weight=0), ValueError, "n_bits_weight must be"),
    (lambda: rl.conv_work(6, 4, 3, 10, groups=4), ValueError, "groups must divide"),
    (lambda: rl.conv_work(3, 4, 5, 3), ValueError, "in_size must be at least the kernel"),
    (lambda: rl.conv_work(3, 4, (3, 3, 3), 8), ValueError, "kernel_size must be"),
    (lambda: rl.lstm_cell_work(10, 0), ValueError, "hidden must be"),
    (lambda: rl.fc_work(4, 4).intensity("flop"), ValueError, "convention must be one of"),
    (lambda: rl.Work("empty", 1.0, 0.0, 0.0).intensity(), ValueError, "must move some bytes"),
    (lambda: rl.get_app("MLP2"), ValueError, "get_app: name must be one of"),
    (lambda: rl.TPU_APPS["MLP0"].intensity(0), ValueError, "batch_size must be"),
    (lambda: rl.batch_sweep("MLP0", batch_sizes=[1, 0]), ValueError, r"batch_sizes\[1\] must be an integer in \[1"),
    (lambda: rl.batch_sweep("MLP0", batch_sizes=[1.5]), TypeError, r"batch_sizes\[0\] must be an integer"),
    (lambda: rl.apps_sweep([]), ValueError, "apps_sweep: batch_sizes must be a list"),
    (lambda: rl.apps_sweep(3), TypeError, "apps_sweep: batch_sizes must be a list"),
    (lambda: rl.max_batch_under_latency("MLP0", "TPU", 0), ValueError, "limit_ms must be"),
    (lambda: rl.batch_time("work", rl.Roofline.from_chip("TPU")), TypeError, "work must be a Work"),
    (lambda: rl.measure_machine("tpu"), ValueError, "device must be one of"),
    (lambda: rl.measure_machine(budget_s=0), ValueError, "budget_s must be"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_exercise_check_fc_intensity_accepts_the_rule_and_rejects_mistakes():
    from effdl import exercises

    assert "passed" in exercises.check_fc_intensity(lambda n_in, n_out, b, bits: 2 * b / (bits / 8))
    with pytest.raises(AssertionError, match="factor of 2"):
        exercises.check_fc_intensity(lambda n_in, n_out, b, bits: b / (bits / 8))
    with pytest.raises(AssertionError, match="differs"):
        exercises.check_fc_intensity(lambda n_in, n_out, b, bits: 2 * b * n_in / (n_in + n_out))
