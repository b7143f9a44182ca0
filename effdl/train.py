"""Training and evaluation: ``fit``, ``evaluate``, seeds, scoped threads, device and progress bars.

Used by every chapter that trains. Progress bars (tqdm) are on when a person
runs the code and quiet when ``EFFDL_QUIET`` or ``CI`` is set — the notebook
tests and ``effdl execute`` set it, so stored chapter outputs carry no bars.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import statistics
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._validate import check_bool, check_choice, check_float, check_int, check_type
from .data import Split


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (a chapter's one seed cell); return a torch Generator."""
    seed = check_int("seed", seed, min=0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def threads(n: int):
    """Run the block with ``torch.set_num_threads(n)`` and restore the caller's count after.

    Records are computed on one thread so that float sums add in the same order
    on every machine; this keeps that setting from leaking into the caller.
    """
    n = check_int("n", n, min=1)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def seeded(seed: int):
    """Run the block with torch's global RNG seeded to ``seed``; restore the caller's RNG state after.

    For code that draws from torch's global generator (``nn.Linear``'s initialisation,
    ``torch.randn`` without a generator): the block is reproducible and the caller's
    random stream continues as if the block had not run.
    """
    seed = check_int("seed", seed, min=0)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def default_device() -> torch.device:
    """CUDA when present (and not disabled by ``EFFDL_DEVICE=cpu``), else CPU."""
    wanted = os.environ.get("EFFDL_DEVICE", "")
    if wanted:
        return torch.device(check_choice("EFFDL_DEVICE", wanted, ("cpu", "cuda")))
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def quiet() -> bool:
    """True when progress bars should stay silent (tests, CI, stored chapter outputs)."""
    return bool(os.environ.get("EFFDL_QUIET") or os.environ.get("CI"))


def progress(iterable, *, total=None, desc=None, enabled: bool | None = None):
    """Wrap an iterable in a tqdm bar unless :func:`quiet` (or ``enabled=False``)."""
    if enabled is None:
        enabled = not quiet()
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # deferred: tqdm.auto probes IPython/ipywidgets; only when a bar is shown
    return tqdm(iterable, total=total, desc=desc, leave=False)


@dataclass
class History:
    """Per-epoch record of a ``fit`` run; ``best_epoch`` counts from 1 (0 = initial weights)."""

    train_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_val_acc: float | None = None


def _check_model_split(model, split, name="split"):
    check_type("model", model, nn.Module, "a torch.nn.Module")
    check_type(name, split, Split, "an effdl.data.Split (from effdl.data.load_mnist)")


@torch.no_grad()
def mean_std(values) -> dict:
    """``{"mean", "std"}`` of a list of accuracies over seeds (sample std, 0 for one value), rounded to 3 decimals.

    >>> mean_std([94.0, 95.0, 96.0])
    {'mean': 95.0, 'std': 1.0}
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("values must not be empty; got [].")
    return {"mean": round(statistics.mean(values), 3),
            "std": round(statistics.stdev(values), 3) if len(values) > 1 else 0.0}


def accuracy_stderr(accuracy: float, n_images: int) -> float:
    """Binomial standard error, in percentage points, of an accuracy (percent) measured on ``n_images``.

    ``100 · sqrt(p (1 − p) / n)`` with ``p = accuracy / 100``: how far a test
    accuracy moves from one draw of ``n_images`` test images to another.

    >>> round(accuracy_stderr(94.0, 1000), 2)
    0.75
    """
    p = check_float("accuracy", accuracy, min=0.0, max=100.0) / 100
    n = check_int("n_images", n_images, min=1)
    return 100 * math.sqrt(p * (1 - p) / n)


def predict(model: nn.Module, split: Split, *, batch_size: int = 1000,
            device: torch.device | None = None) -> torch.Tensor:
    """Predicted labels (N,) int64 for every example of ``split``."""
    _check_model_split(model, split)
    batch_size = check_int("batch_size", batch_size, min=1)
    device = default_device() if device is None else torch.device(device)
    was_training = model.training
    model.eval().to(device)
    preds = [model(x.to(device)).argmax(1).cpu() for x in split.x.split(batch_size)]
    model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def evaluate(model: nn.Module, split: Split, *, batch_size: int = 1000,
             device: torch.device | None = None) -> float:
    """Top-1 accuracy in percent on ``split``."""
    preds = predict(model, split, batch_size=batch_size, device=device)
    if len(preds) == 0:
        raise ValueError(f"split must not be empty; got {split!r}.")
    # exact count ÷ N, so 1,000 test images give accuracies like 97.3, not 97.29999
    return 100.0 * int((preds == split.y).sum()) / len(preds)


@torch.no_grad()
def mean_loss(model: nn.Module, split: Split, *, batch_size: int = 1000,
              device: torch.device | None = None) -> float:
    """Mean cross-entropy (nats per example) of ``model`` on ``split``.

    A finer signal than accuracy on a small split (500 validation images move
    accuracy in steps of 0.2 points), used to choose settings on validation.
    """
    _check_model_split(model, split)
    batch_size = check_int("batch_size", batch_size, min=1)
    if len(split.y) == 0:
        raise ValueError(f"split must not be empty; got {split!r}.")
    device = default_device() if device is None else torch.device(device)
    was_training = model.training
    model.eval().to(device)
    total = sum(float(nn.functional.cross_entropy(model(x.to(device)), y.to(device), reduction="sum"))
                for x, y in zip(split.x.split(batch_size), split.y.split(batch_size)))
    model.train(was_training)
    return total / len(split.y)


def fit(model: nn.Module, train: Split, *, epochs: int = 10, lr: float = 0.05,
        optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0,
        batch_size: int = 64, val: Split | None = None, keep_best: bool = True,
        seed: int = 0, device: torch.device | None = None, after_step=None,
        show_progress: bool | None = None) -> History:
    """Train ``model`` in place with cross-entropy; return its :class:`History`.

    Parameters
    ----------
    epochs, lr, optimizer ({"sgd", "adam"}), momentum, weight_decay, batch_size
        The usual; SGD uses ``momentum``.
    val : Split, optional
        Validation split evaluated after each epoch. With ``keep_best`` the
        model ends with the weights of its best validation epoch (early
        stopping chosen on validation data, never on test data).
    seed : int
        Seeds the batch order (a private generator; global RNG untouched).
    after_step : callable, optional
        Called as ``after_step(model)`` after every optimizer step; pruning
        uses it to keep masked weights at zero.
    """
    _check_model_split(model, train, "train")
    if val is not None:
        _check_model_split(model, val, "val")
    epochs = check_int("epochs", epochs, min=0)
    lr = check_float("lr", lr, min=0, min_open=True)
    check_choice("optimizer", optimizer, ("sgd", "adam"))
    momentum = check_float("momentum", momentum, min=0, max=1, max_open=True)
    weight_decay = check_float("weight_decay", weight_decay, min=0)
    batch_size = check_int("batch_size", batch_size, min=1)
    check_bool("keep_best", keep_best)
    if after_step is not None and not callable(after_step):
        raise TypeError(f"after_step must be callable; got {after_step!r}.")
    device = default_device() if device is None else torch.device(device)

    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
           if optimizer == "sgd" else torch.optim.Adam(params, lr=lr, weight_decay=weight_decay))
    history = History()
    best_state = None
    if val is not None:
        history.best_val_acc = evaluate(model, val, device=device)
        best_state = copy.deepcopy(model.state_dict()) if keep_best else None
    generator = torch.Generator().manual_seed(check_int("seed", seed, min=0))
    for epoch in progress(range(1, epochs + 1), desc="epochs", enabled=show_progress):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(train), batch_size):
            idx = order[start:start + batch_size]
            x, y = train.x[idx].to(device), train.y[idx].to(device)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step(model)
            total += loss.item() * len(idx)
            count += len(idx)
        if not np.isfinite(total):
            raise FloatingPointError(f"training diverged at epoch {epoch} (loss {total / count}); "
                                     f"lower lr (got {lr!r}).")
        history.train_loss.append(total / count)
        if val is not None:
            acc = evaluate(model, val, device=device)
            history.val_acc.append(acc)
            if acc > history.best_val_acc:
                history.best_val_acc, history.best_epoch = acc, epoch
                best_state = copy.deepcopy(model.state_dict()) if keep_best else None
    if val is not None and keep_best:
        model.load_state_dict(best_state)
    model.eval()
    return history
