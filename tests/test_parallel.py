"""effdl.training.parallel on real processes: DDP = one process with the combined batch, model-parallel
layers and the pipeline = one process, the synchronous parameter server = all-reduce, the asynchronous
one's staleness bookkeeping, the sweep; failed, dying and hanging workers end the run with a clear error
(with timeouts); bad input. Workers use the forkserver (one torch import for the whole file) except in
the test that checks plain spawn."""
import doctest
import importlib
import os
import pkgutil
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
from torch import nn

from effdl.data import load_mnist
from effdl.models import build_model
from effdl.train import evaluate, fit, seeded, threads
from effdl.training import parallel as P
from bounds import assert_within


# --------------------------------------------------- worker functions (module level: picklable)
def _identity_worker(rank, world_size, tag):
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)                                   # the processes really are one group
    return {"rank": rank, "world": world_size, "tag": tag, "pid": os.getpid(), "sum": float(t),
            "threads": torch.get_num_threads(), "backend": dist.get_backend()}


def _raising_worker(rank, world_size):
    if rank == 1:
        raise ValueError("boom from rank 1")
    t = torch.ones(1)
    dist.all_reduce(t)                                   # rank 0 would wait here forever without the launcher
    return rank


def _dying_worker(rank, world_size):
    if rank == 1:
        os._exit(3)
    dist.barrier()
    return rank


def _hanging_worker(rank, world_size):
    time.sleep(600)


def test_docstring_examples():
    # doctest.testmod(P) would skip the names the package re-exports: test each module where they live
    results = [doctest.testmod(importlib.import_module(f"{P.__name__}.{m.name}"))
               for m in pkgutil.iter_modules(P.__path__)]
    assert sum(r.failed for r in results) == 0 and sum(r.attempted for r in results) >= 2


# ------------------------------------------------------------------------------- launcher
def test_hello_all_reduces_the_ranks():
    out = P.launch(P.hello, 2)
    assert [o["sum_of_ranks"] for o in out] == [1, 1] and [o["rank"] for o in out] == [0, 1]


def test_the_same_worker_runs_under_torchrun():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                          "-m", "effdl.training.parallel", "--steps", "2"],
                         check=False, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rank 0 of 2 (gloo)" in run.stdout and "same weights as one process with batch 32: True" in run.stdout


def test_torchrun_main_outside_torchrun_is_a_clear_error(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SystemExit, match="run me under torchrun"):
        P.torchrun_main([])


def test_time_allreduce_is_measured():
    assert 0 < P.time_allreduce(1000, 2, repeats=2) < 10


def test_launch_runs_one_process_per_rank_in_one_group():
    out = P.launch(_identity_worker, 3, ("x",), timeout_s=60)
    assert [o["rank"] for o in out] == [0, 1, 2]
    assert all(o["world"] == 3 and o["tag"] == "x" and o["sum"] == 3.0 for o in out)   # 0 + 1 + 2
    assert len({o["pid"] for o in out} | {os.getpid()}) == 4                           # real processes
    assert all(o["threads"] == 1 and o["backend"] == "gloo" for o in out)


def test_launch_with_plain_spawn():
    out = P.launch(_identity_worker, 2, ("s",), timeout_s=120, start_method="spawn")
    assert [o["sum"] for o in out] == [1.0, 1.0]


def test_package_workers_are_found_by_module_path_under_spawn():
    # a fresh interpreter unpickles the launcher's entry and the worker by module path and name
    layer = nn.Linear(4, 3)
    r = P.model_parallel_forward(layer, torch.randn(2, 4), 2, timeout_s=120, start_method="spawn")
    assert r.max_abs_diff < 1e-6


def test_a_raising_worker_ends_the_run_with_its_traceback():
    start = time.monotonic()
    with pytest.raises(P.WorkerError, match=r"rank 1 of _raising_worker raised first(.|\n)*boom from rank 1"):
        P.launch(_raising_worker, 2, timeout_s=60)
    assert time.monotonic() - start < 30                 # rank 0, blocked in all_reduce, was stopped


def test_a_dying_worker_ends_the_run():
    with pytest.raises(P.WorkerError, match="rank 1 of _dying_worker died.*exit code 3"):
        P.launch(_dying_worker, 2, timeout_s=60)


def test_a_hanging_worker_times_out():
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"_hanging_worker did not finish within timeout_s=2.0"):
        P.launch(_hanging_worker, 2, timeout_s=2.0)
    assert time.monotonic() - start < 20


# ---------------------------------------------------------------------- data parallelism
def test_global_batches_are_seeded_and_cover_each_epoch_once():
    batches = list(P.global_batches(100, 32, 5, seed=3))
    assert [len(b) for b in batches] == [32] * 5
    epoch0 = torch.cat(batches[:3])
    assert len(set(epoch0.tolist())) == 96               # no repeats within an epoch (4 dropped)
    assert all(torch.equal(a, b) for a, b in zip(batches, P.global_batches(100, 32, 5, seed=3)))
    assert not torch.equal(batches[0], next(P.global_batches(100, 32, 1, seed=4)))


def test_ddp_two_processes_equal_one_process_with_twice_the_batch():
    ddp = P.data_parallel_train(2, batch_size=16, steps=6, lr=0.05)
    ref = P.large_batch_train(32, steps=6, lr=0.05)
    init = build_model("lenet300", seed=0).state_dict()
    assert P.max_abs_diff(ddp.state_dict, ref.state_dict) < 1e-5
    assert P.max_abs_diff(ref.state_dict, init) > 1e-3   # the weights did move
    # a control that must differ: one process with only one shard's batch
    assert P.max_abs_diff(ddp.state_dict, P.large_batch_train(16, steps=6, lr=0.05).state_dict) > 1e-4
    assert len(ddp.losses) == 6 and ddp.seconds > 0


def test_time_per_epoch_measures_each_world_size():
    times = P.time_per_epoch((1, 2), global_batch=64, n_train=256)
    assert set(times) == {1, 2} and all(t > 0 for t in times.values())


# ------------------------------------------------------------------------ parameter server
def test_sync_parameter_server_equals_allreduce():
    ps = P.parameter_server_train(2, mode="sync", batch_size=16, steps=4)
    ar = P.data_parallel_train(2, batch_size=16, steps=4)
    assert P.max_abs_diff(ps.state_dict, ar.state_dict) < 1e-6
    assert ps.extra["staleness"] == [0] * 8 and ps.extra["worker"] == [1, 2] * 4
    n = sum(v.numel() for v in ps.state_dict.values())
    assert ps.extra["server_bytes_per_step"] == 2 * 2 * 4 * n


def test_async_parameter_server_staleness_bookkeeping():
    steps = 5
    ps = P.parameter_server_train(2, mode="async", batch_size=16, steps=steps, delays=[0.0, 0.05])
    workers, stale = ps.extra["worker"], ps.extra["staleness"]
    assert sorted(workers) == [1] * steps + [2] * steps
    # a worker's gradient was computed on the weights the server sent after its previous update
    # (or the initial ones), so its staleness = updates applied by the others in between
    last = {}
    for k, (w, s) in enumerate(zip(workers, stale)):
        assert s == k - last.get(w, 0), (k, w, s)
        last[w] = k + 1
    assert max(stale) >= 1                               # the slow worker's gradients arrive stale
    assert all(len(l) == steps for l in ps.extra["worker_losses"])


@pytest.mark.parametrize("order", [[1, 2, 1, 1, 2], [3, 3, 3], [1, 2, 3, 1, 2, 3], [2]])
def test_staleness_of_counts_updates_since_the_workers_last(order):
    got = P.staleness_of(order)
    for k, w in enumerate(order):
        previous = [j for j in range(k) if order[j] == w]
        assert got[k] == (k - previous[-1] - 1 if previous else k)


def test_communication_bytes():
    b = P.communication_bytes(1000, 4)
    assert b["parameter_server_link"] == 2 * 4 * 1000 * 4
    assert b["ring_allreduce_per_process"] == 2 * 3 / 4 * 1000 * 4
    assert P.communication_bytes(1000, 1)["ring_allreduce_per_process"] == 0
    assert P.communication_bytes(1000, 64)["ring_allreduce_per_process"] < 2 * 1000 * 4


def test_pipeline_bubble():
    assert P.pipeline_bubble(1, 8) == 0 and P.pipeline_bubble(3, 4) == pytest.approx(2 / 6)
    assert P.pipeline_bubble(4, 32) < P.pipeline_bubble(4, 4)


# ------------------------------------------------------------------------ model parallelism
EPS32 = torch.finfo(torch.float32).eps


def _a64(t):
    return t.detach().double().abs()


# Higham: a float32 sum of n terms, in any order (the processes' partial sums plus the all-reduce included),
# errs by ≤ n·u·Σ|terms|, u = eps32/2. Two such results differ by ≤ n·eps32·Σ|terms|; each bound below is
# twice that (eps for u: the second-order terms).
def _linear_bounds(layer, x, g):
    """Bounds on |difference| of two float32 computations: (output, input gradient, weight gradient)."""
    w, b = _a64(layer.weight), _a64(layer.bias)
    out = 2 * (layer.in_features + 1) * EPS32 * (_a64(x) @ w.T + b)       # in products + the bias
    grad_x = 2 * (layer.out_features + 1) * EPS32 * (_a64(g) @ w)          # out products (+ the all-reduce)
    grad_w = 2 * x.shape[0] * EPS32 * (_a64(g).T @ _a64(x))                # the batch
    return out, grad_x, grad_w


@pytest.mark.parametrize("out_features,world", [(300, 2), (10, 3)])
def test_split_layer_pieces_concatenate_to_the_layer(out_features, world):
    layer = nn.Linear(20, out_features)
    x = torch.randn(5, 20)
    parts = [P.split_layer(layer, world, r)(x) for r in range(world)]
    assert [p.shape[1] for p in parts] == [b - a for a, b in P.split_ranges(out_features, world)]
    bound = 2 * (20 + 1) * EPS32 * (_a64(x) @ _a64(layer.weight).T + _a64(layer.bias))
    assert_within(torch.cat(parts, 1), layer(x), bound)              # Higham (above): 20 products + the bias


def test_split_layer_leaves_the_global_rng_alone():
    conv = nn.Conv2d(3, 7, 3, padding=1)
    state = torch.random.get_rng_state()
    part = P.split_layer(conv, 2, 1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(part.weight, conv.weight[4:]) and torch.equal(part.bias, conv.bias[4:])


def test_model_parallel_fc_matches_one_process():
    fc = build_model("lenet300", seed=0).fc1
    x, g = torch.randn(8, 784), torch.randn(8, 300)
    r = P.model_parallel_forward(fc, x, 2, grad_output=g)
    xr = x.clone().requires_grad_(True)
    y = fc(xr)
    y.backward(g)
    bounds = _linear_bounds(fc, x, g)                            # Higham (above)
    assert_within(r.output, y, bounds[0])
    assert_within(r.grad_input, xr.grad, bounds[1])             # all-reduced over the two processes
    assert_within(r.grad_weight, fc.weight.grad, bounds[2])     # each process's rows, concatenated
    assert r.max_abs_diff <= max(float(b.max()) for b in bounds)  # its own check of the same three


def test_model_parallel_conv_matches_one_process_with_uneven_split():
    with seeded(1):
        conv = nn.Conv2d(3, 7, 3, padding=1)             # 7 maps over 3 processes: 3 + 2 + 2
        x = torch.randn(2, 3, 9, 9)
        g = torch.randn(2, 7, 9, 9)
    r = P.model_parallel_forward(conv, x, 3, grad_output=g)
    xr = x.clone().requires_grad_(True)
    y = conv(xr)
    y.backward(g)
    # Higham (above): the output sums 3·3·3 products + bias; the input gradient 7·3·3 products over the output
    # maps, in three processes' partial sums (+ 2 additions in the all-reduce); the weight gradient 2·9·9 positions
    w = _a64(conv.weight)
    bounds = (2 * (27 + 1) * EPS32 * (nn.functional.conv2d(_a64(x), w, padding=1) + _a64(conv.bias)[:, None, None]),
              2 * (63 + 2) * EPS32 * torch.nn.grad.conv2d_input(x.shape, w, _a64(g), padding=1),
              2 * (2 * 9 * 9) * EPS32 * torch.nn.grad.conv2d_weight(_a64(x), w.shape, _a64(g), padding=1))
    assert_within(r.output, y, bounds[0])
    assert_within(r.grad_input, xr.grad, bounds[1])
    assert_within(r.grad_weight, conv.weight.grad, bounds[2])
    assert r.max_abs_diff <= max(float(b.max()) for b in bounds)


@pytest.mark.parametrize("stride,padding,world", [(1, 0, 2), (2, 1, 3), (1, (1, 2), 2)])
def test_region_parallel_conv_matches_one_process(stride, padding, world):
    with seeded(2):
        conv = nn.Conv2d(3, 5, 3, stride=stride, padding=padding)
        x = torch.randn(2, 3, 11, 9)
    ref = conv(x.clone())
    g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3))
    r = P.region_parallel_forward(conv, x, world, grad_output=g)
    xr = x.clone().requires_grad_(True)
    y = conv(xr)
    y.backward(g)
    # each process computes whole output rows from the same products as the whole layer; the input
    # gradient's halo rows add two partial sums; the weight gradient sums `world` partial sums (all-reduce)
    scale = lambda t: 64 * EPS32 * (t.abs().max() + 1)
    assert_within(r.output, y, scale(y))
    assert_within(r.grad_input, xr.grad, scale(xr.grad))
    assert_within(r.grad_weight, conv.weight.grad, 2 * 9 * 9 * EPS32 * conv.weight.grad.abs().max() + scale(conv.weight.grad))
    rows = r.output_rows
    assert rows == P.split_ranges(y.shape[2], world)
    ph = conv.padding[0]
    assert all(b - a == (d - c - 3) // stride + 1 for (a, b), (c, d) in zip(rows, r.input_rows))
    assert r.max_rel_diff < 1e-5
    assert r.input_rows[0][0] == 0 and r.input_rows[-1][1] <= x.shape[2] + 2 * ph   # each band: its rows + halo
    assert sum(d - c for c, d in r.input_rows) > x.shape[2] + 2 * ph          # the halos overlap


@pytest.mark.parametrize("n_stages", [2, 3])
def test_pipeline_step_matches_one_process(n_stages):
    r = P.pipeline_train_step(n_stages, batch_size=32, micro_batches=4)
    assert r.max_abs_diff < 1e-5
    assert set(r.grads) == {n for n, _ in build_model("lenet300").named_parameters()}
    assert len(r.events) == 2 * 4 * n_stages
    ends = {(s, ph, m): e for s, ph, m, _, e in r.events}
    starts = {(s, ph, m): b for s, ph, m, b, _ in r.events}
    for s, ph, m in ends:                                # causality across processes
        if ph == "forward" and s > 0:
            assert starts[(s, ph, m)] >= ends[(s - 1, ph, m)]
        if ph == "backward" and s < n_stages - 1:
            assert starts[(s, ph, m)] >= ends[(s + 1, ph, m)]


# --------------------------------------------------------------- hyper-parameter parallelism
def test_parallel_sweep_deals_configurations_and_matches_a_serial_run():
    lrs = [0.01, 0.1, 0.03]
    out = P.parallel_sweep(lrs, 2, epochs=1, n_train=500)
    assert [r["lr"] for r in out["rows"]] == lrs and [r["rank"] for r in out["rows"]] == [0, 1, 0]
    model = build_model("lenet300", seed=0)
    with threads(1):
        train = load_mnist("train")
        train = type(train)("train", train.source, train.x[:500], train.y[:500])
        fit(model, train, epochs=1, lr=0.1, batch_size=64, seed=0, device="cpu", show_progress=False)
        acc = evaluate(model, load_mnist("val"), device="cpu")
    assert abs(out["rows"][1]["val_acc"] - acc) <= 0.4


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call,exc,match", [
    (lambda: P.launch(_identity_worker, 0, ("x",)), ValueError, "world_size must be an integer in"),
    (lambda: P.launch(_identity_worker, 1.5, ("x",)), TypeError, "world_size must be an integer"),
    (lambda: P.launch(_identity_worker, True, ("x",)), TypeError, "world_size must be an integer"),
    (lambda: P.launch("nope", 2), TypeError, "fn must be a module-level function"),
    (lambda: P.launch(_identity_worker, 2, ("x",), timeout_s=0), ValueError, "timeout_s must be a real number in"),
    (lambda: P.launch(_identity_worker, 2, ("x",), backend="mpi"), ValueError, "backend must be one of"),
    (lambda: P.launch(_identity_worker, 2, ("x",), start_method="fork"), ValueError, "start_method must be one of"),
    (lambda: P.launch(_identity_worker, 2, ("x",), num_threads=0), ValueError, "num_threads must be"),
    (lambda: P.data_parallel_train(0), ValueError, "world_size must be an integer in"),
    (lambda: P.data_parallel_train(-1), ValueError, "world_size"),
    (lambda: P.data_parallel_train(2, batch_size=0), ValueError, "batch_size"),
    (lambda: P.data_parallel_train(2, lr=0), ValueError, "lr must be a real number in"),
    (lambda: P.data_parallel_train(2, batch_size=3000), ValueError, "world_size \\* batch_size"),
    (lambda: P.data_parallel_train(2, arch="vgg"), ValueError, "arch must be one of"),
    (lambda: P.large_batch_train(0), ValueError, "batch_size"),
    (lambda: P.time_per_epoch(()), ValueError, r"time_per_epoch: world_sizes must be a list .*\(non-empty\)"),
    (lambda: P.time_per_epoch((0, 2)), ValueError, "world_sizes\\[0\\] must be an integer in"),
    (lambda: P.time_per_epoch((1, 3), global_batch=128), ValueError, "divisible"),
    (lambda: P.parameter_server_train(0), ValueError, "n_workers"),
    (lambda: P.parameter_server_train(2, mode="gossip"), ValueError, "mode must be one of"),
    (lambda: P.parameter_server_train(2, delays=[0.1]), ValueError, "delays must have one entry per worker"),
    (lambda: P.parameter_server_train(2, delays=[0.1, -1.0]), ValueError, "delays\\[1\\] must be a real number in"),
    (lambda: P.split_layer(nn.Linear(4, 3), 4, 0), ValueError, "world_size must be an integer in \\[1, 3\\]"),
    (lambda: P.split_layer(nn.Linear(4, 3), 2, 2), ValueError, "rank must be an integer in \\[0, 1\\]"),
    (lambda: P.split_layer(nn.ReLU(), 2, 0), TypeError, "layer must be an nn.Linear or nn.Conv2d"),
    (lambda: P.split_layer(nn.Conv2d(4, 4, 3, groups=2), 2, 0), ValueError, "ungrouped"),
    (lambda: P.model_parallel_forward(nn.Linear(4, 3), torch.randn(2, 5), 2), ValueError, "x must fit the layer"),
    (lambda: P.model_parallel_forward(nn.Linear(4, 3), torch.randn(2, 4), 2, grad_output=torch.randn(2, 2)),
     ValueError, "grad_output must have the output's shape"),
    (lambda: P.region_parallel_forward(nn.Conv2d(2, 2, 3), torch.randn(1, 3, 5, 5), 2), ValueError,
     "x must fit the layer"),
    (lambda: P.region_parallel_forward(nn.Conv2d(2, 2, 3), torch.randn(1, 2, 4, 4), 3), ValueError,
     "world_size must be an integer in \\[1, 2\\]"),
    (lambda: P.region_parallel_forward(nn.Conv2d(2, 2, 3, dilation=2), torch.randn(1, 2, 9, 9), 2), ValueError,
     "undilated"),
    (lambda: P.region_parallel_forward(nn.Linear(2, 2), torch.randn(1, 2, 4, 4), 2), TypeError,
     "layer must be an nn.Conv2d"),
    (lambda: P.pipeline_train_step(4), ValueError, "n_stages must be an integer in \\[1, 3\\]"),
    (lambda: P.pipeline_train_step(2, batch_size=30, micro_batches=4), ValueError, "divisible by micro_batches"),
    (lambda: P.pipeline_stages(nn.Linear(2, 2), 2), TypeError, "model must be an effdl.models.LeNet300"),
    (lambda: P.parallel_sweep([], 2), ValueError, r"parallel_sweep: lrs must be a list .*\(non-empty\)"),
    (lambda: P.parallel_sweep([0.1, -0.1], 2), ValueError, "lrs\\[1\\] must be a real number in"),
    (lambda: P.parallel_sweep([0.1], 0), ValueError, "n_processes"),
    (lambda: P.global_batches(10, 11, 1).__next__(), ValueError, "global_batch must be an integer in \\[1, 10\\]"),
    (lambda: P.max_abs_diff({"a": torch.zeros(1)}, {"b": torch.zeros(1)}), ValueError, "same keys"),
    (lambda: P.split_ranges(5, 0), ValueError, "world_size must be an integer in \\[1"),
    (lambda: P.split_ranges(-1, 2), ValueError, "n must be an integer in \\[0"),
    (lambda: P.staleness_of("12"), TypeError, "staleness_of: order must be a list of"),
    (lambda: P.communication_bytes(0, 2), ValueError, "n_params"),
    (lambda: P.communication_bytes(10, 0), ValueError, "n_workers"),
    (lambda: P.pipeline_bubble(0, 4), ValueError, "n_stages"),
    (lambda: P.pipeline_bubble(2, 0), ValueError, "micro_batches"),
    (lambda: P.time_allreduce(0), ValueError, "n_values"),
    (lambda: P.default_backend(0), ValueError, "world_size"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
