"""The hardware views: chapter 9 (rooflines, the batch-sweep animation, the batch-size widget; the
systolic array's per-layer bars, animations of its three dataflows, dataflow widget, array-size figure), chapter 10 (EIE's storage, dataflow animation, density widget, benchmarks) and chapters
14/16 (training hardware). Figures are checked on what they draw; animations on their frame count,
on frames that differ, and on drawing only what the simulator's result carries."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from effdl.hardware import eie, specs, systolic, trends  # noqa: E402
from effdl.hardware import roofline as rl  # noqa: E402
from effdl.viz import eie as eie_views  # noqa: E402
from effdl.viz import roofline as roofline_views  # noqa: E402
from effdl.viz import style, training_hardware  # noqa: E402
from effdl.viz import systolic as systolic_views  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _frame(anim, k: int):
    """Draw frame ``k`` by hand; returns the axes' texts and title."""
    anim._func(k)
    anim._draw_was_started = True                      # drawn by hand: no "never rendered" warning
    ax = anim._fig.axes[0]
    return _texts(ax), ax.get_title()


# ------------------------------------------------------------------ chapter 9: static figures
def test_draw_roofline_marks_the_ridge():
    roof = rl.Roofline.from_chip("TPU")
    fig, ax = plt.subplots()
    roofline_views.draw_roofline(ax, roof, x_range=(1, 1e5))
    line = ax.lines[0]
    assert roof.ridge in line.get_xdata()
    assert line.get_ydata().max() == pytest.approx(roof.peak / 1e12)
    assert _texts(ax) == [f"ridge {style.readable(roof.ridge)}"] and line.get_label() == "TPU"


def test_apps_on_rooflines_log_and_linear():
    roofs = [rl.Roofline.from_chip(c) for c in rl.PAPER_CHIPS]
    placements = rl.place_apps()
    for log in (True, False):
        fig = roofline_views.apps_on_rooflines(roofs, placements, log=log, x_range=(1, 1e5) if log else (0, 6000))
        ax = fig.axes[0]
        assert ax.get_xscale() == ax.get_yscale() == ("log" if log else "linear") and ax.get_title()
        points = [ln for ln in ax.lines if ln.get_linestyle() == "None"]
        assert len(points) == len(placements) * len(roofs)
        assert points[0].get_xdata()[0] == placements[0]["intensity"]
        assert points[0].get_ydata()[0] == placements[0]["attainable_tops"]["TPU"]


def test_latency_throughput_one_curve_per_chip():
    sweep = rl.batch_sweep("MLP0", rl.PAPER_CHIPS, [1, 16, 256])
    table4 = rl.table4_comparison()
    fig = roofline_views.latency_throughput(sweep, table4=table4, limit_ms=7.0, current=16)
    ax = fig.axes[0]
    curves = [ln for ln in ax.lines if ln.get_label().endswith("roofline bound")]
    assert len(curves) == 3 and list(curves[0].get_ydata()) == list(sweep["chips"]["TPU"]["latency_ms"])
    assert ax.get_xscale() == ax.get_yscale() == "log" and "7 ms limit" in _legend(ax)
    stars = [ln for ln in ax.lines if ln.get_marker() == "*" and len(ln.get_xdata())]
    assert len(stars) == len(table4)


def test_machine_roofline_places_each_kernel():
    kernel = rl.KernelTiming("mat-vec", 2e6, 4e6, 1e-3)
    measured = rl.MachineRoofline("cpu", 1e11, 1e10, (kernel,), threads=2)
    fig = roofline_views.machine_roofline(measured)
    ax = fig.axes[0]
    assert ax.lines[-1].get_xdata()[0] == kernel.intensity and ax.lines[-1].get_ydata()[0] == pytest.approx(2.0)
    assert ax.get_xlabel().startswith("operational intensity") and "(2 torch threads)" in ax.get_title()
    assert _legend(ax)[1] == "mat-vec: 2 GFLOP/s (40% of the roof)"


def test_systolic_layers_bars_per_layer():
    config = systolic.SystolicConfig()
    net = systolic.estimate_network(config, [systolic.Gemm(name="fc1", M=1, K=300, N=100),
                                             systolic.Gemm(name="fc2", M=1, K=100, N=10)])
    fig = systolic_views.systolic_layers({"LeNet": net}, title="T")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches[:2]] == [100 * r.mapping_efficiency for r in net.layers]
    assert [p.get_height() for p in ax.patches[2:]] == [100 * r.utilization for r in net.layers]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fc1", "fc2"] and fig._suptitle.get_text() == "T"
    assert ax.get_title() == f"LeNet: {100 * net.utilization:.0f} % over the network"


def test_gpu_panel_placeholder():
    fig, ax = plt.subplots()
    roofline_views.gpu_panel_placeholder(ax, "no GPU")
    assert _texts(ax) == ["no GPU"] and list(ax.get_xticks()) == []


# ------------------------------------------------------------------ chapter 9: the batch-size widget
def test_batch_size_state():
    s = roofline_views.batch_size_state(16)
    assert s["current"]["TPU"]["latency_ms"] == pytest.approx(20e6 / 34e9 * 1e3)
    # 32 ops per weight byte: left of the TPU's ridge (2,706), right of the Haswell's (25.5) and the K80's (17.5)
    assert [s["current"][c]["bound"] for c in ("TPU", "Haswell", "K80")] == ["memory", "compute", "compute"]
    assert s["current"]["TPU"]["utilization"] == pytest.approx(34e9 * 32 / 92e12)
    assert {r["app"]: r["intensity"] for r in s["apps"]}["LSTM1"] == 32
    assert s["apps"] == rl.place_apps(rl.PAPER_CHIPS, 16)
    odd = roofline_views.batch_size_state(300)
    assert 300 in odd["sweep"]["batch_sizes"] and 16 in s["sweep"]["batch_sizes"]


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(batch_size=0), ValueError, "batch_size must be"),
    (dict(batch_size=8, limit_ms=-1), ValueError, "limit_ms must be"),
    (dict(batch_size=8.0), TypeError, "batch_size must be"),
])
def test_batch_size_state_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        roofline_views.batch_size_state(**kwargs)


def test_batch_size_figure_draws_the_state():
    s = roofline_views.batch_size_state(64)
    fig = roofline_views.batch_size_figure(s)
    left, right = fig.axes
    assert left.get_title().startswith("batch 64") and left.get_xscale() == "log"
    filled = {ln.get_label(): ln for ln in left.lines if ln.get_label() in rl.TPU_APPS}
    assert filled["MLP0"].get_xdata()[0] == next(r["intensity"] for r in s["apps"] if r["app"] == "MLP0")
    assert right.get_title().startswith("MLP0 at batch 64: TPU ")
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)


def test_batch_size_widget_redraws():
    box = roofline_views.batch_size_widget(16)
    slider, image = box.children
    first = image.value
    assert first[:4] == b"\x89PNG" and slider.value == 16
    slider.value = 256
    assert image.value != first


# ------------------------------------------------------------------ chapter 9: animations
def test_systolic_result_carries_its_operands():
    g = systolic.Gemm(M=3, K=4, N=2)
    x, w = systolic.random_gemm(g, seed=4, low=-3, high=4)
    r = systolic.simulate(systolic.SystolicConfig(rows=2, cols=2), g, x=x, w=w, record_trace=True)
    assert np.array_equal(r.x, x) and np.array_equal(r.w, w) and r.x is not x and r.gemm == g
    assert systolic.estimate(systolic.SystolicConfig(rows=2, cols=2), g).x is None


def test_systolic_animation_draws_only_the_result():
    g = systolic.Gemm(M=3, K=4, N=2)
    x, w = systolic.random_gemm(g, seed=4, low=-3, high=4)
    r = systolic.simulate(systolic.SystolicConfig(rows=2, cols=2), g, x=x, w=w, record_trace=True)
    anim = systolic_views.systolic_animation(r, queue=3)
    assert list(anim.new_frame_seq()) == list(range(r.trace.n_cycles))
    frames = [_frame(anim, t) for t in range(r.trace.n_cycles)]
    assert len({tuple(texts) + (title,) for texts, title in frames}) == r.trace.n_cycles   # every frame differs
    assert frames[0][1].startswith("cycle 0: fold 1 of 2, loading weights")
    # the queue left of the array: the inputs the trace shows entering row i within the next 3 cycles
    start = int(np.flatnonzero(r.trace.phase == "compute")[0])          # fold 1 (k 0..1), its first cycle
    anim._func(start)
    queued = {(round(t.get_position()[0], 2), round(t.get_position()[1], 2)): t.get_text()
              for t in anim._fig.axes[0].texts if t.get_position()[0] < 0 and t.get_text().lstrip("-").isdigit()}
    # x[m, i] enters row i at the fold's cycle m + i: it waits m + i cycles, drawn at x = −wait
    expected = {(round(-(m + i) + 0.42, 2), round(-i - 0.55, 2)): str(x[m, i])
                for i in range(2) for m in range(3) if 1 <= m + i <= 3}
    assert queued == expected
    # the last frame shows Y = x @ w in the accumulators
    last, _ = frames[-1]
    assert last[-6:] == [str(v) for v in (x @ w).ravel()]
    html = style.jshtml(anim).data
    assert html.count("data:image/png;base64") == r.trace.n_cycles


@pytest.mark.parametrize("dataflow, stay, moving", [("os", "Σ=", "x="), ("is", "x=", "w=")])
def test_dataflow_animations_label_what_stays_and_what_moves(dataflow, stay, moving):
    g = systolic.Gemm(M=3, K=4, N=2)
    r = systolic.simulate(systolic.SystolicConfig(rows=3, cols=3, dataflow=dataflow), g, seed=2, record_trace=True)
    anim = systolic_views.systolic_animation(r)
    frames = [_frame(anim, t) for t in range(r.trace.n_cycles)]
    mid, title = frames[len(frames) // 2]
    assert any(t.startswith(stay) for t in mid) and any(t.startswith(moving) for t in mid)
    header = "outputs Y[0:3, 0:2]" if dataflow == "os" else "inputs X[0:3, 0:3]ᵀ"
    assert f"3×3 array, {header}" in mid
    # every useful multiply-add is counted in a title, and the last frame holds Y = x @ w
    macs = sum(int(t.split(", ")[1].split()[0]) for _, t in frames if "useful" in t)
    assert macs == g.M * g.K * g.N
    last, _ = frames[-1]
    assert last[-6:] == [str(v) for v in (r.x @ r.w).ravel()]


def test_systolic_animation_bad_input():
    g = systolic.Gemm(M=2, K=2, N=2)
    with pytest.raises(ValueError, match="must carry a trace"):
        systolic_views.systolic_animation(systolic.simulate(systolic.SystolicConfig(rows=2, cols=2), g))
    big = systolic.simulate(systolic.SystolicConfig(rows=8, cols=8), g, record_trace=True)
    with pytest.raises(ValueError, match="at most 6×6"):
        systolic_views.systolic_animation(big)


# ------------------------------------------------------------------ chapter 9: dataflow widget, array sizes
def test_dataflow_state_and_figure():
    state = systolic_views.dataflow_state(dataflow="os", rows=16, cols=8, M=100, K=70, N=30, timing="scalesim")
    res = state["results"]
    assert set(res) == {"ws", "os", "is"} and res["os"].config.timing == "scalesim"
    assert res["ws"].cycles == systolic.estimate(systolic.SystolicConfig(rows=16, cols=8, timing="scalesim"),
                                                 systolic.Gemm(M=100, K=70, N=30)).cycles
    fig = systolic_views.dataflow_figure(state)
    left, right = fig.axes
    bars = left.patches[:3]
    assert [b.get_height() for b in bars] == [res[d].total_cycles for d in ("ws", "os", "is")]
    assert [b.get_alpha() for b in bars] == [0.35, 1.0, 0.35]              # the chosen dataflow stands out
    assert _texts(left) == [f"{100 * res[d].utilization:.0f} %" for d in ("ws", "os", "is")]
    reads = [p.get_height() for p in right.patches]
    assert reads[:3] == [res[d].traffic.sram_ifmap_reads for d in ("ws", "os", "is")]
    assert reads[6:9] == [res[d].traffic.sram_ofmap_writes for d in ("ws", "os", "is")]
    assert "outputs Y (M × N) stay put" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="dataflow must be one of"):
        systolic_views.dataflow_state(dataflow="rs")


def test_dataflow_widget_redraws():
    box = systolic_views.dataflow_widget(rows=8, cols=8, M=64, K=64, N=64)
    *controls, image = box.children
    first = image.value
    assert first[:4] == b"\x89PNG"
    assert [c.description for c in controls] == ["dataflow", "timing", "rows", "cols", "M", "K", "N"]
    controls[0].value = "is"
    assert image.value != first


def test_array_size_figure():
    gemms = systolic.network_gemms("lenet5")
    sweep = systolic.sweep_array_sizes(systolic.SystolicConfig(timing="scalesim"), gemms, sizes=[4, 16, 64])
    fig = systolic_views.array_size_figure(sweep, title="LeNet-5")
    left, right = fig.axes
    for line, df in zip(left.lines, ("ws", "os", "is")):
        assert list(line.get_xdata()) == [4, 16, 64]
        assert list(line.get_ydata()) == [n.cycles for n in sweep[df]]
        assert line.get_label().startswith(df)
    assert [list(line.get_ydata()) for line in right.lines] == [[100 * n.utilization for n in sweep[df]]
                                                                for df in ("ws", "os", "is")]
    assert left.get_yscale() == "log" and right.get_ylabel() == "overall utilisation (%)"


def test_batch_sweep_animation_moves_the_apps():
    sizes = [1, 16, 256]
    anim = roofline_views.batch_sweep_animation(rl.apps_sweep(sizes, "TPU"),
                                                rl.batch_sweep("MLP0", rl.PAPER_CHIPS, sizes),
                                                table4=rl.table4_comparison(), limit_ms=7.0)
    assert list(anim.new_frame_seq()) == [0, 1, 2]
    left, right = anim._fig.axes
    mlp0 = next(ln for ln in left.lines if ln.get_label() == "MLP0")
    seen = []
    for k in range(3):
        anim._func(k)
        seen.append((mlp0.get_xdata()[0], left.get_title()))
    anim._draw_was_started = True
    assert [s[1] for s in seen] == [f"batch {b}: filled = now, hollow = deployed" for b in sizes]
    assert seen[0][0] < seen[1][0] < seen[2][0]                                  # intensity grows with the batch
    with pytest.raises(ValueError, match="same batch sizes"):
        roofline_views.batch_sweep_animation(rl.apps_sweep(sizes, "TPU"), rl.batch_sweep("MLP0", rl.PAPER_CHIPS, [1]))


# ------------------------------------------------------------------ chapter 10: EIE
@pytest.fixture(scope="module")
def example():
    w, a = eie.dataflow_example()
    config = eie.EIEConfig(n_pes=4)
    return w, a, config, eie.encode(w, config)


def test_eie_result_carries_its_workload(example):
    w, a, config, layer = example
    bias = np.arange(8.0)
    r = eie.simulate(config, layer, a, bias=bias)
    assert r.layer is layer and np.array_equal(r.activations, a) and np.array_equal(r.bias, bias)
    assert np.array_equal(eie.simulate(config, layer, a).bias, np.zeros(8))


def test_storage_figure(example):
    _, _, _, layer = example
    fig = eie_views.storage_figure(layer, pe=0)
    ax = fig.axes[0]
    assert "PE0 stores rows 0, 4" in ax.get_title()
    texts = _texts(ax)
    assert texts.count("filler") == sum(int(v == 0) for v in layer.virtual_weight[0])
    assert [t for t in texts if t in ("0", "1", "2", "3", "5")][-5:] == [str(p) for p in layer.column_pointer[0]]


def test_dataflow_animation_reads_the_result(example):
    w, a, config, layer = example
    result = eie.simulate(config, layer, a, method="step")
    anim = eie_views.dataflow_animation(result)
    assert list(anim.new_frame_seq()) == list(range(len(result.trace) + 1))     # one per cycle, then ReLU
    texts, title = _frame(anim, 1)
    assert "broadcasts a3" in title and "w0,1 × a1" in " ".join(texts) and "column 1 is empty here" in " ".join(texts)
    first = _frame(anim, 0)
    assert first != (texts, title)
    texts, title = _frame(anim, len(result.trace))
    assert "ReLU" in title and "-2.00" not in texts and "✗" in " ".join(texts)   # b7 < 0 is clipped
    # the partial sums start from the bias the result carries
    biased = eie.simulate(config, layer, a, bias=np.full(8, 10.0), method="step")
    texts, _ = _frame(eie_views.dataflow_animation(biased), 0)
    assert "10.00" in texts
    with pytest.raises(ValueError, match="method='step'"):
        eie_views.dataflow_animation(eie.simulate(config, layer, a))
    assert eie_views._queue_columns(result, [1, 3], 0) == [[1]] * 4      # a1 waits in every queue


def test_density_state_matches_the_simulator():
    state = eie_views.density_state(0.1, 0.5, 8, 2, rows=128, cols=96)
    config = eie.EIEConfig(n_pes=8, queue_depth=2)
    layer = eie.random_layer(128, 96, 0.1, config, seed=0)
    result = eie.simulate(config, layer, eie.random_activations(96, 0.5, seed=1))
    assert state["cycles"] == result.cycles and state["load_balance"] == result.load_balance
    assert state["energy_uj"] == pytest.approx(eie.energy(result)["total_uj"])
    assert (state["busy"] + state["stall"] + state["idle"] == result.matvec_cycles).all()
    deeper = eie_views.density_state(0.1, 0.5, 8, 64, rows=128, cols=96)
    assert deeper["cycles"] <= state["cycles"] and deeper["stall"].sum() <= state["stall"].sum()
    with pytest.raises(ValueError, match="n_pes"):
        eie_views.density_state(0.1, 0.5, 0, 8)
    with pytest.raises(ValueError, match="weight_density"):
        eie_views.density_state(0.0, 0.5, 8, 8)


def test_density_figure_draws_the_state():
    state = eie_views.density_state(0.1, 0.5, 8, 2, rows=128, cols=96)
    fig = eie_views.density_figure(state)
    left, right = fig.axes
    busy = [p.get_height() for p in left.patches[:8]]
    assert busy == list(state["busy"]) and len(left.patches) == 3 * 8
    assert _legend(left) == ["busy", "stall", "idle"] and right.get_xscale() == "log"
    widths = [p.get_width() for p in right.patches]
    assert widths[3] == state["energy_uj"] and widths[4] == state["dense_energy_uj"]
    assert f"{state['cycles']:,} cycles" in left.get_title()


def test_density_widget_redraws():
    box = eie_views.density_widget(0.1, 0.5, 8, 2, rows=128, cols=96)
    (wd, ad), (pes, depth) = box.children[0].children, box.children[1].children
    image = box.children[2]
    first = image.value
    assert first[:4] == b"\x89PNG" and (pes.value, depth.value) == (8, 2)
    depth.value = 64
    assert image.value != first


def test_speedup_figure_with_geometric_mean():
    rows = [{"name": n, "speedup_cpu_dense": s, "speedup_gpu_dense": s / 2, "speedup_cpu_sparse": s / 4,
             "speedup_gpu_sparse": s / 8} for n, s in (("a", 16.0), ("b", 64.0))]
    fig = eie_views.speedup_figure(rows, title="T")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches[:3]] == [16.0, 64.0, pytest.approx(32.0)]   # geo. mean
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "geo. mean"] and ax.get_yscale() == "log"
    assert _legend(ax) == ["CPU dense", "GPU dense", "CPU sparse", "GPU sparse"]


def test_sweep_figure():
    curves = {"fc6": [(1, 1.0), (2, 1.9), (4, 3.5)], "fc7": [(1, 1.0), (2, 2.0), (4, 3.9)]}
    fig = eie_views.sweep_figure(curves, xlabel="PEs", ylabel="speedup", title="T", ideal=True, log_y=True)
    ax = fig.axes[0]
    assert list(ax.lines[1].get_ydata()) == [1.0, 2.0, 3.9] and list(ax.lines[2].get_ydata()) == [1, 2, 4]
    assert ax.get_xscale() == ax.get_yscale() == "log" and _legend(ax)[-1] == "ideal (linear)"


# ------------------------------------------------------------------ chapters 14 and 16
def test_chip_generations():
    rows = specs.training_chip_table()
    fig = training_hardware.chip_generations(rows, measured_tflops=0.1, measured_label="this CPU")
    left, right = fig.axes
    fp32 = [ln for ln in left.lines if ln.get_marker() == "o" and len(ln.get_xdata())]
    assert len(fp32) == sum(r["fp32_tflops"] is not None for r in rows)
    assert left.get_yscale() == right.get_yscale() == "log" and "this CPU" in _texts(left)
    assert not plt.fignum_exists(fig.number)                                    # closed: shown once


def test_moore_trends():
    t = trends.load_trends()
    fig = training_hardware.moore_trends(t, source="src")
    ax = fig.axes[0]
    assert len(ax.lines) == len(t) + 1 and ax.get_yscale() == "log"
    assert list(ax.lines[0].get_xdata()) == list(next(iter(t.values())).years)
    assert fig.texts[0].get_text() == "src" or fig._supxlabel.get_text() == "src"


def test_step_times_one_group_per_mode():
    fig = training_hardware.step_times({"cpu": {"fp32": 10.0, "amp": 8.0}, "gpu": {"fp32": 1.0}}, title="T")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fp32", "amp"] and _legend(ax) == ["cpu", "gpu"]
    assert [p.get_height() for p in ax.patches][:3] == [10.0, 8.0, 1.0]


def test_measured_against_peaks():
    fig = training_hardware.measured_against_peaks({"V100": 125.0}, {"here": 0.1}, title="T")
    ax = fig.axes[0]
    assert [p.get_width() for p in ax.patches] == [125.0, 0.1] and ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["V100", "here"]       # peaks on top
    assert ax.patches[0].get_y() > ax.patches[1].get_y()


def test_format_throughput():
    fig = training_hardware.format_throughput({"H200": {"fp32": 50.0, "bf16": 700.0}}, title="T")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [50.0, 700.0] and ax.get_yscale() == "log"
    assert ax.yaxis.get_major_formatter()(100, 0) == "100"


def test_matmul_roofline():
    roof = rl.Roofline("H200", 989e12, 4.8e12, "dram")
    fig = training_hardware.matmul_roofline(roof, [("small", 10.0), ("big", 5000.0)], title="T")
    ax = fig.axes[0]
    small, big = ax.lines[-2:]
    assert small.get_ydata()[0] == pytest.approx(48.0) and big.get_ydata()[0] == pytest.approx(989.0)
    assert _legend(ax)[1].startswith("small: 10 FLOP/byte") and ax.get_xscale() == "log"
