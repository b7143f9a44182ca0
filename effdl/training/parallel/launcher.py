"""Starting ``torch.distributed`` worker processes: :func:`launch` and its clear failures.

Chapter 11 (Parallelization) teaches it. :func:`launch` runs a module-level
function in ``world_size`` new operating-system processes joined in one
process group — gloo on CPU, NCCL when there is a CUDA device per process —
as ``torchrun`` would on several machines. It implements no paper: it is the
plumbing every scheme of the chapter (``ddp``, ``parameter_server``,
``model_parallel``, ``sweep``) runs on.

The rendezvous store lives in the calling process on a port the operating
system picks (no guessed free port, no race), every worker gets
``torch.set_num_threads(num_threads)``, and a worker that raises, dies, or
hangs past ``timeout_s`` ends the whole run with a :class:`WorkerError` or
``TimeoutError`` naming it — never a hang. Worker functions must be importable
(module level), as with any spawned process: they are pickled by reference
(module path and name). They return plain data (tensors, numbers, lists,
dicts), collected per rank.
"""
from __future__ import annotations

import datetime
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..._validate import _fail
from ...validation import Constraint, Instance, Interval, Options, PositiveInt, validate_params

BACKENDS = ("gloo", "nccl")
START_METHODS = ("spawn", "forkserver")
HOST = "127.0.0.1"
TIMEOUT_S = Interval(float, 0, None, closed="neither")
# Modules a forkserver imports once, so each forked worker starts in ~0.1 s
# instead of re-importing torch (~2.5 s on this machine) and torch._dynamo,
# which DistributedDataParallel's constructor imports (another ~2.5 s).
# The package import brings in every worker function's module.
_PRELOAD = ["torch", "torch.distributed", "torch._dynamo", "torch.nn.parallel", "effdl.training.parallel",
            "effdl.models", "effdl.data", "effdl.train"]


class WorkerError(RuntimeError):
    """A worker process raised or died; the message names its rank and carries its traceback.

    Behind chapter 11, "Parallelization".
    """


class WorkerFunction(Constraint):
    """A function the worker processes can import by its module path: defined at the top level of a module.

    Spawned (and forkserver) workers do not share the caller's memory: ``fn`` reaches them pickled
    *by reference* (module and name) and is imported again there, so a lambda, a nested function or
    a method of an instance cannot be sent.

    Behind chapter 11, "Parallelization".
    """

    def describe(self):
        return "a module-level function (importable by its module path, as the worker processes import it)"

    def check(self, name, value):
        if not callable(value) or not _importable(value):
            _fail(TypeError, name, self.describe() + " — not a lambda, a function defined inside another, or an "
                  "object's method", value)
        return value

    def invalid_values(self):
        return [(3, TypeError), (None, TypeError), (lambda rank, world_size: rank, TypeError)]


def _importable(fn) -> bool:
    """Whether ``fn`` is what its module path names: ``sys.modules[fn.__module__].<fn.__qualname__>``."""
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(qualname, str) or "<" in qualname:          # <lambda>, <locals>: no name to import
        return False
    found = sys.modules.get(getattr(fn, "__module__", None) or "")
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is fn


@validate_params(world_size=PositiveInt())
def default_backend(world_size: int = 1) -> str:
    """``"nccl"`` when there is one CUDA device per process, else ``"gloo"`` (CPU).

    Behind chapter 11, "Parallelization".
    """
    usable = torch.cuda.is_available() and dist.is_nccl_available() and torch.cuda.device_count() >= world_size
    return "nccl" if usable else "gloo"


@validate_params()
def default_start_method() -> str:
    """``"forkserver"`` where the platform has it (fast repeated launches), else ``"spawn"``.

    Behind chapter 11, "Parallelization".
    """
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


@validate_params(rank=Interval(int, 0, None))
def worker_device(rank: int) -> torch.device:
    """The device a worker computes on: its own GPU under NCCL, else the CPU.

    Behind chapter 11, "Parallelization".
    """
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device("cpu")


@validate_params(rank=Interval(int, 0, None), world_size=PositiveInt())
def hello(rank: int, world_size: int) -> dict:
    """The smallest worker: all-reduce (sum) each rank's number and report what this process sees.

    Taught in chapter 11, "Parallelization".
    """
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)                                    # every process ends with 0 + 1 + … + (world_size − 1)
    return {"rank": rank, "world_size": world_size, "backend": dist.get_backend(), "pid": os.getpid(),
            "sum_of_ranks": int(t.item()), "threads": torch.get_num_threads()}


@validate_params(fn=WorkerFunction(), world_size=PositiveInt(),
                 args=Instance((tuple, list), "a tuple of further arguments for fn"), timeout_s=TIMEOUT_S,
                 backend=Options(BACKENDS, optional=True), start_method=Options(START_METHODS, optional=True),
                 num_threads=PositiveInt())
def launch(fn: Callable, world_size: int, args: tuple = (), *, timeout_s: float = 120.0,
           backend: str | None = None, start_method: str | None = None, num_threads: int = 1) -> list:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` new processes joined in one process group.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled by name into the workers).
        It runs after ``torch.distributed.init_process_group``; its return
        value (tensors, numbers, strings, lists, tuples, dicts) is collected.
    world_size : int
        Number of processes, ≥ 1.
    args : tuple
        Further arguments of ``fn``, the same for every rank (as
        ``torch.multiprocessing.spawn``'s ``args``).
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

    Taught in chapter 11, "Parallelization".
    """
    args = tuple(args)
    backend = default_backend(world_size) if backend is None else backend
    start_method = default_start_method() if start_method is None else start_method
    if backend == "nccl" and torch.cuda.device_count() < world_size:
        raise ValueError(f"launch: backend 'nccl' needs one CUDA device per process ({world_size}); "
                         f"got backend={backend!r} with {torch.cuda.device_count()} devices.")
    if start_method == "forkserver":
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
    # Runs in the worker, a process of its own that ends with ``fn``: setting the
    # thread count here changes no caller's state (so no effdl.train.threads).
    # One thread per process so that processes, not threads, share the cores;
    # then join the group through the caller's store.
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
        (Path(result_dir) / f"error{rank}.txt").write_text(f"{time.time()!r}\n{traceback.format_exc()}")
        raise
    finally:
        dist.destroy_process_group()
