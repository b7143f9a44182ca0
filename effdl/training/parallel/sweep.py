"""Hyper-parameter parallelism: a learning-rate sweep whose runs are dealt over processes.

Chapter 11 (Parallelization) teaches it. It implements no paper: the runs of
a sweep need no communication, so :func:`parallel_sweep` trains each
configuration with ``effdl.train.fit`` in whichever process it was dealt to
and only collects the validation accuracies.
"""
from __future__ import annotations

import time
from typing import Sequence

from ...data import load_mnist
from ...models import build_model
from ...train import evaluate, fit
from ...validation import Interval, ListOf, Options, PositiveInt, Seed, validate_params
from .batches import train_split
from .launcher import START_METHODS, TIMEOUT_S, launch


def _sweep_worker(rank: int, world_size: int, cfg: dict) -> list:
    train, val = train_split(cfg["n_train"]), load_mnist("val", source="embedded")
    rows = []
    for i in range(rank, len(cfg["lrs"]), world_size):   # configurations dealt round-robin
        start = time.perf_counter()
        model = build_model("lenet300", seed=cfg["seed"])
        fit(model, train, epochs=cfg["epochs"], lr=cfg["lrs"][i], batch_size=cfg["batch_size"], seed=cfg["seed"],
            device="cpu", show_progress=False)
        rows.append({"index": i, "lr": cfg["lrs"][i], "val_acc": evaluate(model, val, device="cpu"),
                     "rank": rank, "seconds": time.perf_counter() - start})
    return rows


@validate_params(lrs=ListOf(Interval(float, 0, None, closed="neither")), n_processes=PositiveInt(),
                 epochs=PositiveInt(), batch_size=PositiveInt(), n_train=PositiveInt(optional=True), seed=Seed(),
                 timeout_s=TIMEOUT_S, start_method=Options(START_METHODS, optional=True))
def parallel_sweep(lrs: Sequence[float], n_processes: int, *, epochs: int = 1, batch_size: int = 64,
                   n_train: int | None = None, seed: int = 0, timeout_s: float = 300.0,
                   start_method: str | None = None) -> dict:
    """Train LeNet-300-100 once per learning rate, the runs dealt over ``n_processes`` processes.

    Hyper-parameter parallelism needs no communication: each process trains
    its own configurations (``lrs[rank::n_processes]``) with
    ``effdl.train.fit`` and reports validation accuracy. Returns
    ``{"rows": [{"lr", "val_acc", "rank", "seconds"}, …] in the order of
    lrs, "wall_s": seconds for the whole sweep including process start}``.

    Taught in chapter 11, "Parallelization".
    """
    cfg = dict(lrs=lrs, epochs=epochs, batch_size=batch_size, n_train=n_train, seed=seed)
    start = time.perf_counter()
    out = launch(_sweep_worker, n_processes, (cfg,), timeout_s=timeout_s, backend="gloo", start_method=start_method)
    rows = sorted((r for rank_rows in out for r in rank_rows), key=lambda r: r["index"])
    return {"rows": rows, "wall_s": time.perf_counter() - start}
