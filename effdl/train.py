"""Training and evaluation: ``fit``, ``evaluate``, seeds, scoped threads, device and progress bars.

Used by every chapter that trains. Progress bars (tqdm) are on when a person
runs the code and quiet when ``EFFDL_QUIET`` or ``CI`` is set — the notebook
tests and ``effdl execute`` set it, so stored chapter outputs carry no bars.

Numbers that stop being numbers are named: when :func:`fit`'s loss becomes
NaN or inf (or a weight does by the end of an epoch) it says which gradient and
which weight are not finite, at which epoch and batch; :func:`predict`,
:func:`evaluate` and :func:`mean_loss` refuse a model whose outputs are not
finite, instead of counting ``argmax`` of NaN logits (label 0) as predictions.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._validate import _fail, check_choice
from .data import Split
from .validation import (Bool, Callable, Constraint, Instance, Interval, ListOf, Module, Options, PositiveInt, Seed,
                         validate_params)


class _Device(Constraint):
    """A ``torch.device`` or a device name (``"cpu"``, ``"cuda"``, ``"cuda:0"``) this machine has; or None."""

    optional = True

    def describe(self):
        return "a torch.device or a device name such as 'cpu' or 'cuda', or None"

    def check(self, name, value):
        if value is None:
            return None
        if not isinstance(value, (str, torch.device)):
            _fail(TypeError, name, self.describe(), value)
        try:
            device = torch.device(value)
        except (RuntimeError, ValueError):
            _fail(ValueError, name, self.describe(), value)
        if device.type == "cuda" and not torch.cuda.is_available():
            _fail(ValueError, name, "a device this machine has (no CUDA device is available)", value)
        return device

    def invalid_values(self):
        return [("no-such-device", ValueError), (3, TypeError), (object(), TypeError)]


DEVICE = _Device()
SPLIT = Instance(Split, "an effdl.data.Split (from effdl.data.load_mnist)")
BATCH_SIZE = PositiveInt()


@validate_params(seed=Seed())
def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (a chapter's one seed cell); return a torch Generator.

    Taught in chapter 00, "Why efficiency".
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@validate_params(n=PositiveInt())
@contextlib.contextmanager
def threads(n: int):
    """Run the block with ``torch.set_num_threads(n)`` and restore the caller's count after.

    Records are computed on one thread so that float sums add in the same order
    on every machine; this keeps that setting from leaking into the caller.

    Taught in chapter 17, "Designing efficient models".
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


@validate_params(seed=Seed())
@contextlib.contextmanager
def seeded(seed: int):
    """Run the block with torch's global RNG seeded to ``seed``; restore the caller's RNG state after.

    For code that draws from torch's global generator (``nn.Linear``'s initialisation,
    ``torch.randn`` without a generator): the block is reproducible and the caller's
    random stream continues as if the block had not run.

    Behind chapter 00, "Why efficiency".
    """
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


@validate_params()
def default_device() -> torch.device:
    """CUDA when present (and not disabled by ``EFFDL_DEVICE=cpu``), else CPU.

    Behind chapter 00, "Why efficiency".
    """
    wanted = os.environ.get("EFFDL_DEVICE", "")
    if wanted:
        return torch.device(check_choice("EFFDL_DEVICE", wanted, ("cpu", "cuda")))
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@validate_params()
def quiet() -> bool:
    """True when progress bars should stay silent (tests, CI, stored chapter outputs).

    Behind chapter 00, "Why efficiency".
    """
    return bool(os.environ.get("EFFDL_QUIET") or os.environ.get("CI"))


@validate_params(iterable=Instance(Iterable, "an iterable"), total=Interval(int, 0, None, optional=True),
                 desc=Instance(str, "a string", optional=True), enabled=Bool(optional=True))
def progress(iterable, *, total=None, desc=None, enabled: bool | None = None):
    """Wrap an iterable in a tqdm bar unless :func:`quiet` (or ``enabled=False``).

    Behind chapter 00, "Why efficiency".
    """
    if enabled is None:
        enabled = not quiet()
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # deferred: tqdm.auto probes IPython/ipywidgets; only when a bar is shown
    return tqdm(iterable, total=total, desc=desc, leave=False)


@dataclass
class History:
    """Per-epoch record of a ``fit`` run; ``best_epoch`` counts from 1 (0 = initial weights).

    Behind chapter 00, "Why efficiency".
    """

    train_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_val_acc: float | None = None


@validate_params(values=ListOf(Interval(float, None, None)))
def mean_std(values) -> dict:
    """``{"mean", "std"}`` of a list of accuracies over seeds (sample std, 0 for one value), rounded to 3 decimals.

    >>> mean_std([94.0, 95.0, 96.0])
    {'mean': 95.0, 'std': 1.0}

    Behind chapter 00, "Why efficiency".
    """
    return {"mean": round(statistics.mean(values), 3),
            "std": round(statistics.stdev(values), 3) if len(values) > 1 else 0.0}


@validate_params(accuracy=Interval(float, 0, 100), n_images=PositiveInt())
def accuracy_stderr(accuracy: float, n_images: int) -> float:
    """Binomial standard error, in percentage points, of an accuracy (percent) measured on ``n_images``.

    ``100 · sqrt(p (1 − p) / n)`` with ``p = accuracy / 100``: how far a test
    accuracy moves from one draw of ``n_images`` test images to another.

    >>> round(accuracy_stderr(94.0, 1000), 2)
    0.75

    Taught in chapter 06, "Binary and ternary nets".
    """
    p = accuracy / 100
    return 100 * math.sqrt(p * (1 - p) / n_images)


# ------------------------------------------------------------ what is not finite
def _first_nonfinite(tensors) -> tuple[str, float, tuple[int, ...]] | None:
    """(name, value, index) of the first NaN/inf among ``(name, tensor)`` pairs, or None."""
    tensors = [(n, t.detach()) for n, t in tensors if t is not None and t.is_floating_point()]
    if not tensors:
        return None
    # one device sync for all tensors; look for the culprit only when there is one
    if bool(torch.stack([torch.isfinite(t).all() for _, t in tensors]).all()):
        return None
    for n, t in tensors:
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            return n, float(t[bad].flatten()[0]), tuple(int(i) for i in bad.nonzero()[0])
    return None  # pragma: no cover  (the stacked check found one)


def _describe(found, what: str) -> str:
    name, value, index = found
    return f"{what} {name} holds {value!r} at index {index}"


def _weights_report(model: nn.Module) -> str:
    found = _first_nonfinite(model.named_parameters())
    return _describe(found, "the weight") if found else "its weights are all finite"


def _outputs(model: nn.Module, split: Split, batch_size: int, device, caller: str):
    """Yield (logits, labels) batch by batch in eval mode; refuse non-finite logits, naming the example."""
    was_training = model.training
    model.eval().to(device)
    try:
        start = 0
        for x, y in zip(split.x.split(batch_size), split.y.split(batch_size)):
            logits = model(x.to(device))                     # (batch, classes)
            finite = torch.isfinite(logits).flatten(1).all(1)
            if not bool(finite.all()):
                i = int((~finite).nonzero()[0])
                value = float(logits[i].detach()[~torch.isfinite(logits[i])].flatten()[0])
                raise ValueError(f"{caller}: model must give finite outputs (no NaN or inf); got {value!r} for "
                                 f"example {start + i} of {split.name!r} ({_weights_report(model)}).")
            yield logits, y
            start += len(y)
    finally:
        model.train(was_training)


def _predict(model: nn.Module, split: Split, batch_size: int, device, caller: str) -> torch.Tensor:
    device = default_device() if device is None else device
    return torch.cat([logits.argmax(1).cpu() for logits, _ in _outputs(model, split, batch_size, device, caller)])


EVAL_PARAMS = dict(model=Module(), split=SPLIT, batch_size=BATCH_SIZE, device=DEVICE)


@validate_params(**EVAL_PARAMS)
def predict(model: nn.Module, split: Split, *, batch_size: int = 1000,
            device: torch.device | None = None) -> torch.Tensor:
    """Predicted labels (N,) int64 for every example of ``split``.

    Taught in chapter 02, "Pruning".
    """
    return _predict(model, split, batch_size, device, "predict")


@validate_params(**EVAL_PARAMS)
def evaluate(model: nn.Module, split: Split, *, batch_size: int = 1000,
             device: torch.device | None = None) -> float:
    """Top-1 accuracy in percent on ``split``.

    Taught in chapter 00, "Why efficiency".
    """
    preds = _predict(model, split, batch_size, device, "evaluate")
    # exact count ÷ N (a Split holds N ≥ 1 examples), so 1,000 test images give accuracies like 97.3, not 97.29999
    return 100.0 * int((preds == split.y).sum()) / len(preds)


@validate_params(**EVAL_PARAMS)
@torch.no_grad()
def mean_loss(model: nn.Module, split: Split, *, batch_size: int = 1000,
              device: torch.device | None = None) -> float:
    """Mean cross-entropy (nats per example) of ``model`` on ``split``.

    A finer signal than accuracy on a small split (500 validation images move
    accuracy in steps of 0.2 points), used to choose settings on validation.

    Behind chapter 00, "Why efficiency".
    """
    device = default_device() if device is None else torch.device(device)
    total = sum(float(nn.functional.cross_entropy(logits, y.to(device), reduction="sum"))
                for logits, y in _outputs(model, split, batch_size, device, "mean_loss"))
    return total / len(split.y)  # a Split holds N ≥ 1 examples


def _diverged(event: str, epoch: int, batch: int, named, lr: float) -> FloatingPointError:
    """The error of a run that diverged, naming the first non-finite gradient (of the last step) and weight."""
    grad = _first_nonfinite((n, p.grad) for n, p in named)
    weight = _first_nonfinite(named)
    causes = ([f"{_describe(grad, 'the gradient of')} (from the last optimizer step)"] if grad else []) + \
             ([_describe(weight, "the weight")] if weight else [])
    cause = "; ".join(causes) or "the weights and gradients are all finite, so the forward pass made the outputs " \
                                 "non-finite"
    return FloatingPointError(f"fit: {event} at epoch {epoch}, batch {batch} — {cause}. Hint: a learning rate "
                              f"too large makes training diverge (got lr={lr!r}).")


@validate_params(model=Module(), train=SPLIT, epochs=Interval(int, 0, None),
                 lr=Interval(float, 0, None, closed="neither"), optimizer=Options(("sgd", "adam")),
                 momentum=Interval(float, 0, 1, closed="left"), weight_decay=Interval(float, 0, None),
                 batch_size=BATCH_SIZE, val=Instance(Split, "an effdl.data.Split or None", optional=True),
                 keep_best=Bool(), seed=Seed(), device=DEVICE, after_step=Callable(optional=True),
                 show_progress=Bool(optional=True))
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

    Raises
    ------
    ValueError
        ``model`` holds a NaN or inf weight before training.
    FloatingPointError
        Training diverged: the loss became NaN or inf (or a weight did, in an
        epoch's last step). The message gives the epoch and batch and names
        the first non-finite gradient of the last step and weight, with its
        index; a learning rate too large is only suggested after that.

    Taught in chapter 07, "Low-rank approximation".
    """
    found = _first_nonfinite(model.named_parameters())
    if found:
        name, value, index = found
        raise ValueError(f"fit: model must have finite weights (no NaN or inf); got {value!r} in {name} at index "
                         f"{index}.")
    device = default_device() if device is None else torch.device(device)

    model.to(device)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    opt = (torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
           if optimizer == "sgd" else torch.optim.Adam(params, lr=lr, weight_decay=weight_decay))
    history = History()
    best_state = None
    if val is not None:
        history.best_val_acc = evaluate(model, val, device=device)
        best_state = copy.deepcopy(model.state_dict()) if keep_best else None
    generator = torch.Generator().manual_seed(seed)
    for epoch in progress(range(1, epochs + 1), desc="epochs", enabled=show_progress):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total, count = 0.0, 0
        for batch, start in enumerate(range(0, len(train), batch_size), 1):
            idx = order[start:start + batch_size]
            x, y = train.x[idx].to(device), train.y[idx].to(device)
            loss = nn.functional.cross_entropy(model(x), y)
            value = loss.item()
            # a non-finite gradient or weight shows in the next batch's loss; the cause is looked up then
            # (the gradients of the previous step are still there), so steps that go well pay nothing
            if not math.isfinite(value):
                raise _diverged(f"the loss became {value!r}", epoch, batch, named, lr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step(model)
            total += value * len(idx)
            count += len(idx)
        if _first_nonfinite(named):                # the epoch's last step has no next loss to show it
            raise _diverged("a weight became non-finite", epoch, batch, named, lr)
        history.train_loss.append(total / count)   # count = len(train) ≥ 1: a Split is never empty
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
