"""A parameter server on point-to-point ``send``/``recv``: synchronous and asynchronous, with staleness.

Chapter 11 (Parallelization) teaches it; it implements the parameter server of
Dean et al., *Large Scale Distributed Deep Networks* (DistBelief's Downpour
SGD), NIPS 2012. Rank 0 holds the weights, the other ranks compute gradients:
:func:`parameter_server_train` runs it synchronously (the same arithmetic as
all-reduce data parallelism) or asynchronously, recording the staleness of
every update; :func:`staleness_of` computes that staleness from the order of
the pushes, and :func:`communication_bytes` the traffic against ring
all-reduce.
"""
from __future__ import annotations

import time
from typing import Sequence

import torch
import torch.distributed as dist
from torch import nn

from ...models import build_model
from ...validation import Interval, ListOf, Options, PositiveInt, validate_params
from .batches import TRAIN_PARAMS, global_batches, train_split
from .ddp import TrainResult
from .launcher import START_METHODS, TIMEOUT_S, launch


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat(vector: torch.Tensor, like) -> list[torch.Tensor]:
    out, i = [], 0
    for t in like:
        out.append(vector[i:i + t.numel()].view_as(t))
        i += t.numel()
    return out


def _ps_worker(rank: int, world_size: int, cfg: dict) -> dict:
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
    train = train_split()
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


@validate_params(n_workers=PositiveInt(), mode=Options(("sync", "async")), **TRAIN_PARAMS,
                 delays=ListOf(Interval(float, 0, None), optional=True), timeout_s=TIMEOUT_S,
                 start_method=Options(START_METHODS, optional=True))
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

    Taught in chapter 11, "Parallelization".
    """
    if delays is None:
        delays = [0.0] * n_workers
    if len(delays) != n_workers:
        raise ValueError(f"parameter_server_train: delays must have one entry per worker ({n_workers}); "
                         f"got {delays!r}.")
    if n_workers * batch_size > len(train_split()):
        raise ValueError(f"parameter_server_train: n_workers * batch_size must be at most the training set; "
                         f"got {n_workers} × {batch_size}.")
    cfg = dict(mode=mode, batch_size=batch_size, steps=steps, lr=lr, momentum=momentum, seed=seed, arch=arch,
               delays=delays)
    out = launch(_ps_worker, n_workers + 1, (cfg,), timeout_s=timeout_s, backend="gloo", start_method=start_method)
    server = out[0]
    n_params = sum(v.numel() for v in server["state_dict"].values())
    extra = {"worker": [w for w, _, _ in server["log"]], "staleness": [s for _, _, s in server["log"]],
             "worker_losses": [o["losses"] for o in out[1:]],
             "server_bytes_per_step": 2 * n_workers * 4 * n_params,
             "allreduce_bytes_per_process_per_step": 2 * (n_workers - 1) / n_workers * 4 * n_params}
    return TrainResult(n_workers, batch_size, server["state_dict"], out[1]["losses"], server["seconds"], extra)


@validate_params(order=ListOf(Interval(int, 0, None), nonempty=False))
def staleness_of(order: Sequence[int]) -> list[int]:
    """Staleness of each update of an asynchronous parameter server, from the order the workers pushed in.

    A worker computes its gradient on the weights the server sent right
    after that worker's previous update (or the initial weights), so the
    staleness of update ``k`` is the number of updates applied in between.

    >>> staleness_of([1, 2, 1, 1, 2])
    [0, 1, 1, 0, 2]

    Behind chapter 11, "Parallelization".
    """
    last, out = {}, []
    for k, w in enumerate(order):
        out.append(k - last.get(w, 0))
        last[w] = k + 1
    return out


@validate_params(n_params=PositiveInt(), n_workers=PositiveInt(), bytes_per_value=PositiveInt())
def communication_bytes(n_params: int, n_workers: int, *, bytes_per_value: int = 4) -> dict:
    """Bytes moved per training step by a parameter server and by ring all-reduce.

    Parameter server: each worker sends its gradient and receives the
    weights, so the server's link carries ``2 · n_workers · P`` values. Ring
    all-reduce (reduce-scatter, then all-gather): each process sends and
    receives ``2 (n − 1) / n · P`` values, whatever ``n``.

    Taught in chapter 11, "Parallelization".
    """
    b = bytes_per_value
    return {"parameter_server_link": 2 * n_workers * n_params * b,
            "parameter_server_per_worker": 2 * n_params * b,
            "ring_allreduce_per_process": 2 * (n_workers - 1) / n_workers * n_params * b}
