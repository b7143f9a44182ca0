"""Tests for effdl.hardware.eie: the seed's 8×4 example stored and run exactly; the storage
format against effdl.coding's relative index column by column and against the dense matrix;
the functional result against the dense product on random layers and on real compressed
LeNet-300-100 layers (torch as the oracle); the step and event paths agreeing cycle for
cycle; properties of the cycle model (queue bounds, monotone in queue depth, the unbounded
queue's closed form); energy from the action counts; the paper's layers; bad inputs."""
import doctest

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import effdl.hardware.eie as eie
from effdl import sharing, zoo
from effdl.coding import relative_index_encode
from effdl.data import load_mnist
from effdl.hardware import energy as energy_table
from effdl.hardware.eie import EIEConfig, encode, random_activations, random_layer, simulate


def test_docstring_examples():
    assert doctest.testmod(eie).failed == 0


# ------------------------------------------------------------ the seed's example
@pytest.fixture(scope="module")
def example():
    w, a = eie.dataflow_example()
    config = EIEConfig(n_pes=4)
    return w, a, config, encode(w, config)


def test_seed_example_storage_is_the_lectures(example):
    """PE0 owns rows 0 and 4: virtual weights w0,0 w0,1 w4,2 w0,3 w4,3, relative index
    0 0 1 0 0 (w4,2 skips local row 0), column pointer 0 1 2 3 5 (4 columns, 5 pointers)."""
    w, _, _, layer = example
    # the codebook: the zero, then the 7 distinct values in order (k-means is exact here)
    assert layer.codebook.tolist() == [0.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0]
    assert layer.virtual_weight[0].tolist() == [5, 3, 1, 6, 4]
    assert layer.codebook[layer.virtual_weight[0]].tolist() == [w[0, 0], w[0, 1], w[4, 2], w[0, 3], w[4, 3]]
    assert layer.relative_index[0].tolist() == [0, 0, 1, 0, 0]
    assert layer.column_pointer[0].tolist() == [0, 1, 2, 3, 5]
    expected = {  # PE: (weights in storage order, relative index, column pointer)
        1: ([w[5, 0], w[1, 2]], [1, 0], [0, 1, 1, 2, 2]),
        2: ([w[2, 1], w[2, 3], w[6, 3]], [0, 0, 0], [0, 0, 1, 1, 3]),
        3: ([w[7, 1]], [1], [0, 0, 1, 1, 1]),
    }
    for pe, (weights, rel, ptr) in expected.items():
        assert layer.codebook[layer.virtual_weight[pe]].tolist() == weights
        assert layer.relative_index[pe].tolist() == rel
        assert layer.column_pointer[pe].tolist() == ptr
        assert layer.pe_rows(pe).tolist() == [pe, pe + 4]
    assert layer.n_nonzeros == 11 and layer.n_fillers == 0
    np.testing.assert_array_equal(layer.to_dense(), w)


def test_seed_example_dataflow_cycle_by_cycle(example):
    """a = (0, a1, 0, a3): a1 is broadcast in cycle 0, a3 in cycle 1; PE1 owns no weight of
    columns 1 and 3 (two pointer-only cycles), PE3 none of column 3."""
    w, a, config, layer = example
    result = simulate(config, layer, a, method="step")
    assert result.broadcast_cycle.tolist() == [0, 1]
    assert [c.broadcast for c in result.trace] == [1, 3, None, None]
    states = [[pe.state for pe in c.pes] for c in result.trace]
    assert states == [["idle"] * 4,
                      ["mac", "pointer", "mac", "mac"],
                      ["mac", "pointer", "mac", "pointer"],
                      ["mac", "idle", "mac", "idle"]]
    used = [[(pe.row, pe.column) for pe in c.pes if pe.state == "mac"] for c in result.trace]
    assert used == [[], [(0, 1), (2, 1), (7, 1)], [(0, 3), (2, 3)], [(4, 3), (6, 3)]]
    assert result.trace[2].pes[0].psum == w[0, 1] * a[1] + w[0, 3] * a[3]
    assert result.matvec_cycles == 4 and result.relu_cycles == 2 and result.cycles == 6
    assert result.busy.tolist() == [3, 2, 3, 2] and result.stall.sum() == 0
    np.testing.assert_array_equal(result.output, np.maximum(w @ a, 0))
    assert result.output[7] == 0 and result.preactivation[7] < 0        # ReLU at work
    assert result.latency_us == 6 / 800


# ------------------------------------------------------------------- storage
def test_fillers_bridge_long_gaps_within_a_column():
    """4-bit index: 15 skipped zeros fit, 16 or more need a filler entry (virtual weight 0)."""
    w = np.zeros((40, 2))
    w[[0, 20, 37], 0] = [1.0, 2.0, 3.0]    # gaps 0, 19 (= 16 + 3), 16 (= 16 + 0)
    w[15, 1] = 4.0                          # gap 15: no filler
    layer = encode(w, EIEConfig(n_pes=1))
    assert layer.relative_index[0].tolist() == [0, 15, 3, 15, 0, 15]
    assert (layer.virtual_weight[0] == 0).tolist() == [False, True, False, True, False, False]
    assert layer.column_pointer[0].tolist() == [0, 5, 6]
    assert layer.n_fillers == 2 and layer.n_nonzeros == 4
    np.testing.assert_array_equal(layer.to_dense(), w)
    # over 4 PEs the local gaps shrink (rows 0, 20 → PE0 local 0, 5; 37 → PE1 local 9): no fillers
    assert encode(w, EIEConfig(n_pes=4)).n_fillers == 0


@pytest.mark.parametrize("n_pes, index_bits, density", [(1, 4, 0.1), (3, 2, 0.3), (4, 1, 0.05), (8, 4, 0.6),
                                                         (16, 3, 0.02)])
def test_each_column_is_coding_relative_index(n_pes, index_bits, density):
    rng = np.random.default_rng(n_pes + 10 * index_bits)
    w = rng.normal(size=(90, 25)) * (rng.random((90, 25)) < density)
    layer = encode(w, EIEConfig(n_pes=n_pes, index_bits=index_bits))
    dense = layer.to_dense()
    assert ((dense != 0) == (w != 0)).all()
    for p in range(n_pes):
        ptr = layer.column_pointer[p]
        assert ptr[0] == 0 and ptr[-1] == layer.virtual_weight[p].size and (np.diff(ptr) >= 0).all()
        for j in range(w.shape[1]):
            gaps, values, _ = relative_index_encode(dense[p::n_pes, j], index_bits)
            np.testing.assert_array_equal(layer.relative_index[p][ptr[j]:ptr[j + 1]], gaps)
            np.testing.assert_array_equal(layer.codebook[layer.virtual_weight[p][ptr[j]:ptr[j + 1]]], values)
        assert layer.relative_index[p].max(initial=0) < 2 ** index_bits


def test_float_weights_are_shared_with_sharing_kmeans():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(30, 40)) * (rng.random((30, 40)) < 0.2)
    layer = encode(w, EIEConfig(n_pes=4))
    centroids, labels = sharing.kmeans_1d(w[w != 0], 15)
    assert layer.codebook[0] == 0 and layer.codebook.size == 16
    np.testing.assert_allclose(layer.codebook[1:], centroids)
    expected = np.zeros_like(w)
    expected[w != 0] = centroids[labels]
    np.testing.assert_allclose(layer.to_dense(), expected)
    # a torch tensor and a scipy.sparse matrix store the same layer
    for other in (torch.from_numpy(w), sp.csr_matrix(w)):
        again = encode(other, EIEConfig(n_pes=4))
        for p in range(4):
            np.testing.assert_array_equal(again.virtual_weight[p], layer.virtual_weight[p])
            np.testing.assert_array_equal(again.relative_index[p], layer.relative_index[p])
            np.testing.assert_array_equal(again.column_pointer[p], layer.column_pointer[p])


def test_re_interleaving_keeps_the_matrix():
    layer = random_layer(200, 150, 0.1, EIEConfig(n_pes=8), seed=3)
    for config in (EIEConfig(n_pes=1), EIEConfig(n_pes=5, index_bits=2), EIEConfig(n_pes=256)):
        other = encode(layer, config)
        np.testing.assert_array_equal(other.to_dense(), layer.to_dense())
        assert other.n_nonzeros == layer.n_nonzeros
    assert encode(layer, EIEConfig(n_pes=1, index_bits=1)).n_fillers > encode(layer, EIEConfig(n_pes=1)).n_fillers


def test_storage_bits_count_entries_pointers_and_codebook(example):
    *_, layer = example
    bits = layer.storage_bits()
    assert bits == {"entries": 11 * 8, "pointers": 4 * 5 * 16, "codebook": 8 * 16,
                    "total": 88 + 320 + 128, "dense_fp32": 32 * 32}


def test_random_layer_and_activations_have_exact_densities():
    layer = random_layer(300, 200, 0.07, EIEConfig(n_pes=16), seed=1)
    assert layer.n_nonzeros == round(0.07 * 300 * 200)
    assert layer.codebook.size == 16 and layer.codebook[0] == 0
    again = random_layer(300, 200, 0.07, EIEConfig(n_pes=16), seed=1)
    np.testing.assert_array_equal(again.to_dense(), layer.to_dense())
    assert not np.array_equal(random_layer(300, 200, 0.07, EIEConfig(n_pes=16), seed=2).to_dense(), layer.to_dense())
    a = random_activations(1000, 0.351, seed=4)
    assert np.count_nonzero(a) == 351 and (a >= 0).all()
    assert np.count_nonzero(random_activations(50, 1.0)) == 50


# --------------------------------------------------------------- functional
@pytest.mark.parametrize("seed", range(6))
def test_output_is_the_dense_product(seed):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(5, 70, size=2)
    config = EIEConfig(n_pes=int(rng.integers(1, 9)), queue_depth=int(rng.integers(1, 6)),
                       index_bits=int(rng.integers(1, 5)))
    w = rng.normal(size=(rows, cols)) * (rng.random((rows, cols)) < rng.uniform(0.05, 0.6))
    a = rng.normal(size=cols) * (rng.random(cols) < rng.uniform(0.1, 1.0))   # negative inputs too
    bias = rng.normal(size=rows)
    layer = encode(w, config)
    reference = layer.to_dense() @ a + bias
    for method in ("step", "event"):
        result = simulate(config, layer, a, bias=bias, method=method)
        np.testing.assert_allclose(result.preactivation, reference, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(result.output, np.maximum(result.preactivation, 0))


@pytest.fixture(scope="module")
def lenet_layers():
    torch.set_num_threads(1)
    shared = sharing.share_weights(zoo.load("lenet300_pruned"), n_bits=4)
    model = sharing.quantized_model(shared)
    x = load_mnist("test").x[:3].flatten(1)                     # (3, 784) real images
    return shared, model, x


@pytest.mark.parametrize("name", ["fc1", "fc2"])
def test_real_compressed_lenet_layer_matches_torch(lenet_layers, name):
    """LeNet-300-100 pruned and shared at 4 bits (15 centroids + the zero): fc1 takes the
    normalised image (dense, negative values), fc2 takes fc1's ReLU output (sparse)."""
    shared, model, x = lenet_layers
    fc = getattr(model, name)
    config = EIEConfig(n_pes=8)
    layer = encode(shared.layers[f"{name}.weight"], config)
    np.testing.assert_array_equal(layer.to_dense(), shared.layers[f"{name}.weight"].weight())
    with torch.no_grad():
        inputs = x if name == "fc1" else torch.relu(model.fc1(x))
        expected = torch.relu(fc(inputs)).numpy()
    # Higham: torch's float32 layer sums n = 784 or 300 products and a bias, in any order, and EIE sums the same in
    # float64: |difference| ≤ (n + 1)·(u32 + u64)·(|W||a| + |b|) (ReLU never enlarges it); eps for u: second order
    weight, bias = np.abs(layer.to_dense()), np.abs(fc.bias.detach().numpy().astype(np.float64))
    eps = np.finfo(np.float32).eps + np.finfo(np.float64).eps
    for i in range(inputs.shape[0]):
        a = inputs[i].numpy()
        result = simulate(config, layer, a, bias=fc.bias.detach().numpy(),
                          method="step" if name == "fc2" else "event")
        bound = (weight.shape[1] + 1) * eps * (weight @ np.abs(a.astype(np.float64)) + bias)
        assert np.all(np.abs(result.output - expected[i]) <= bound)
        assert result.actions["broadcasts"] == np.count_nonzero(a)
    assert name == "fc1" or np.count_nonzero(a) < a.size          # fc2's input really is sparse


# -------------------------------------------------------------- cycle model
def _random_case(seed):
    rng = np.random.default_rng(100 + seed)
    rows, cols = rng.integers(1, 60, size=2)
    config = EIEConfig(n_pes=int(rng.integers(1, 10)), queue_depth=int(rng.integers(1, 5)),
                       index_bits=int(rng.integers(1, 5)), sram_width_bits=int(rng.choice([16, 64])))
    w = rng.normal(size=(rows, cols)) * (rng.random((rows, cols)) < rng.uniform(0.01, 0.9))
    a = np.abs(rng.normal(size=cols)) * (rng.random(cols) < rng.uniform(0.0, 1.0))
    return config, encode(w, config), a


@pytest.mark.parametrize("seed", range(40))
def test_step_and_event_paths_agree(seed):
    config, layer, a = _random_case(seed)
    step = simulate(config, layer, a, method="step")
    event = simulate(config, layer, a, method="event")
    assert step.matvec_cycles == event.matvec_cycles and step.cycles == event.cycles
    np.testing.assert_array_equal(step.broadcast_cycle, event.broadcast_cycle)
    np.testing.assert_array_equal(step.start_cycle, event.start_cycle)
    for field in ("busy", "idle", "stall"):
        np.testing.assert_array_equal(getattr(step, field), getattr(event, field))
    assert step.actions == event.actions
    np.testing.assert_allclose(step.preactivation, event.preactivation, rtol=1e-12, atol=1e-12)
    assert event.trace is None and len(step.trace) == step.matvec_cycles


@pytest.mark.parametrize("seed", range(10))
def test_trace_invariants(seed):
    config, layer, a = _random_case(seed)
    result = simulate(config, layer, a, method="step")
    assert (result.busy + result.idle + result.stall == result.matvec_cycles).all()
    for cycle in result.trace:
        queues = [pe.queue for pe in cycle.pes]
        assert max(queues, default=0) <= config.queue_depth
        if cycle.blocked:     # a broadcast is held back only by a full queue
            assert config.queue_depth in queues and cycle.broadcast is None
        if any(pe.state == "stall" for pe in cycle.pes):
            assert cycle.blocked
    acts = result.actions
    assert acts["macs"] + acts["filler_macs"] + acts["empty_columns"] == result.busy.sum()
    assert acts["macs"] == sum(np.count_nonzero(layer.to_dense()[:, j]) for j in np.flatnonzero(a))
    assert acts["queue_pushes"] == acts["queue_pops"] == config.n_pes * np.count_nonzero(a)


def test_deeper_queues_never_cost_cycles_and_unbounded_queues_have_a_closed_form():
    layer = random_layer(256, 300, 0.1, EIEConfig(n_pes=16), seed=5)
    a = random_activations(300, 0.5, seed=5)
    cycles = [simulate(EIEConfig(n_pes=16, queue_depth=d), layer, a).matvec_cycles for d in (1, 2, 4, 8, 64, 512)]
    assert cycles == sorted(cycles, reverse=True) and cycles[0] > cycles[-1]
    loose = simulate(EIEConfig(n_pes=16, queue_depth=512), layer, a)
    # no queue ever fills: PE p works from cycle 1 without a gap, so it ends at 1 + its work
    assert loose.matvec_cycles == 1 + loose.busy.max() and loose.stall.sum() == 0
    tight = simulate(EIEConfig(n_pes=16, queue_depth=1), layer, a)
    assert tight.stall.sum() > 0 and tight.load_balance < loose.load_balance <= 1


def test_one_pe_is_serial_and_more_pes_are_faster():
    layer = random_layer(128, 200, 0.2, EIEConfig(n_pes=1), seed=6)
    a = random_activations(200, 0.4, seed=6)
    one = simulate(EIEConfig(n_pes=1), layer, a)
    assert one.load_balance > 0.99 and one.stall.sum() == 0
    assert one.matvec_cycles == 1 + one.actions["macs"] + one.actions["filler_macs"] + one.actions["empty_columns"]
    many = simulate(EIEConfig(n_pes=16), encode(layer, EIEConfig(n_pes=16)), a)
    assert many.matvec_cycles < one.matvec_cycles / 8
    np.testing.assert_allclose(many.output, one.output)


def test_no_active_input_costs_only_the_relu():
    layer = random_layer(64, 32, 0.3, EIEConfig(n_pes=4))
    result = simulate(EIEConfig(n_pes=4), layer, np.zeros(32))
    assert result.matvec_cycles == 0 and result.cycles == 16 and result.load_balance == 1.0
    assert (result.output == 0).all() and result.actions["macs"] == 0


# ------------------------------------------------------------------- energy
def test_energy_is_counts_times_action_energies(example):
    _, a, config, layer = example
    result = simulate(config, layer, a)
    per = eie.action_energy_pj(config)
    e = eie.energy(result)
    assert e["total_uj"] == pytest.approx(sum(result.actions[k] * per[k] for k in per) * 1e-6)
    assert per["weight_sram_reads"] == 2 * energy_table.operation_energy("sram_read_32b")   # 64-bit word
    assert per["macs"] == pytest.approx(3.1 / 4 + 0.05)
    dense = eie.dense_energy(8, 4)
    assert dense == energy_table.inference_energy(32, 32, arithmetic="fp32", weight_memory="dram")
    assert e["total_uj"] < dense["total_uj"]


def test_wider_sram_reads_fewer_words():
    layer = random_layer(64, 64, 0.5, EIEConfig(n_pes=2), seed=1)
    a = random_activations(64, 1.0)
    narrow = simulate(EIEConfig(n_pes=2, sram_width_bits=8), layer, a).actions["weight_sram_reads"]
    wide = simulate(EIEConfig(n_pes=2, sram_width_bits=64), layer, a).actions["weight_sram_reads"]
    assert narrow == layer.n_entries and wide < narrow / 4


# ----------------------------------------------------------- paper's layers
def test_benchmark_layers_are_the_papers_table():
    names = [b.name for b in eie.BENCHMARK_LAYERS]
    assert names == ["Alex-6", "Alex-7", "Alex-8", "VGG-6", "VGG-7", "VGG-8", "NT-We", "NT-Wd", "NT-LSTM"]
    alex6 = eie.BENCHMARK_LAYERS[0]
    assert (alex6.inputs, alex6.outputs, alex6.weight_density, alex6.act_density) == (9216, 4096, 0.09, 0.351)
    assert (alex6.cpu_dense_us, alex6.gpu_dense_us) == (7516.2, 541.5)


def test_benchmark_row_and_geomean():
    config = EIEConfig(n_pes=64)
    layer, a = eie.benchmark_layer("NT-LSTM", config)
    assert layer.shape == (2400, 1201) and np.count_nonzero(a) == 1201
    assert layer.n_nonzeros == round(0.10 * 2400 * 1201)
    row = eie.benchmark_row("NT-LSTM", simulate(config, layer, a))
    assert row["speedup_gpu_dense"] == pytest.approx(51.9 / row["latency_us"])
    assert row["latency_us"] == row["cycles"] / 800
    assert 0.5 < row["load_balance"] <= 1 and row["energy_uj"] < row["dense_energy_uj"]
    rows = [{f"speedup_{b}": 2.0 for b in eie.BASELINES}, {f"speedup_{b}": 8.0 for b in eie.BASELINES}]
    assert eie.geomean_speedups(rows) == pytest.approx({b: 4.0 for b in eie.BASELINES})


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, exc, match", [
    ({"n_pes": 0}, ValueError, "n_pes"), ({"n_pes": True}, TypeError, "n_pes"), ({"n_pes": 2.0}, TypeError, "n_pes"),
    ({"queue_depth": 0}, ValueError, "queue_depth"), ({"index_bits": 0}, ValueError, "index_bits"),
    ({"index_bits": 9}, ValueError, "index_bits"), ({"weight_bits": 9}, ValueError, "weight_bits"),
    ({"clock_mhz": 0}, ValueError, "clock_mhz"), ({"clock_mhz": "800"}, TypeError, "clock_mhz"),
    ({"sram_width_bits": 4}, ValueError, "sram_width_bits"),
])
def test_config_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        EIEConfig(**kwargs)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: random_layer(10, 10, 0.0), ValueError, "weight_density"),
    (lambda: random_layer(10, 10, 1.5), ValueError, "weight_density"),
    (lambda: random_layer(0, 10, 0.5), ValueError, "rows"),
    (lambda: random_activations(10, 0.0), ValueError, "act_density"),
    (lambda: random_activations(10, -0.1), ValueError, "act_density"),
    (lambda: random_activations(10, True), TypeError, "act_density"),
    (lambda: encode(np.ones((2, 2, 2))), ValueError, "weight"),
    (lambda: encode(np.ones((2, 0))), ValueError, "weight"),
    (lambda: encode(np.ones((2, 2), dtype=bool)), TypeError, "weight"),
    (lambda: encode("weights"), TypeError, "weight"),
    (lambda: encode(np.array([[1.0, np.nan]])), ValueError, "weight"),
    (lambda: encode(np.eye(3), "config"), TypeError, "config"),
    (lambda: encode(np.eye(3), seed=-1), ValueError, "seed"),
    (lambda: eie.benchmark_layer("Alex-9"), ValueError, "name"),
    (lambda: eie.geomean_speedups([]), ValueError, "rows"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_shared_layer_must_fit_the_virtual_weight():
    shared = sharing.share_weights(zoo.load("lenet300_pruned"), n_bits=5)     # 31 centroids + zero
    with pytest.raises(ValueError, match="weight_bits=4"):
        encode(shared.layers["fc1.weight"], EIEConfig())
    assert encode(shared.layers["fc3.weight"], EIEConfig(weight_bits=5)).codebook.size == 32


@pytest.mark.parametrize("change, exc, match", [
    ({"activations": np.ones(5)}, ValueError, "activations"),
    ({"activations": np.ones((4, 1))}, ValueError, "activations"),
    ({"activations": np.array([True, False, True, True])}, TypeError, "activations"),
    ({"activations": np.array([0, 1, np.inf, 0])}, ValueError, "activations"),
    ({"bias": np.ones(7)}, ValueError, "bias"),
    ({"config": EIEConfig(n_pes=8)}, ValueError, "n_pes"),
    ({"config": EIEConfig(n_pes=4, index_bits=3)}, ValueError, "index_bits"),
    ({"config": {"n_pes": 4}}, TypeError, "config"),
    ({"layer": np.eye(8, 4)}, TypeError, "layer"),
    ({"method": "cycle"}, ValueError, "method"),
])
def test_simulate_bad_input(example, change, exc, match):
    w, a, config, layer = example
    args = {"config": config, "layer": layer, "activations": a, "bias": None, "method": "event", **change}
    with pytest.raises(exc, match=match):
        simulate(args["config"], args["layer"], args["activations"], bias=args["bias"], method=args["method"])


def test_step_path_refuses_a_large_layer(monkeypatch):
    """The step path keeps a Python record per PE and cycle; past its limit it names the event path."""
    layer = random_layer(64, 64, 0.5, EIEConfig(n_pes=4))
    a = random_activations(64, 1.0)
    monkeypatch.setattr(eie, "_STEP_LIMIT", 1_000)
    with pytest.raises(ValueError, match="'event'"):
        simulate(EIEConfig(n_pes=4), layer, a, method="step")
    assert simulate(EIEConfig(n_pes=4), layer, a).cycles > 250


# ------------------------------------------------------------ the pictures: tests/test_viz_hardware.py


