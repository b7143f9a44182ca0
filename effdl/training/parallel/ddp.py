"""Data parallelism with ``DistributedDataParallel``: all-reduce of the gradients, on real processes.

Chapter 11 (Parallelization) teaches it. :func:`data_parallel_train` trains
LeNet-300-100 in ``world_size`` processes, each on its slice of every global
batch, with the gradients averaged by an all-reduce during ``backward``
(PyTorch's DDP: Li et al., *PyTorch Distributed: Experiences on Accelerating
Data Parallel Training*, VLDB 2020); it is checked against one process with a
``world_size`` times larger batch (:func:`large_batch_train`,
:func:`ddp_equivalence`). Also here: the time per epoch against the number of
processes (:func:`time_per_epoch`), the time of one all-reduce
(:func:`time_allreduce`), and the same worker as a script for ``torchrun``
(:func:`torchrun_main`, run by ``python -m effdl.training.parallel``).
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ...models import MODELS, build_model
from ...train import threads
from ...validation import Instance, Interval, ListOf, Options, PositiveInt, Seed, validate_params
from .batches import TRAIN_PARAMS, global_batches, max_abs_diff, train_split
from .launcher import START_METHODS, TIMEOUT_S, default_backend, launch, worker_device


@dataclass
class TrainResult:
    """Outcome of a (data-parallel, parameter-server or single-process) run.

    ``state_dict`` holds the final weights (on the CPU); ``losses`` rank 0's
    (or the only process's) loss at each step; ``seconds`` the wall-clock
    time of the timed steps, measured inside the workers; ``extra`` anything
    specific to the scheme (staleness, bytes, per-epoch times).

    Behind chapter 11, "Parallelization".
    """

    world_size: int
    batch_size: int
    state_dict: dict
    losses: list
    seconds: float
    extra: dict = field(default_factory=dict)


def _check_fits(func: str, world_size: int, batch_size: int, n_train: int | None = None) -> None:
    """Raise unless ``world_size * batch_size`` examples fit in the training split (of ``n_train``)."""
    n = n_train if n_train is not None else len(train_split())
    if world_size * batch_size > n:
        raise ValueError(f"{func}: world_size * batch_size must be at most the {n} training examples; "
                         f"got world_size={world_size}, batch_size={batch_size}.")


@validate_params(**TRAIN_PARAMS)
def large_batch_train(batch_size: int, *, steps: int = 5, lr: float = 0.05, momentum: float = 0.9,
                      seed: int = 0, arch: str = "lenet300") -> TrainResult:
    """The single-process reference: SGD with ``batch_size`` examples per step, in this process.

    ``data_parallel_train(W, batch_size=B, …)`` must end with the same weights
    as ``large_batch_train(W * B, …)``: the mean of the W per-process mean
    gradients is the mean gradient of the W·B examples.

    Taught in chapter 11, "Parallelization".
    """
    _check_fits("large_batch_train", 1, batch_size)
    train = train_split()
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
    device = worker_device(rank)
    train = train_split(cfg["n_train"])
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


@validate_params(world_size=PositiveInt(), **TRAIN_PARAMS, warmup_steps=Interval(int, 0, None),
                 n_train=PositiveInt(optional=True), timeout_s=TIMEOUT_S,
                 start_method=Options(START_METHODS, optional=True))
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

    Taught in chapter 11, "Parallelization".
    """
    _check_fits("data_parallel_train", world_size, batch_size, n_train)
    cfg = dict(batch_size=batch_size, steps=steps, lr=lr, momentum=momentum, seed=seed, arch=arch,
               warmup_steps=warmup_steps, n_train=n_train)
    out = launch(_ddp_worker, world_size, (cfg,), timeout_s=timeout_s, start_method=start_method)
    return TrainResult(world_size, batch_size, out[0]["state_dict"], out[0]["losses"], out[0]["seconds"])


@validate_params(world_size=PositiveInt(), batch_size=PositiveInt(), steps=Interval(int, 0, None), seed=Seed(),
                 timeout_s=TIMEOUT_S)
def ddp_equivalence(world_size: int = 2, *, batch_size: int = 16, steps: int = 5, seed: int = 0,
                    timeout_s: float = 120.0) -> float:
    """Max |Δweight| between DDP on ``world_size`` processes × ``batch_size`` and one process × the total.

    Behind chapter 11, "Parallelization".
    """
    _check_fits("ddp_equivalence", world_size, batch_size)
    ddp = data_parallel_train(world_size, batch_size=batch_size, steps=steps, seed=seed, timeout_s=timeout_s)
    ref = large_batch_train(world_size * batch_size, steps=steps, seed=seed)
    return max_abs_diff(ddp.state_dict, ref.state_dict)


@validate_params(world_sizes=ListOf(PositiveInt()), arch=Options(tuple(MODELS)), global_batch=PositiveInt(),
                 n_train=PositiveInt(optional=True), seed=Seed(), timeout_s=TIMEOUT_S)
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

    Taught in chapter 11, "Parallelization".
    """
    n = n_train if n_train is not None else len(train_split())
    steps = n // global_batch
    if steps < 1:
        raise ValueError(f"time_per_epoch: global_batch must be at most the {n} training examples; "
                         f"got {global_batch!r}.")
    for w in world_sizes:
        if global_batch % w:
            raise ValueError(f"time_per_epoch: global_batch must be divisible by every world size; got global_batch="
                             f"{global_batch} and world size {w}.")
    out = {}
    for w in world_sizes:
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


@validate_params(n_values=PositiveInt(), world_size=PositiveInt(), repeats=PositiveInt(), timeout_s=TIMEOUT_S)
def time_allreduce(n_values: int, world_size: int = 2, *, repeats: int = 10, timeout_s: float = 120.0) -> float:
    """Seconds for one all-reduce (sum) of ``n_values`` fp32 values among ``world_size`` processes.

    Best of ``repeats``, each started from a barrier; the slowest rank's time is returned.

    Taught in chapter 11, "Parallelization".
    """
    return max(launch(_allreduce_worker, world_size, (n_values, repeats), timeout_s=timeout_s))


# ============================================================== under torchrun
@validate_params(argv=ListOf(Instance(str, "a string"), nonempty=False, optional=True))
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
    ``_ddp_worker`` as :func:`data_parallel_train` on one thread, and rank 0
    checks the result against one process with the whole batch.

    Behind chapter 11, "Parallelization".
    """
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
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    backend = default_backend(local)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)                      # env:// — the variables torchrun set
    try:
        with threads(1):                                  # processes, not threads, share the cores
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
