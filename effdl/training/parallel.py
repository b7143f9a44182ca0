"""Parallel training on a real distributed engine: ``torch.distributed`` processes.

Chapter 11 (Parallelization) teaches it. Everything here runs as real
operating-system processes started by ``torch.multiprocessing`` and talking
through ``torch.distributed`` — gloo on CPU, NCCL when there is a CUDA device
per process — so the same worker code runs unchanged under ``torchrun`` on
several machines. What it covers:

- **data parallelism** with ``DistributedDataParallel`` (all-reduce of the
  gradients): :func:`data_parallel_train`, checked against one process with a
  ``world_size`` times larger batch (:func:`large_batch_train`);
- a **parameter server** on point-to-point ``send``/``recv``, synchronous and
  asynchronous with the staleness of every update recorded
  (:func:`parameter_server_train`; Dean et al., *Large Scale Distributed Deep
  Networks*, NIPS 2012);
- **model parallelism**: a fully connected layer split by output activations
  and a convolution split by output feature maps (:func:`model_parallel_forward`);
- **pipeline parallelism**: LeNet-300-100's layers as stages, micro-batches
  GPipe-style (:func:`pipeline_train_step`; Huang et al., *GPipe*, NeurIPS 2019);
- **hyper-parameter parallelism**: a learning-rate sweep as processes
  (:func:`parallel_sweep`);
- the time per epoch against the number of processes (:func:`time_per_epoch`).

:func:`launch` starts the processes. The rendezvous store lives in the
calling process on a port the operating system picks (no guessed free port,
no race), every worker gets ``torch.set_num_threads(num_threads)``, and a
worker that raises, dies, or hangs past ``timeout_s`` ends the whole run with
a :class:`WorkerError` or ``TimeoutError`` naming it — never a hang. Worker
functions must be importable (module level), as with any spawned process;
they return plain data (tensors, numbers, lists, dicts), collected per rank.

Models are the book's LeNet-300-100 on the embedded MNIST subset, trained for
a few steps: the point is what the processes compute, not accuracy.
"""
from __future__ import annotations

import copy
import datetime
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from .._validate import check_choice, check_float, check_int, check_type

BACKENDS = ("gloo", "nccl")
START_METHODS = ("spawn", "forkserver")
HOST = "127.0.0.1"
# Modules a forkserver imports once, so each forked worker starts in ~0.1 s
# instead of re-importing torch (~2.5 s on this machine) and torch._dynamo,
# which DistributedDataParallel's constructor imports (another ~2.5 s).
_PRELOAD = ["torch", "torch.distributed", "torch._dynamo", "torch.nn.parallel", "effdl.training.parallel",
            "effdl.models", "effdl.data", "effdl.train"]


class WorkerError(RuntimeError):
    """A worker process raised or died; the message names its rank and carries its traceback."""


# ============================================================== the launcher
def default_backend(world_size: int = 1) -> str:
    """``"nccl"`` when there is one CUDA device per process, else ``"gloo"`` (CPU)."""
    world_size = check_int("world_size", world_size, min=1)
    usable = torch.cuda.is_available() and dist.is_nccl_available() and torch.cuda.device_count() >= world_size
    return "nccl" if usable else "gloo"


def default_start_method() -> str:
    """``"forkserver"`` where the platform has it (fast repeated launches), else ``"spawn"``."""
    import multiprocessing
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def worker_device(rank: int) -> torch.device:
    """The device a worker computes on: its own GPU under NCCL, else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device("cpu")


def hello(rank: int, world_size: int) -> dict:
    """The smallest worker: all-reduce (sum) each rank's number and report what this process sees."""
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)                                    # every process ends with 0 + 1 + … + (world_size − 1)
    return {"rank": rank, "world_size": world_size, "backend": dist.get_backend(), "pid": os.getpid(),
            "sum_of_ranks": int(t.item()), "threads": torch.get_num_threads()}


def launch(fn: Callable, world_size: int, *args, timeout_s: float = 120.0, backend: str | None = None,
           start_method: str | None = None, num_threads: int = 1) -> list:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` new processes joined in one process group.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled by name into the workers).
        It runs after ``torch.distributed.init_process_group``; its return
        value (tensors, numbers, strings, lists, tuples, dicts) is collected.
    world_size : int
        Number of processes, ≥ 1.
    timeout_s : float
        Wall-clock limit for the whole run; past it every worker is killed
        and ``TimeoutError`` is raised. Collectives time out after it too.
    backend : {"gloo", "nccl"}, optional
        Default :func:`default_backend`.
    start_method : {"spawn", "forkserver"}, optional
        ``"spawn"`` starts fresh interpreters; ``"forkserver"`` (the default
        where available) forks them from one clean server process that
        imported torch once. Both give separate processes with their own
        memory; neither forks the caller.
    num_threads : int
        ``torch.set_num_threads`` inside each worker (1: one core each).

    Returns
    -------
    list
        ``fn``'s return value for rank 0, 1, …

    Raises
    ------
    WorkerError
        A worker raised (its traceback is in the message) or died.
    TimeoutError
        The run did not finish within ``timeout_s``.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a module-level function; got {fn!r}.")
    world_size = check_int("world_size", world_size, min=1)
    timeout_s = check_float("timeout_s", timeout_s, min=0, min_open=True)
    backend = default_backend(world_size) if backend is None else check_choice("backend", backend, BACKENDS)
    start_method = default_start_method() if start_method is None else \
        check_choice("start_method", start_method, START_METHODS)
    num_threads = check_int("num_threads", num_threads, min=1)
    if backend == "nccl" and torch.cuda.device_count() < world_size:
        raise ValueError(f"backend 'nccl' needs one CUDA device per process ({world_size}); "
                         f"got backend={backend!r} with {torch.cuda.device_count()} devices.")
    if start_method == "forkserver":
        import multiprocessing
        multiprocessing.get_context("forkserver").set_forkserver_preload(_PRELOAD)

    # The rendezvous store is served from this process on a port the OS assigns
    # (port 0), so no free port is guessed and no other program can take it.
    store = dist.TCPStore(HOST, 0, world_size + 1, is_master=True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=timeout_s))
    with tempfile.TemporaryDirectory(prefix="effdl-launch-") as result_dir:
        context = mp.start_processes(
            _entry, args=(fn, world_size, args, store.port, backend, result_dir, timeout_s, num_threads),
            nprocs=world_size, join=False, start_method=start_method)
        _join(context, timeout_s, world_size, fn, result_dir)
        results = []
        for rank in range(world_size):
            path = Path(result_dir) / f"rank{rank}.pt"
            if not path.is_file():
                raise WorkerError(f"worker rank {rank} of {fn.__name__} exited without a result.")
            results.append(torch.load(path, weights_only=True)["result"])
    del store
    return results


def _join(context, timeout_s: float, world_size: int, fn, result_dir: str) -> None:
    deadline = time.monotonic() + timeout_s
    try:
        while not context.join(timeout=max(0.0, min(0.5, deadline - time.monotonic())), grace_period=2.0):
            if time.monotonic() >= deadline:
                _kill(context.processes)
                raise TimeoutError(f"{world_size} worker(s) of {fn.__name__} did not finish within "
                                   f"timeout_s={timeout_s!r} s; all were killed.")
    except mp.ProcessRaisedException as err:
        failures = []
        for path in Path(result_dir).glob("error*.txt"):
            when, _, trace = path.read_text().partition("\n")
            failures.append((float(when), int(path.stem[len("error"):]), trace))
        rank, trace = err.error_index, str(err)
        if failures:
            _, rank, trace = min(failures)                 # the first to fail is the cause
        others = sorted(r for _, r, _ in failures if r != rank)
        also = f" (then rank{'s' if len(others) > 1 else ''} {', '.join(map(str, others))} failed too)" \
            if others else ""
        raise WorkerError(f"worker rank {rank} of {fn.__name__} raised first{also}; the other workers "
                          f"were stopped. Its traceback:\n{trace}") from None
    except mp.ProcessExitedException as err:
        raise WorkerError(f"worker rank {err.error_index} of {fn.__name__} died ({err}); the other workers "
                          "were stopped.") from None


def _kill(processes) -> None:
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(2.0)
        if p.is_alive():
            p.kill()
            p.join()


def _entry(rank, fn, world_size, args, port, backend, result_dir, timeout_s, num_threads):
    # Runs in the worker: one thread per process so that processes, not
    # threads, share the cores; then join the group through the caller's store.
    torch.set_num_threads(num_threads)
    timeout = datetime.timedelta(seconds=timeout_s)
    store = dist.TCPStore(HOST, port, world_size + 1, is_master=False, timeout=timeout)
    if backend == "nccl":
        torch.cuda.set_device(rank % torch.cuda.device_count())
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)
    try:
        result = fn(rank, world_size, *args)
        path = Path(result_dir) / f"rank{rank}.pt"
        torch.save({"result": result}, path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)
    except Exception:
        # Record when and how this rank failed: when one rank raises, its peers
        # usually fail a moment later in a collective ("connection reset"); the
        # launcher reports the earliest failure as the cause.
        import traceback
        (Path(result_dir) / f"error{rank}.txt").write_text(f"{time.time()!r}\n{traceback.format_exc()}")
        raise
    finally:
        dist.destroy_process_group()


# ====================================================================== data
def _train_split(n_train: int | None = None):
    from ..data import load_mnist
    train = load_mnist("train", source="embedded")
    if n_train is not None:
        train = type(train)(train.name, train.source, train.x[:n_train], train.y[:n_train])
    return train


def global_batches(n_examples: int, global_batch: int, steps: int, seed: int = 0):
    """Yield ``steps`` index tensors of ``global_batch`` examples each, epoch after epoch.

    Every process of a data-parallel run calls this with the same arguments
    and takes its own slice, so all see one common, seeded order; the last
    incomplete batch of an epoch is dropped so that every step has the same
    size. Epoch ``e`` uses ``torch.randperm`` seeded with ``seed + e``.
    """
    n_examples = check_int("n_examples", n_examples, min=1)
    global_batch = check_int("global_batch", global_batch, min=1, max=n_examples)
    steps = check_int("steps", steps, min=0)
    seed = check_int("seed", seed, min=0)
    per_epoch = n_examples // global_batch
    epoch, done = 0, 0
    while done < steps:
        order = torch.randperm(n_examples, generator=torch.Generator().manual_seed(seed + epoch))
        for i in range(min(per_epoch, steps - done)):
            yield order[i * global_batch:(i + 1) * global_batch]
        done += min(per_epoch, steps - done)
        epoch += 1


def max_abs_diff(a: dict, b: dict) -> float:
    """Largest absolute difference between two state dicts with the same keys and shapes."""
    check_type("a", a, dict, "a state dict")
    check_type("b", b, dict, "a state dict")
    if a.keys() != b.keys():
        raise ValueError(f"a and b must have the same keys; got {sorted(a)} and {sorted(b)}.")
    return max(float((a[k].float() - b[k].float()).abs().max()) if a[k].numel() else 0.0 for k in a)


def _check_train_args(batch_size, steps, lr, momentum, seed, arch, n_train=None):
    from ..models import MODELS
    check_int("batch_size", batch_size, min=1)
    check_int("steps", steps, min=0)
    check_float("lr", lr, min=0, min_open=True)
    check_float("momentum", momentum, min=0, max=1, max_open=True)
    check_int("seed", seed, min=0)
    check_choice("arch", arch, MODELS)
    if n_train is not None:
        check_int("n_train", n_train, min=1)


# ========================================================= data parallelism
@dataclass
class TrainResult:
    """Outcome of a (data-parallel, parameter-server or single-process) run.

    ``state_dict`` holds the final weights (on the CPU); ``losses`` rank 0's
    (or the only process's) loss at each step; ``seconds`` the wall-clock
    time of the timed steps, measured inside the workers; ``extra`` anything
    specific to the scheme (staleness, bytes, per-epoch times).
    """

    world_size: int
    batch_size: int
    state_dict: dict
    losses: list
    seconds: float
    extra: dict = field(default_factory=dict)


def large_batch_train(batch_size: int, *, steps: int = 5, lr: float = 0.05, momentum: float = 0.9,
                      seed: int = 0, arch: str = "lenet300") -> TrainResult:
    """The single-process reference: SGD with ``batch_size`` examples per step, in this process.

    ``data_parallel_train(W, batch_size=B, …)`` must end with the same weights
    as ``large_batch_train(W * B, …)``: the mean of the W per-process mean
    gradients is the mean gradient of the W·B examples.
    """
    from ..models import build_model
    _check_train_args(batch_size, steps, lr, momentum, seed, arch)
    train = _train_split()
    model = build_model(arch, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses, start = [], time.perf_counter()
    for idx in global_batches(len(train), batch_size, steps, seed):
        loss = nn.functional.cross_entropy(model(train.x[idx]), train.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return TrainResult(1, batch_size, {k: v.detach().clone() for k, v in model.state_dict().items()},
                       losses, time.perf_counter() - start)


def _ddp_worker(rank: int, world_size: int, cfg: dict) -> dict:
    from torch.nn.parallel import DistributedDataParallel
    from ..models import build_model

    device = worker_device(rank)
    train = _train_split(cfg["n_train"])
    model = build_model(cfg["arch"], seed=cfg["seed"]).to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
    b = cfg["batch_size"]
    losses = []
    batches = list(global_batches(len(train), b * world_size, cfg["warmup_steps"] + cfg["steps"], cfg["seed"]))
    for i, idx in enumerate(batches):
        if i == cfg["warmup_steps"]:
            dist.barrier()          # time from a common start, after DDP's first-step set-up
            start = time.perf_counter()
        mine = idx[rank * b:(rank + 1) * b]                     # this process's shard of the global batch
        x, y = train.x[mine].to(device), train.y[mine].to(device)
        loss = nn.functional.cross_entropy(ddp(x), y)           # mean over this shard
        opt.zero_grad(set_to_none=True)
        loss.backward()             # DDP all-reduces (averages) the gradients during backward
        opt.step()
        losses.append(loss.item())
    if not batches[cfg["warmup_steps"]:]:
        dist.barrier()
        start = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dist.barrier()
    seconds = time.perf_counter() - start
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()} if rank == 0 else None
    return {"state_dict": state, "losses": losses[cfg["warmup_steps"]:], "seconds": seconds}


def data_parallel_train(world_size: int, *, batch_size: int = 32, steps: int = 5, lr: float = 0.05,
                        momentum: float = 0.9, seed: int = 0, arch: str = "lenet300",
                        warmup_steps: int = 0, n_train: int | None = None, timeout_s: float = 120.0,
                        start_method: str | None = None) -> TrainResult:
    """Train with ``DistributedDataParallel`` in ``world_size`` processes, ``batch_size`` examples each.

    Every process builds the same model (seeded), takes its slice of each
    global batch of ``world_size * batch_size`` examples (:func:`global_batches`)
    and steps SGD; DDP averages the gradients with an all-reduce during
    ``backward``, so all replicas stay identical. ``warmup_steps`` extra steps
    run first, untimed and unreported (DDP builds its buckets on the first).

    Returns
    -------
    TrainResult
        Rank 0's final weights and losses; ``seconds`` is the wall-clock time
        of the ``steps`` timed steps between two barriers.
    """
    world_size = check_int("world_size", world_size, min=1)
    _check_train_args(batch_size, steps, lr, momentum, seed, arch, n_train)
    warmup_steps = check_int("warmup_steps", warmup_steps, min=0)
    n = n_train if n_train is not None else len(_train_split())
    if world_size * batch_size > n:
        raise ValueError(f"world_size * batch_size must be at most the {n} training examples; "
                         f"got world_size={world_size}, batch_size={batch_size}.")
    cfg = dict(batch_size=batch_size, steps=steps, lr=lr, momentum=momentum, seed=seed, arch=arch,
               warmup_steps=warmup_steps, n_train=n_train)
    out = launch(_ddp_worker, world_size, cfg, timeout_s=timeout_s, start_method=start_method)
    return TrainResult(world_size, batch_size, out[0]["state_dict"], out[0]["losses"], out[0]["seconds"])


def ddp_equivalence(world_size: int = 2, *, batch_size: int = 16, steps: int = 5, seed: int = 0,
                    timeout_s: float = 120.0) -> float:
    """Max |Δweight| between DDP on ``world_size`` processes × ``batch_size`` and one process × the total."""
    ddp = data_parallel_train(world_size, batch_size=batch_size, steps=steps, seed=seed, timeout_s=timeout_s)
    ref = large_batch_train(world_size * batch_size, steps=steps, seed=seed)
    return max_abs_diff(ddp.state_dict, ref.state_dict)


def time_per_epoch(world_sizes: Sequence[int] = (1, 2), *, arch: str = "lenet300", global_batch: int = 128,
                   n_train: int | None = None, seed: int = 0, timeout_s: float = 300.0) -> dict[int, float]:
    """Seconds per epoch of DDP training of ``arch`` for each number of processes.

    Strong scaling: the global batch (and so the arithmetic per epoch) is the
    same for every ``world_size``; each process takes ``global_batch /
    world_size`` examples per step, and every step all-reduces a full copy
    of the gradients. Measured inside the workers between barriers after two
    warm-up steps, so process start-up is not counted. Each process has one
    thread: on a 2-core machine more than 2 processes share cores, and other
    programs running at the same time slow every process down.
    """
    from ..models import MODELS
    check_type("world_sizes", world_sizes, (list, tuple, range), "a sequence of integers")
    if len(world_sizes) == 0:
        raise ValueError(f"world_sizes must not be empty; got {world_sizes!r}.")
    sizes = [check_int("world_sizes[i]", w, min=1) for w in world_sizes]
    check_choice("arch", arch, MODELS)
    global_batch = check_int("global_batch", global_batch, min=1)
    n = n_train if n_train is not None else len(_train_split())
    steps = n // global_batch
    if steps < 1:
        raise ValueError(f"global_batch must be at most the {n} training examples; got {global_batch!r}.")
    for w in sizes:
        if global_batch % w:
            raise ValueError(f"global_batch must be divisible by every world size; got global_batch="
                             f"{global_batch} and world size {w}.")
    out = {}
    for w in sizes:
        r = data_parallel_train(w, batch_size=global_batch // w, steps=steps, warmup_steps=2, seed=seed, arch=arch,
                                n_train=n_train, timeout_s=timeout_s)
        out[w] = r.seconds
    return out


def _allreduce_worker(rank: int, world_size: int, n_values: int, repeats: int) -> float:
    t = torch.randn(n_values, device=worker_device(rank))
    dist.all_reduce(t)                                    # warm-up: connections are made lazily
    best = float("inf")
    for _ in range(repeats):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(t)
        if t.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def time_allreduce(n_values: int, world_size: int = 2, *, repeats: int = 10, timeout_s: float = 120.0) -> float:
    """Seconds for one all-reduce (sum) of ``n_values`` fp32 values among ``world_size`` processes.

    Best of ``repeats``, each started from a barrier; the slowest rank's time is returned.
    """
    n_values = check_int("n_values", n_values, min=1)
    world_size = check_int("world_size", world_size, min=1)
    repeats = check_int("repeats", repeats, min=1)
    return max(launch(_allreduce_worker, world_size, n_values, repeats, timeout_s=timeout_s))


# ========================================================= parameter server
def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat(vector: torch.Tensor, like) -> list[torch.Tensor]:
    out, i = [], 0
    for t in like:
        out.append(vector[i:i + t.numel()].view_as(t))
        i += t.numel()
    return out


def _ps_worker(rank: int, world_size: int, cfg: dict) -> dict:
    from ..models import build_model

    n_workers, b = world_size - 1, cfg["batch_size"]
    model = build_model(cfg["arch"], seed=cfg["seed"])
    params = list(model.parameters())
    size = sum(p.numel() for p in params)
    dist.barrier()
    start = time.perf_counter()
    if rank == 0:
        # ---- the server: holds the weights, applies gradients, serves weights
        opt = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"])
        buf = torch.empty(size + 1)                      # gradient + the version it was computed on
        version, log = 0, []
        weights = torch.cat([_flat(p.detach() for p in params), torch.tensor([0.0])])
        for w in range(1, world_size):                   # everybody starts from the same weights
            dist.send(weights, dst=w)
        if cfg["mode"] == "sync":
            for _ in range(cfg["steps"]):
                total = torch.zeros(size)
                for w in range(1, world_size):           # wait for every worker: a barrier each step
                    dist.recv(buf, src=w)
                    total += buf[:size]
                    log.append((w, version, 0))
                for p, g in zip(params, _unflat(total / n_workers, params)):
                    p.grad = g.clone()
                opt.step()
                version += 1
                weights = torch.cat([_flat(p.detach() for p in params), torch.tensor([float(version)])])
                for w in range(1, world_size):
                    dist.send(weights, dst=w)
        else:
            for _ in range(cfg["steps"] * n_workers):   # apply each gradient as soon as it arrives
                w = dist.recv(buf, src=None)             # from whichever worker is first
                used = int(buf[size])
                log.append((w, used, version - used))    # staleness = updates since its weights were read
                for p, g in zip(params, _unflat(buf[:size], params)):
                    p.grad = g.clone()
                opt.step()
                version += 1
                weights = torch.cat([_flat(p.detach() for p in params), torch.tensor([float(version)])])
                dist.send(weights, dst=w)
        seconds = time.perf_counter() - start
        return {"state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
                "log": log, "seconds": seconds, "losses": []}
    # ---- a worker: pull weights, compute a gradient on its shard, push it
    train = _train_split()
    weights = torch.empty(size + 1)
    dist.recv(weights, src=0)
    losses, delay = [], cfg["delays"][rank - 1]
    for idx in global_batches(len(train), b * n_workers, cfg["steps"], cfg["seed"]):
        with torch.no_grad():
            for p, v in zip(params, _unflat(weights[:size], params)):
                p.copy_(v)
        mine = idx[(rank - 1) * b:rank * b]
        loss = nn.functional.cross_entropy(model(train.x[mine]), train.y[mine])
        model.zero_grad(set_to_none=True)
        loss.backward()
        if delay:
            time.sleep(delay)                            # a slower machine
        dist.send(torch.cat([_flat(p.grad for p in params), weights[size:]]), dst=0)   # push
        dist.recv(weights, src=0)                                                        # pull
        losses.append(loss.item())
    return {"state_dict": None, "log": [], "seconds": time.perf_counter() - start, "losses": losses}


def parameter_server_train(n_workers: int, *, mode: str = "sync", batch_size: int = 32, steps: int = 5,
                           lr: float = 0.05, momentum: float = 0.9, seed: int = 0, arch: str = "lenet300",
                           delays: Sequence[float] | None = None, timeout_s: float = 120.0,
                           start_method: str | None = None) -> TrainResult:
    """Train with a parameter server: rank 0 holds the weights, ranks 1…``n_workers`` compute gradients.

    Each worker pulls the weights, computes the gradient of its shard of the
    step's global batch and pushes it with ``torch.distributed.send``.

    - ``mode="sync"``: the server waits for all ``n_workers`` gradients,
      steps SGD with their mean and sends the new weights to everyone — the
      same arithmetic as all-reduce data parallelism with ``n_workers``
      processes (:func:`data_parallel_train`), through one central process.
    - ``mode="async"``: the server applies each gradient the moment it
      arrives (``recv`` from any source) and returns the current weights to
      that worker only. A gradient computed on weights ``s`` updates old is
      *stale* by ``s``: ``extra["staleness"]`` lists it per update, in order,
      with ``extra["worker"]`` the sender.

    ``delays`` (seconds, one per worker) makes a worker sleep after each
    gradient, to imitate a slower machine. Traffic per step: the server
    receives and sends ``n_workers`` full copies of the weights
    (``extra["server_bytes_per_step"]``), while ring all-reduce moves
    ``2 (n-1)/n`` copies through each process.
    """
    n_workers = check_int("n_workers", n_workers, min=1)
    check_choice("mode", mode, ("sync", "async"))
    _check_train_args(batch_size, steps, lr, momentum, seed, arch)
    if delays is None:
        delays = [0.0] * n_workers
    check_type("delays", delays, (list, tuple), "a list of seconds, one per worker")
    if len(delays) != n_workers:
        raise ValueError(f"delays must have one entry per worker ({n_workers}); got {delays!r}.")
    delays = [check_float("delays[i]", d, min=0) for d in delays]
    if n_workers * batch_size > len(_train_split()):
        raise ValueError(f"n_workers * batch_size must be at most the training set; got {n_workers} × {batch_size}.")
    cfg = dict(mode=mode, batch_size=batch_size, steps=steps, lr=lr, momentum=momentum, seed=seed, arch=arch,
               delays=delays)
    out = launch(_ps_worker, n_workers + 1, cfg, timeout_s=timeout_s, backend="gloo", start_method=start_method)
    server = out[0]
    n_params = sum(v.numel() for v in server["state_dict"].values())
    extra = {"worker": [w for w, _, _ in server["log"]], "staleness": [s for _, _, s in server["log"]],
             "worker_losses": [o["losses"] for o in out[1:]],
             "server_bytes_per_step": 2 * n_workers * 4 * n_params,
             "allreduce_bytes_per_process_per_step": 2 * (n_workers - 1) / n_workers * 4 * n_params}
    return TrainResult(n_workers, batch_size, server["state_dict"], out[1]["losses"], server["seconds"], extra)


def staleness_of(order: Sequence[int]) -> list[int]:
    """Staleness of each update of an asynchronous parameter server, from the order the workers pushed in.

    A worker computes its gradient on the weights the server sent right
    after that worker's previous update (or the initial weights), so the
    staleness of update ``k`` is the number of updates applied in between.

    >>> staleness_of([1, 2, 1, 1, 2])
    [0, 1, 1, 0, 2]
    """
    check_type("order", order, (list, tuple), "a list of worker ids")
    last, out = {}, []
    for k, w in enumerate(order):
        check_int("order[i]", w)
        out.append(k - last.get(w, 0))
        last[w] = k + 1
    return out


def communication_bytes(n_params: int, n_workers: int, *, bytes_per_value: int = 4) -> dict:
    """Bytes moved per training step by a parameter server and by ring all-reduce.

    Parameter server: each worker sends its gradient and receives the
    weights, so the server's link carries ``2 · n_workers · P`` values. Ring
    all-reduce (reduce-scatter, then all-gather): each process sends and
    receives ``2 (n − 1) / n · P`` values, whatever ``n``.
    """
    n_params = check_int("n_params", n_params, min=1)
    n_workers = check_int("n_workers", n_workers, min=1)
    b = check_int("bytes_per_value", bytes_per_value, min=1)
    return {"parameter_server_link": 2 * n_workers * n_params * b,
            "parameter_server_per_worker": 2 * n_params * b,
            "ring_allreduce_per_process": 2 * (n_workers - 1) / n_workers * n_params * b}


def pipeline_bubble(n_stages: int, micro_batches: int) -> float:
    """Idle fraction of a GPipe pipeline with equal stages: ``(K − 1) / (M + K − 1)``.

    Each of K stages is busy for M of the M + K − 1 time slots of the forward
    pass (and again of the backward pass); the rest is the "bubble".
    """
    k = check_int("n_stages", n_stages, min=1)
    m = check_int("micro_batches", micro_batches, min=1)
    return (k - 1) / (m + k - 1)


# ========================================================== model parallelism
def split_ranges(n: int, world_size: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into ``world_size`` contiguous ``(start, stop)`` pieces, sizes differing by at most 1.

    The first ``n % world_size`` pieces get one extra element.

    >>> split_ranges(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    """
    n = check_int("n", n, min=0)
    world_size = check_int("world_size", world_size, min=1)
    return _chunks(n, world_size)


def _chunks(n: int, world_size: int) -> list[tuple[int, int]]:
    base, extra = divmod(n, world_size)
    out, start = [], 0
    for r in range(world_size):
        stop = start + base + (r < extra)
        out.append((start, stop))
        start = stop
    return out


def split_layer(layer: nn.Module, world_size: int, rank: int) -> nn.Module:
    """Rank ``rank``'s share of ``layer`` split by outputs: rows of a Linear, output maps of a Conv2d.

    ``nn.Linear(in, out)`` → ``nn.Linear(in, out_r)`` holding rows
    ``start:stop`` of the weight and bias; ``nn.Conv2d`` → the same
    convolution with output channels ``start:stop``. Concatenating every
    rank's output along dimension 1 gives the layer's output. Needs at least
    one output per rank.
    """
    check_type("layer", layer, (nn.Linear, nn.Conv2d), "an nn.Linear or nn.Conv2d")
    n_out = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    world_size = check_int("world_size", world_size, min=1, max=n_out)
    rank = check_int("rank", rank, min=0, max=world_size - 1)
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        raise ValueError(f"layer must be an ungrouped convolution; got groups={layer.groups!r}.")
    start, stop = _chunks(n_out, world_size)[rank]
    if isinstance(layer, nn.Linear):
        part = nn.Linear(layer.in_features, stop - start, bias=layer.bias is not None)
    else:
        part = nn.Conv2d(layer.in_channels, stop - start, layer.kernel_size, stride=layer.stride,
                         padding=layer.padding, dilation=layer.dilation, bias=layer.bias is not None,
                         padding_mode=layer.padding_mode)
    with torch.no_grad():
        part.weight.copy_(layer.weight[start:stop])       # (out_r, in) or (out_r, in, kh, kw)
        if layer.bias is not None:
            part.bias.copy_(layer.bias[start:stop])
    return part


def all_gather_dim1(local: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Inside a process group: concatenate every rank's ``local`` along dimension 1.

    ``sizes[r]`` is rank r's size along dimension 1; gloo's all-gather needs
    equal shapes, so pieces are padded to the largest and trimmed after.
    """
    biggest = max(sizes)
    pad = [0, 0] * (local.dim() - 2) + [0, biggest - local.shape[1]]
    padded = nn.functional.pad(local, pad).contiguous()
    pieces = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(pieces, padded)
    return torch.cat([p[:, :s] for p, s in zip(pieces, sizes)], dim=1)


def _model_parallel_worker(rank: int, world_size: int, kind: str, layer_args: tuple, state: dict,
                           x: torch.Tensor, grad_output: torch.Tensor) -> dict:
    layer = nn.Linear(*layer_args) if kind == "linear" else nn.Conv2d(**layer_args)
    layer.load_state_dict(state)
    part = split_layer(layer, world_size, rank)          # this process holds only its outputs' weights
    n_out = state["weight"].shape[0]
    sizes = [b - a for a, b in _chunks(n_out, world_size)]
    start, stop = _chunks(n_out, world_size)[rank]
    x = x.clone().requires_grad_(True)
    local = part(x)                                       # (batch, out_r, …): the forward needs all of x
    y = all_gather_dim1(local.detach(), sizes)            # forward: all-gather the output slices
    local.backward(grad_output[:, start:stop])            # backward: each rank's share of dL/dx …
    grad_x = x.grad.clone()
    dist.all_reduce(grad_x)                               # … summed over ranks: all-reduce
    return {"output": y, "grad_input": grad_x, "grad_weight": part.weight.grad.clone(), "range": (start, stop)}


@dataclass
class ModelParallelResult:
    """Output and gradients of a layer computed across processes, with the single-process reference."""

    output: torch.Tensor
    grad_input: torch.Tensor
    grad_weight: torch.Tensor
    max_abs_diff: float


def model_parallel_forward(layer: nn.Module, x: torch.Tensor, world_size: int, *,
                           grad_output: torch.Tensor | None = None, timeout_s: float = 120.0,
                           start_method: str | None = None) -> ModelParallelResult:
    """Run ``layer`` split by outputs over ``world_size`` processes (forward and backward).

    Each process holds ``split_layer(layer, world_size, rank)`` and the whole
    input; the forward all-gathers the output slices, the backward sums each
    process's input gradient with an all-reduce and leaves each process the
    gradient of its own weight rows. ``max_abs_diff`` compares output, input
    gradient and weight gradient with ``layer`` run in this process.

    Parameters
    ----------
    layer : nn.Linear or nn.Conv2d
    x : Tensor (batch, in) or (batch, C, H, W)
    grad_output : Tensor shaped like the output, optional
        The upstream gradient dL/dy; default a seeded random one.
    """
    check_type("layer", layer, (nn.Linear, nn.Conv2d), "an nn.Linear or nn.Conv2d")
    check_type("x", x, torch.Tensor, "a tensor")
    n_out = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    world_size = check_int("world_size", world_size, min=1, max=n_out)
    layer = copy.deepcopy(layer).cpu().float()         # the caller's layer and its .grad stay untouched
    x = x.detach().cpu().float().requires_grad_(True)
    try:
        ref = layer(x)
    except RuntimeError as err:
        raise ValueError(f"x must fit the layer; got shape {tuple(x.shape)} ({err}).") from None
    if grad_output is None:
        grad_output = torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))
    check_type("grad_output", grad_output, torch.Tensor, "a tensor")
    if grad_output.shape != ref.shape:
        raise ValueError(f"grad_output must have the output's shape {tuple(ref.shape)}; "
                         f"got {tuple(grad_output.shape)}.")
    layer.zero_grad(set_to_none=True)
    ref.backward(grad_output)
    if isinstance(layer, nn.Linear):
        kind, args = "linear", (layer.in_features, layer.out_features, layer.bias is not None)
    else:
        kind, args = "conv", dict(in_channels=layer.in_channels, out_channels=layer.out_channels,
                                  kernel_size=layer.kernel_size, stride=layer.stride, padding=layer.padding,
                                  dilation=layer.dilation, bias=layer.bias is not None,
                                  padding_mode=layer.padding_mode)
    state = {k: v.detach().clone() for k, v in layer.state_dict().items()}
    out = launch(_model_parallel_worker, world_size, kind, args, state, x.detach(), grad_output.detach(),
                 timeout_s=timeout_s, backend="gloo", start_method=start_method)
    grad_w = torch.cat([o["grad_weight"] for o in out], dim=0)
    diffs = [(out[0]["output"] - ref.detach()).abs().max(), (out[0]["grad_input"] - x.grad).abs().max(),
             (grad_w - layer.weight.grad).abs().max()]
    return ModelParallelResult(out[0]["output"], out[0]["grad_input"], grad_w, float(max(diffs)))


# ======================================================= pipeline parallelism
def pipeline_stages(model: nn.Module, n_stages: int) -> list[nn.Sequential]:
    """Cut LeNet-300-100 into ``n_stages`` consecutive stages of whole layers (each Linear with its ReLU).

    The stages share the model's parameters (no copy); running them one
    after the other is ``model``'s forward.
    """
    from ..models import LeNet300
    check_type("model", model, LeNet300, "an effdl.models.LeNet300")
    units = [nn.Sequential(nn.Flatten(), model.fc1, nn.ReLU()), nn.Sequential(model.fc2, nn.ReLU()),
             nn.Sequential(model.fc3)]
    n_stages = check_int("n_stages", n_stages, min=1, max=len(units))
    return [nn.Sequential(*units[a:b]) for a, b in _chunks(len(units), n_stages)]


def _pipeline_worker(rank: int, world_size: int, cfg: dict) -> dict:
    from ..models import build_model

    model = build_model("lenet300", seed=cfg["seed"])
    stage = pipeline_stages(model, world_size)[rank]
    train = _train_split()
    idx = next(global_batches(len(train), cfg["batch_size"], 1, cfg["seed"]))
    micro = cfg["batch_size"] // cfg["micro_batches"]
    first_linear = next(m for m in stage.modules() if isinstance(m, nn.Linear))
    width = first_linear.in_features
    events, inputs, outputs, loss_total = [], [], [], 0.0
    dist.barrier()

    def log(phase, m, start):
        # perf_counter is the system-wide monotonic clock on Linux: comparable across processes
        events.append((rank, phase, m, start, time.perf_counter()))

    for m in range(cfg["micro_batches"]):               # forward: fill the pipeline
        mine = idx[m * micro:(m + 1) * micro]
        if rank == 0:
            x = train.x[mine]
        else:
            x = torch.empty(micro, width)
            dist.recv(x, src=rank - 1)                  # activations from the previous stage
            x.requires_grad_(True)
        start = time.perf_counter()
        y = stage(x)
        log("forward", m, start)
        if rank < world_size - 1:
            dist.send(y.detach().contiguous(), dst=rank + 1)
        else:
            # sum over micro-batches of (sum of losses / batch) = the batch's mean loss
            y = nn.functional.cross_entropy(y, train.y[mine], reduction="sum") / cfg["batch_size"]
            loss_total += y.item()
        inputs.append(x)
        outputs.append(y)
    for m in reversed(range(cfg["micro_batches"])):     # backward: drain it, last micro-batch first
        if rank == world_size - 1:
            grad = None
        else:
            grad = torch.empty_like(outputs[m])
            dist.recv(grad, src=rank + 1)               # dL/d(output) from the next stage
        start = time.perf_counter()
        outputs[m].backward(grad)                       # gradients accumulate over micro-batches
        log("backward", m, start)
        if rank > 0:
            dist.send(inputs[m].grad.contiguous(), dst=rank - 1)
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {"grads": grads, "events": events, "loss": loss_total if rank == world_size - 1 else None}


@dataclass
class PipelineResult:
    """One pipelined training step: loss, every parameter's gradient, and the stages' timeline.

    ``events`` are ``(stage, phase, micro_batch, start_s, end_s)``: compute
    intervals measured in the workers on the machine's monotonic clock,
    counted from the first start.
    """

    loss: float
    grads: dict
    events: list
    max_abs_diff: float


def pipeline_train_step(n_stages: int, *, batch_size: int = 64, micro_batches: int = 4, seed: int = 0,
                        timeout_s: float = 120.0, start_method: str | None = None) -> PipelineResult:
    """One GPipe-style step of LeNet-300-100 with its layers on ``n_stages`` processes.

    The batch is cut into ``micro_batches``; stage s receives a micro-batch's
    activations from stage s-1, computes, sends them on; after the last
    forward, gradients flow back the same way and accumulate over
    micro-batches. The result is checked against one process computing the
    batch's mean loss and gradients (``max_abs_diff``).
    """
    from ..models import build_model
    n_stages = check_int("n_stages", n_stages, min=1, max=3)
    batch_size = check_int("batch_size", batch_size, min=1, max=len(_train_split()))
    micro_batches = check_int("micro_batches", micro_batches, min=1, max=batch_size)
    seed = check_int("seed", seed, min=0)
    if batch_size % micro_batches:
        raise ValueError(f"batch_size must be divisible by micro_batches; got batch_size={batch_size}, "
                         f"micro_batches={micro_batches}.")
    cfg = dict(batch_size=batch_size, micro_batches=micro_batches, seed=seed)
    out = launch(_pipeline_worker, n_stages, cfg, timeout_s=timeout_s, backend="gloo", start_method=start_method)
    grads = {k: v for o in out for k, v in o["grads"].items()}
    t0 = min(e[3] for o in out for e in o["events"])
    events = sorted(((s, ph, m, a - t0, b - t0) for o in out for s, ph, m, a, b in o["events"]), key=lambda e: e[3])
    # the reference: one process, the whole batch
    model = build_model("lenet300", seed=seed)
    train = _train_split()
    idx = next(global_batches(len(train), batch_size, 1, seed))
    loss = nn.functional.cross_entropy(model(train.x[idx]), train.y[idx])
    loss.backward()
    diff = max(float((grads[n] - p.grad).abs().max()) for n, p in model.named_parameters())
    diff = max(diff, abs(out[-1]["loss"] - loss.item()))
    return PipelineResult(out[-1]["loss"], grads, events, diff)


# =================================================== hyper-parameter parallelism
def _sweep_worker(rank: int, world_size: int, cfg: dict) -> list:
    from ..data import load_mnist
    from ..models import build_model
    from ..train import evaluate, fit

    train, val = _train_split(cfg["n_train"]), load_mnist("val", source="embedded")
    rows = []
    for i in range(rank, len(cfg["lrs"]), world_size):   # configurations dealt round-robin
        start = time.perf_counter()
        model = build_model("lenet300", seed=cfg["seed"])
        fit(model, train, epochs=cfg["epochs"], lr=cfg["lrs"][i], batch_size=cfg["batch_size"], seed=cfg["seed"],
            device="cpu", show_progress=False)
        rows.append({"index": i, "lr": cfg["lrs"][i], "val_acc": evaluate(model, val, device="cpu"),
                     "rank": rank, "seconds": time.perf_counter() - start})
    return rows


def parallel_sweep(lrs: Sequence[float], n_processes: int, *, epochs: int = 1, batch_size: int = 64,
                   n_train: int | None = None, seed: int = 0, timeout_s: float = 300.0,
                   start_method: str | None = None) -> dict:
    """Train LeNet-300-100 once per learning rate, the runs dealt over ``n_processes`` processes.

    Hyper-parameter parallelism needs no communication: each process trains
    its own configurations (``lrs[rank::n_processes]``) with
    ``effdl.train.fit`` and reports validation accuracy. Returns
    ``{"rows": [{"lr", "val_acc", "rank", "seconds"}, …] in the order of
    lrs, "wall_s": seconds for the whole sweep including process start}``.
    """
    check_type("lrs", lrs, (list, tuple), "a list of learning rates")
    if not lrs:
        raise ValueError(f"lrs must not be empty; got {lrs!r}.")
    lrs = [check_float("lrs[i]", lr, min=0, min_open=True) for lr in lrs]
    n_processes = check_int("n_processes", n_processes, min=1)
    epochs = check_int("epochs", epochs, min=1)
    batch_size = check_int("batch_size", batch_size, min=1)
    if n_train is not None:
        check_int("n_train", n_train, min=1)
    cfg = dict(lrs=lrs, epochs=epochs, batch_size=batch_size, n_train=n_train, seed=check_int("seed", seed, min=0))
    start = time.perf_counter()
    out = launch(_sweep_worker, n_processes, cfg, timeout_s=timeout_s, backend="gloo", start_method=start_method)
    rows = sorted((r for rank_rows in out for r in rank_rows), key=lambda r: r["index"])
    return {"rows": rows, "wall_s": time.perf_counter() - start}


# ================================================================ the report
def parallel_report(*, world_size: int = 2, timeout_s: float = 300.0) -> dict:
    """The chapter's headline numbers (``effdl reproduce parallel --json``), all from real processes.

    DDP on ``world_size`` processes vs one process with the combined batch;
    LeNet-300-100's fc1 and LeNet-5's conv2 split over the processes vs one
    process; the synchronous parameter server vs all-reduce; seconds per
    epoch for 1 and ``world_size`` processes measured on this machine.
    """
    from ..models import build_model
    world_size = check_int("world_size", world_size, min=2)
    ddp = ddp_equivalence(world_size, batch_size=16, steps=5, timeout_s=timeout_s)
    gen = torch.Generator().manual_seed(0)
    fc = build_model("lenet300", seed=0).fc1
    conv = build_model("lenet5", seed=0).conv2
    mp_fc = model_parallel_forward(fc, torch.randn(8, 784, generator=gen), world_size, timeout_s=timeout_s)
    mp_conv = model_parallel_forward(conv, torch.randn(4, 20, 12, 12, generator=gen), world_size,
                                     timeout_s=timeout_s)
    ps = parameter_server_train(world_size, mode="sync", batch_size=16, steps=5, timeout_s=timeout_s)
    ar = data_parallel_train(world_size, batch_size=16, steps=5, timeout_s=timeout_s)
    ps_diff = max_abs_diff(ps.state_dict, ar.state_dict)
    epoch = time_per_epoch((1, world_size), timeout_s=timeout_s)
    return {"processes": world_size, "ddp_max_abs_diff": ddp,
            "model_parallel_max_abs_diff": max(mp_fc.max_abs_diff, mp_conv.max_abs_diff),
            "ps_sync_matches_allreduce": bool(ps_diff < 1e-5), "ps_sync_max_abs_diff": ps_diff,
            "epoch_s": {str(w): round(s, 3) for w, s in epoch.items()},
            "backend": default_backend(world_size), "cpu_count": os.cpu_count()}


# ============================================================== under torchrun
def torchrun_main(argv: Sequence[str] | None = None) -> int:
    """The data-parallel worker as a script for ``torchrun`` — on one machine or on several.

    One machine, two processes::

        torchrun --standalone --nproc-per-node=2 -m effdl.training.parallel --steps 5

    Two machines with two processes each (run the same line on both; the
    rendezvous endpoint is any address:port of the first that both reach)::

        torchrun --nnodes=2 --nproc-per-node=2 --rdzv-backend=c10d \\
                 --rdzv-endpoint=node0.example.org:29400 --rdzv-id=lenet -m effdl.training.parallel

    ``torchrun`` starts the processes and sets ``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
    ``init_process_group`` reads them. Each process then runs the same
    ``_ddp_worker`` as :func:`data_parallel_train`, and rank 0 checks the
    result against one process with the whole batch.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="torchrun … -m effdl.training.parallel",
                                     description="DDP training of LeNet-300-100 under torchrun")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16, help="examples per process and step")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise SystemExit(f"run me under torchrun (environment variables {missing} are not set), e.g. "
                         "torchrun --standalone --nproc-per-node=2 -m effdl.training.parallel")
    torch.set_num_threads(1)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    backend = default_backend(local)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)                      # env:// — the variables torchrun set
    try:
        cfg = dict(batch_size=args.batch_size, steps=args.steps, lr=args.lr, momentum=0.9, seed=args.seed,
                   arch="lenet300", warmup_steps=0, n_train=None)
        out = _ddp_worker(rank, world_size, cfg)
        if rank == 0:
            ref = large_batch_train(world_size * args.batch_size, steps=args.steps, lr=args.lr, seed=args.seed)
            diff = max_abs_diff(out["state_dict"], ref.state_dict)
            print(f"rank 0 of {world_size} ({backend}): losses " + " ".join(f"{x:.4f}" for x in out["losses"]))
            print(f"same weights as one process with batch {world_size * args.batch_size}: {diff < 1e-5} "
                  f"(max |dw| = {diff:.1e})")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(torchrun_main())
