"""Knowledge distillation: soft targets, temperature, and a student trained on 3 % of the data.

Chapter 13 (Distillation and DSD) teaches it, after Hinton, Vinyals & Dean,
*Distilling the Knowledge in a Neural Network* (NIPS Deep Learning Workshop
2015). A trained *teacher* (here the zoo's LeNet-5, or an ensemble of the
zoo's LeNet-5 and LeNet-300-100) labels each training image with its whole
output distribution, softened by a temperature ``T``; a small *student* is
trained to match those soft targets as well as the hard labels.

- :func:`soft_targets`: ``softmax(z / T)``;
- :func:`distillation_loss`: ``α · T² · KL(p_teacher^T ‖ p_student^T) + (1 − α) · CE``;
- :func:`subset`: a stratified random fraction of a split (the paper's "3 % of the data");
- :func:`train_student`: a small MLP trained on hard labels or on a teacher's soft targets;
- :func:`dark_knowledge`: a teacher's probabilities at T = 1 and at T, for the chapter's figure;
- ``effdl.precompute.distillation.run_experiment`` / ``distillation_report``: the 3 %-of-data experiment with the
  hyperparameters chosen on the validation split by ``effdl.precompute.distillation``.

The paper's speech result (Hinton, Vinyals & Dean, 2015, §4): all data 58.9 % frame accuracy; 3 % of the
data with hard targets 44.5 %, with soft targets 57.0 %.

>>> z = torch.tensor([[2.0, 1.0, 0.0]])
>>> soft_targets(z, 1.0).sum().item()
1.0
>>> bool(soft_targets(z, 8.0).max() < soft_targets(z, 1.0).max())   # a higher T is softer
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ..data import MNIST_MEAN, MNIST_STD, Split, load_mnist
from ..train import evaluate
from ..validation import (Fraction, Instance, Interval, ListOf, Module, Options, PositiveInt, Seed, Tensor, check_part,
                          validate_params)


DATA_FRACTION = 0.03            # the paper's "3 % of the training set"
STUDENT_HIDDEN = 64             # 784-64-10: 50,890 parameters, 8.5× fewer than LeNet-5's 431,080
BATCH_SIZE = 32
TEACHERS = ("lenet5", "ensemble_logits", "ensemble_probs")


# ============================================================== argument constraints
TEMPERATURE = Interval(float, 0, None, closed="neither")
ALPHA = Fraction()
SPLIT = Instance(Split, "an effdl.data.Split (from effdl.data.load_mnist)")
LOGITS = Tensor(convert=False, ndim=2)                  # (batch, classes), floating point, finite


# ============================================================== soft targets and the loss
@validate_params(logits=Tensor(convert=False), temperature=TEMPERATURE)
def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax at temperature ``T`` over the last dimension: ``p_i = exp(z_i/T) / Σ_j exp(z_j/T)``.

    ``T = 1`` is the ordinary softmax; a larger ``T`` gives a softer
    distribution (→ uniform as T → ∞), a smaller one a harder one (→ one-hot
    as T → 0). Any shape (..., classes).

    Taught in chapter 13, "Distillation and DSD".
    """
    if logits.ndim == 0:
        raise ValueError(f"soft_targets: logits must have a last (class) dimension; got shape {tuple(logits.shape)}.")
    return torch.softmax(logits / temperature, dim=-1)


@validate_params(student_logits=LOGITS, teacher_logits=LOGITS,
                 labels=Tensor(convert=False, dtype="int", finite=False, nonempty=False),   # shape: checked below
                 temperature=TEMPERATURE, alpha=ALPHA)
def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
                      temperature: float, alpha: float) -> torch.Tensor:
    """Hinton et al.'s loss: ``α · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α) · CE(s, y)``.

    Parameters
    ----------
    student_logits, teacher_logits : (batch, classes) float tensors
        The teacher's are treated as constants (no gradient flows into them).
    labels : (batch,) integer tensor in [0, classes)
    temperature : float > 0
        Softens both distributions in the KL term (not in the cross-entropy).
    alpha : float in [0, 1]
        Weight of the soft term; ``alpha=0`` is plain cross-entropy, ``alpha=1``
        soft targets only.

    Returns
    -------
    A scalar tensor: the KL is averaged over the batch (``batchmean``), the
    cross-entropy too.

    Taught in chapter 13, "Distillation and DSD".
    """
    if student_logits.shape[1] < 2:
        raise ValueError("distillation_loss: student_logits must have shape (batch ≥ 1, classes ≥ 2); "
                         f"got {tuple(student_logits.shape)}.")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"distillation_loss: teacher_logits must have the student's shape "
                         f"{tuple(student_logits.shape)}; got {tuple(teacher_logits.shape)}.")
    if labels.shape != student_logits.shape[:1]:
        raise ValueError(f"distillation_loss: labels must have shape ({student_logits.shape[0]},); "
                         f"got {tuple(labels.shape)}.")
    n_classes = student_logits.shape[1]
    if int(labels.min()) < 0 or int(labels.max()) >= n_classes:
        raise ValueError(f"distillation_loss: labels must be class indices in [0, {n_classes - 1}]; got values "
                         f"from {int(labels.min())} to {int(labels.max())}.")
    return _distillation_loss(student_logits, teacher_logits, labels.long(), temperature, alpha)


def _distillation_loss(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, temperature: float,
                       alpha: float) -> torch.Tensor:
    """The core of :func:`distillation_loss` on checked input. s, t: (batch, classes); y: (batch,)."""
    hard = F.cross_entropy(s, y) if alpha < 1 else s.new_zeros(())   # CE(s, y) = −(1/B) Σ_b log softmax(s_b)[y_b]
    if alpha == 0:
        return hard
    log_p_s = F.log_softmax(s / temperature, dim=1)                   # log p_s = log softmax(s/T)   (B, K)
    log_p_t = F.log_softmax(t.detach() / temperature, dim=1)          # log p_t = log softmax(t/T)   (B, K)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean()          # (1/B) Σ_b Σ_k p_t (log p_t − log p_s)
    # Why T²: ∂KL/∂s_k = (p_s,k − p_t,k) / T, and for large T, p ≈ (1 + z/T)/K, so the
    # soft gradient is ≈ (s_k − t_k) / (K · T²) (zero-mean logits; Hinton et al. eq. 4):
    # it shrinks as 1/T². Multiplying by T² keeps the soft term's share of the gradient
    # roughly the same whichever T is chosen, so α means the same thing at every T.
    return alpha * temperature ** 2 * kl + (1 - alpha) * hard


# ============================================================== data: a stratified subset
@validate_params(split=SPLIT, fraction=Fraction(closed="right"), seed=Seed())
def subset(split: Split, fraction: float, *, seed: int = 0) -> Split:
    """A stratified random ``fraction`` of ``split``: each class keeps its share of the images.

    The total is ``round(fraction · N)``; each class gets ``fraction · N_c``
    images rounded down, and the images left over go to the classes with the
    largest remainders (ties to the smaller class index). Which images are
    drawn depends only on ``seed``; the result keeps the split's order.

    >>> from effdl.data import load_mnist
    >>> small = subset(load_mnist("train", source="embedded"), 0.03, seed=0)
    >>> len(small), sorted(set(torch.bincount(small.y).tolist()))
    (105, [10, 11])

    Taught in chapter 13, "Distillation and DSD".
    """
    idx = _stratified_indices(split.y, fraction, seed)
    if len(idx) == 0:
        raise ValueError(f"subset: fraction must select at least one of the {len(split)} images; got {fraction!r}.")
    return Split(f"{split.name}[{fraction:g}]", split.source, split.x[idx], split.y[idx])


def _stratified_indices(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    classes, counts = torch.unique(labels, return_counts=True)
    quota = fraction * counts.double()                               # ideal share per class
    take = quota.floor().long()
    left = round(fraction * len(labels)) - int(take.sum())
    order = sorted(range(len(classes)), key=lambda i: (-(float(quota[i]) - int(take[i])), int(classes[i])))
    for i in order[:max(left, 0)]:
        take[i] += 1
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c, k in zip(classes.tolist(), take.tolist()):
        members = torch.nonzero(labels == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=gen)[:k]])
    return torch.cat(chosen).sort().values


# ============================================================== teacher and student
class Ensemble(nn.Module):
    """Several trained models answering as one teacher; returns logits (batch, classes).

    ``combine="logits"``: the mean of the members' logits. ``combine="probs"``:
    the log of the mean of their probabilities (arithmetic mean of the
    predictive distributions, as in Hinton et al.), so that ``softmax`` of the
    result is that mean and ``softmax(result / T)`` softens it further.

    Behind chapter 13, "Distillation and DSD".
    """

    def __init__(self, members, combine: str = "logits"):
        super().__init__()
        members = check_part("Ensemble", ListOf(Module()), "members", members)
        self.members = nn.ModuleList(members)
        self.combine = check_part("Ensemble", Options(("logits", "probs")), "combine", combine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([m(x) for m in self.members])          # (members, batch, classes)
        if self.combine == "logits":
            return logits.mean(0)                                    # z̄ = (1/M) Σ_m z_m
        return torch.log(torch.softmax(logits, -1).mean(0))         # log p̄, p̄ = (1/M) Σ_m softmax(z_m)


N_CLASSES = Interval(int, 2, None)


class Student(nn.Module):
    """The student: one hidden layer, ``in_features``-``hidden``-``n_classes`` with ReLU.

    Behind chapter 13, "Distillation and DSD".
    """

    def __init__(self, hidden: int = STUDENT_HIDDEN, *, in_features: int = 784, n_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(check_part("Student", PositiveInt(), "in_features", in_features),
                             check_part("Student", PositiveInt(), "hidden", hidden))
        self.fc2 = nn.Linear(hidden, check_part("Student", N_CLASSES, "n_classes", n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))          # (batch, in) → (batch, hidden) → (batch, 10)


@validate_params(hidden=PositiveInt(), seed=Seed(), in_features=PositiveInt(), n_classes=N_CLASSES)
def build_student(hidden: int = STUDENT_HIDDEN, *, seed: int = 0, in_features: int = 784,
                  n_classes: int = 10) -> Student:
    """A freshly initialised :class:`Student`; ``seed`` fixes its weights (global RNG untouched).

    Taught in chapter 13, "Distillation and DSD".
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Student(hidden, in_features=in_features, n_classes=n_classes)


@validate_params(teacher=Module(), split=SPLIT, batch_size=PositiveInt())
@torch.no_grad()
def teacher_logits(teacher: nn.Module, split: Split, *, batch_size: int = 1000) -> torch.Tensor:
    """The teacher's logits (N, classes) on every image of ``split`` (eval mode; its mode is restored).

    Taught in chapter 13, "Distillation and DSD".
    """
    was_training = teacher.training
    teacher.eval()
    out = torch.cat([teacher(x) for x in split.x.split(batch_size)])
    teacher.train(was_training)
    return out


@dataclass
class StudentHistory:
    """What :func:`train_student` saw: the training loss per epoch and the validation accuracy (%)
    at ``eval_epochs`` (epoch 0 = the initial weights).

    Behind chapter 13, "Distillation and DSD".
    """

    train_loss: list = field(default_factory=list)
    eval_epochs: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)


@validate_params(train_split=SPLIT, teacher=Module(optional=True), temperature=TEMPERATURE, alpha=ALPHA,
                 epochs=Interval(int, 0, None), lr=Interval(float, 0, None, closed="neither"), seed=Seed(),
                 hidden=PositiveInt(), batch_size=PositiveInt(), momentum=Interval(float, 0, 1, closed="left"),
                 val=Instance(Split, "an effdl.data.Split", optional=True), eval_every=PositiveInt())
def train_student(train_split: Split, *, teacher: nn.Module | None = None, temperature: float = 4.0,
                  alpha: float = 0.9, epochs: int = 100, lr: float = 0.03, seed: int = 0,
                  hidden: int = STUDENT_HIDDEN, batch_size: int = BATCH_SIZE, momentum: float = 0.9,
                  val: Split | None = None, eval_every: int = 1) -> tuple[Student, StudentHistory]:
    """Train a fresh :class:`Student` on ``train_split``; return it (eval mode) and its history.

    ``teacher=None`` trains on the hard labels only (cross-entropy).
    Otherwise the teacher's logits on the same images are computed once and
    the loss is :func:`distillation_loss` with ``temperature`` and ``alpha``.
    SGD with momentum; ``seed`` fixes the initial weights and the batch
    order. Every epoch is kept (no early stopping): the number of epochs is a
    hyperparameter, chosen on the validation split by the caller.
    With ``val``, the validation accuracy is recorded every ``eval_every``
    epochs (and at epoch 0).

    Behind chapter 13, "Distillation and DSD".
    """
    n_classes = 10
    if teacher is not None:
        targets = teacher_logits(teacher, train_split)               # (N, classes), computed once
        n_classes = targets.shape[1]
    model = build_student(hidden, seed=seed, in_features=train_split.x[0].numel(), n_classes=n_classes)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    gen = torch.Generator().manual_seed(seed)
    history = StudentHistory()
    if val is not None:
        history.eval_epochs.append(0)
        history.val_acc.append(evaluate(model, val, device="cpu"))
    x_all, y_all = train_split.x, train_split.y
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y_all), generator=gen)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            logits = model(x_all[idx])
            if teacher is None:
                loss = F.cross_entropy(logits, y_all[idx])
            else:
                loss = _distillation_loss(logits, targets[idx], y_all[idx], temperature, alpha)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if not math.isfinite(total):
            raise FloatingPointError(f"train_student: training diverged at epoch {epoch}; lower lr (got {lr!r}).")
        history.train_loss.append(total / len(y_all))
        if val is not None and (epoch % eval_every == 0 or epoch == epochs):
            history.eval_epochs.append(epoch)
            history.val_acc.append(evaluate(model, val, device="cpu"))
    return model.eval(), history


# ============================================================== the dark-knowledge figure's data
@validate_params(teacher=Module(), split=SPLIT, indices=ListOf(Interval(int, 0, None)), temperature=TEMPERATURE)
def dark_knowledge(teacher: nn.Module, split: Split, indices, *, temperature: float = 4.0) -> dict:
    """For the images ``indices`` of ``split``: the hard target and the teacher's soft targets.

    Returns arrays: ``images`` (n, H, W) in [0, 1] for display, ``labels``
    (n,), ``hard`` (n, classes) one-hot, ``soft_1`` the teacher's
    probabilities at T = 1 and ``soft_t`` at ``temperature``; plus
    ``indices`` and ``temperature``. Nothing is trained or changed.

    Taught in chapter 13, "Distillation and DSD".
    """
    in_split = Interval(int, 0, len(split) - 1)                     # an image of this split
    indices = [check_part("dark_knowledge", in_split, f"indices[{k}]", i) for k, i in enumerate(indices)]
    picked = Split(split.name, split.source, split.x[indices], split.y[indices])
    logits = teacher_logits(teacher, picked)                          # (n, classes)
    hard = F.one_hot(picked.y, logits.shape[1]).double()
    return {"indices": indices, "labels": picked.y.numpy(), "temperature": temperature,
            "images": (picked.x[:, 0] * MNIST_STD + MNIST_MEAN).clamp(0, 1).numpy(),
            "hard": hard.numpy(), "soft_1": soft_targets(logits.double(), 1.0).numpy(),
            "soft_t": soft_targets(logits.double(), temperature).numpy()}


# ============================================================== the 3 %-of-data experiment
@validate_params()
def experiment_splits() -> dict:
    """The embedded MNIST train, val and test splits the experiment uses.

    Behind chapter 13, "Distillation and DSD".
    """
    return {s: load_mnist(s, source="embedded") for s in ("train", "val", "test")}


