"""DSD: dense → sparse → dense training, against a dense baseline trained as long.

Chapter 13 ("Distillation and DSD") teaches it, after Han, Pool, Narang,
Mao, Gong, Tang, Elsen, Vajda, Paluri, Tran, Catanzaro & Dally, *DSD:
Dense-Sparse-Dense Training for Deep Neural Networks* (ICLR 2017). Three
phases:

- **D** — train the dense network from scratch;
- **S** — prune ``sparsity`` of each layer's weights by magnitude (per layer,
  :func:`effdl.pruning.magnitude_mask`; the paper leaves the first conv layer
  dense, ``skip_first=True``) and retrain with the mask applied
  (:func:`effdl.pruning.apply_masks`), so pruned weights stay exactly zero;
- **D′** — remove the masks (:func:`effdl.pruning.remove_masks`): the pruned
  weights restart at zero and everything retrains at a lower learning rate
  (``lr · redense_lr_factor``).

The paper's argument is that the sparse phase regularises (fewer free
parameters) and moves the optimisation away from a saddle point or a sharp
minimum, and the re-dense phase then recovers capacity from a better start.
:func:`baseline_train` is the control: the same model, optimizer, batch order
and learning-rate schedule for the same total number of epochs, minus the
sparse phase. :func:`dsd_compare` runs both from one shared phase D (the two
are identical up to there), and ``effdl.precompute.dsd.dsd_report`` re-runs the recipe chosen
by ``effdl.precompute.dsd`` on the validation split.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data import Split
from ..models import MODELS, build_model
from ..pruning import apply_masks, magnitude_mask, prunable_parameters, remove_masks
from ..train import DEVICE, evaluate, fit, mean_loss, mean_std
from ..validation import (Bool, Callable, Instance, Interval, ListOf, Options, PositiveInt, Seed, check_part,
                          validate_params)


PHASES = ("dense", "sparse", "redense")
METHODS = ("baseline", "dsd")


@dataclass
class DSDResult:
    """One training run (DSD or its dense baseline); epochs count from 1 over all phases.

    ``val_acc`` (%), ``train_loss`` (mean cross-entropy over the epoch) and
    the weight statistics are per epoch. ``phases`` lists ``(phase, first
    epoch, last epoch)`` for "dense", "sparse", "redense" (the baseline's
    phases are the same epochs and learning rates, with no mask). ``zeros``
    counts exact zeros per prunable weight at each epoch's end;
    ``pruned_zero_fraction`` is the fraction of the weights pruned in phase S
    that are exactly zero and ``pruned_abs_ratio`` their mean |w| divided by
    the kept weights' mean |w| (both None before pruning and for the
    baseline). ``masks`` are phase S's keep-masks (empty for the baseline).

    Behind chapter 13, "Distillation and DSD".
    """

    method: str
    arch: str
    seed: int
    sparsity: float
    phases: list[tuple[str, int, int]]
    val_acc: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    zeros: list[dict[str, int]] = field(default_factory=list)
    pruned_zero_fraction: list[float | None] = field(default_factory=list)
    pruned_abs_ratio: list[float | None] = field(default_factory=list)
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    val_loss: float = math.nan           # of the final model
    test_acc: float | None = None        # of the final model, when a test split was given
    model: nn.Module | None = None

    @property
    def epochs(self) -> int:
        return self.phases[-1][2]

    def phase_of(self, epoch: int) -> str:
        """The phase ("dense", "sparse" or "redense") that ``epoch`` (from 1) belongs to."""
        epoch = check_part("DSDResult.phase_of", Interval(int, 1, self.epochs), "epoch", epoch)
        return next(name for name, first, last in self.phases if first <= epoch <= last)


# ------------------------------------------------------ argument constraints
SPLIT = Instance(Split, "an effdl.data.Split (from effdl.data.load_mnist)")
EPOCHS = Interval(int, 0, None)
# The arguments dsd_train, baseline_train and dsd_compare share; the schedule ones go into ``cfg``.
TRAIN_PARAMS = dict(arch=Options(tuple(MODELS)), train=SPLIT, val=SPLIT, dense_epochs=EPOCHS, sparse_epochs=EPOCHS,
                    redense_epochs=EPOCHS, lr=Interval(float, 0, None, closed="neither"),
                    redense_lr_factor=Interval(float, 0, 1, closed="right"), seed=Seed(),
                    momentum=Interval(float, 0, 1, closed="left"), weight_decay=Interval(float, 0, None),
                    batch_size=PositiveInt(), test=Instance(Split, "an effdl.data.Split", optional=True),
                    device=DEVICE, after_step=Callable(optional=True))
DSD_PARAMS = dict(TRAIN_PARAMS, sparsity=Interval(float, 0, 1, closed="left"), skip_first=Bool())
ACCURACIES = ListOf(Interval(float, 0, 100))            # one accuracy (%) per seed


def _cfg(dense_epochs, sparse_epochs, redense_epochs, lr, redense_lr_factor, seed, momentum, weight_decay,
         batch_size) -> dict:
    return {"dense_epochs": dense_epochs, "sparse_epochs": sparse_epochs, "redense_epochs": redense_epochs, "lr": lr,
            "redense_lr_factor": redense_lr_factor, "seed": seed, "momentum": momentum,
            "weight_decay": weight_decay, "batch_size": batch_size}


# ---------------------------------------------------------------------- core
class _Recorder:
    """Per-epoch weight statistics, taken after the last optimizer step of each epoch."""

    def __init__(self, result: DSDResult, steps_per_epoch: int, user_hook):
        self.result, self.steps_per_epoch, self.user_hook = result, steps_per_epoch, user_hook
        self.phase, self.step = "dense", 0

    def hook(self, model: nn.Module) -> None:
        self.step += 1
        if self.user_hook is not None:
            self.user_hook(model, self.phase)
        if self.step % self.steps_per_epoch == 0:
            self.record(model)

    @torch.no_grad()
    def record(self, model: nn.Module) -> None:
        weights = prunable_parameters(model)
        r = self.result
        r.zeros.append({n: int((w == 0).sum()) for n, w in weights.items()})
        if not r.masks or self.phase == "dense":
            r.pruned_zero_fraction.append(None)
            r.pruned_abs_ratio.append(None)
            return
        pruned = torch.cat([weights[n][~m] for n, m in r.masks.items()])        # (n_pruned,)
        kept = torch.cat([weights[n][m] for n, m in r.masks.items()])           # (n_kept,)
        r.pruned_zero_fraction.append(float((pruned == 0).double().mean()) if pruned.numel() else 1.0)
        r.pruned_abs_ratio.append(float(pruned.abs().mean() / kept.abs().mean()) if pruned.numel() else 0.0)


def _phases(d: int, s: int, r: int) -> list[tuple[str, int, int]]:
    return [("dense", 1, d), ("sparse", d + 1, d + s), ("redense", d + s + 1, d + s + r)]


def _fit_phase(model, rec: _Recorder, phase: str, train, val, epochs, lr, cfg, device):
    """One phase: a fresh SGD optimizer (momentum restarts at every phase boundary, in both methods)."""
    rec.phase = phase
    # batch order seeded by (seed, phase): DSD and the baseline see the same batches
    h = fit(model, train, epochs=epochs, lr=lr, momentum=cfg["momentum"],
            weight_decay=cfg["weight_decay"], batch_size=cfg["batch_size"], val=val, keep_best=False,
            seed=3 * cfg["seed"] + PHASES.index(phase), device=device, after_step=rec.hook, show_progress=False)
    rec.result.val_acc += h.val_acc
    rec.result.train_loss += h.train_loss


def _dense_phase(arch, train, val, cfg, device, user_hook):
    model = build_model(arch, seed=cfg["seed"])
    shell = DSDResult("dense", arch, cfg["seed"], 0.0,
                      _phases(cfg["dense_epochs"], cfg["sparse_epochs"], cfg["redense_epochs"]))
    rec = _Recorder(shell, -(-len(train) // cfg["batch_size"]), user_hook)
    _fit_phase(model, rec, "dense", train, val, cfg["dense_epochs"], cfg["lr"], cfg, device)
    return model, shell


def _continue(method, model, shell, train, val, test, cfg, sparsity, skip_first, device, user_hook) -> DSDResult:
    """Phases S and D′ (DSD) or their unmasked twins (baseline) from a model after phase D."""
    model = copy.deepcopy(model)
    result = copy.deepcopy(shell)
    result.method, result.sparsity = method, sparsity if method == "dsd" else 0.0
    rec = _Recorder(result, -(-len(train) // cfg["batch_size"]), user_hook)
    if method == "dsd":
        weights = prunable_parameters(model)
        names = list(weights)[1:] if skip_first else list(weights)   # the first layer: conv1 / fc1
        result.masks = {n: magnitude_mask(weights[n], sparsity) for n in names}  # per layer, smallest |w|
        apply_masks(model, result.masks)                   # weight = original ⊙ mask from now on
    _fit_phase(model, rec, "sparse", train, val, cfg["sparse_epochs"], cfg["lr"], cfg, device)
    if method == "dsd":
        remove_masks(model)                                # plain weights again; pruned ones restart at 0
    _fit_phase(model, rec, "redense", train, val, cfg["redense_epochs"], cfg["lr"] * cfg["redense_lr_factor"],
               cfg, device)
    result.val_loss = mean_loss(model, val, device=device)
    if test is not None:
        result.test_acc = evaluate(model, test, device=device)
    result.model = model.eval()
    return result


# ------------------------------------------------------------------- public
@validate_params(**DSD_PARAMS)
def dsd_compare(arch: str, train: Split, val: Split, *, sparsity: float, dense_epochs: int, sparse_epochs: int,
                redense_epochs: int, lr: float, redense_lr_factor: float = 0.1, seed: int = 0,
                skip_first: bool = False, momentum: float = 0.9, weight_decay: float = 0.0, batch_size: int = 64,
                test: Split | None = None, device=None, after_step=None) -> dict[str, DSDResult]:
    """DSD and its baseline from one shared phase D: ``{"baseline": …, "dsd": …}``.

    Same arguments as :func:`dsd_train`. Phase D is identical in the two
    methods (same initial weights, batches and learning rate), so it is run
    once and copied; each result equals what :func:`dsd_train` and
    :func:`baseline_train` return on their own (the tests check it).

    Behind chapter 13, "Distillation and DSD".
    """
    cfg = _cfg(dense_epochs, sparse_epochs, redense_epochs, lr, redense_lr_factor, seed, momentum, weight_decay,
               batch_size)
    model, shell = _dense_phase(arch, train, val, cfg, device, after_step)
    return {m: _continue(m, model, shell, train, val, test, cfg, sparsity, skip_first, device, after_step)
            for m in METHODS}


@validate_params(**DSD_PARAMS)
def dsd_train(arch: str, train: Split, val: Split, *, sparsity: float, dense_epochs: int, sparse_epochs: int,
              redense_epochs: int, lr: float, redense_lr_factor: float = 0.1, seed: int = 0,
              skip_first: bool = False, momentum: float = 0.9, weight_decay: float = 0.0, batch_size: int = 64,
              test: Split | None = None, device=None, after_step=None) -> DSDResult:
    """Dense → sparse → dense training of a fresh ``arch`` (Han et al., ICLR 2017).

    Parameters
    ----------
    arch : {"lenet300", "lenet5", "lstm"}
        Built with :func:`effdl.models.build_model` and ``seed``.
    train, val : Split
        Training data; ``val`` is evaluated after every epoch (nothing is
        selected on it here: the final model is the last epoch's).
    sparsity : float in [0, 1)
        Fraction of each pruned layer's weights set to zero in phase S,
        ``round(sparsity · numel)`` smallest-|w| per layer. The paper uses
        0.3 for CNNs and 0.5 for DeepSpeech.
    dense_epochs, sparse_epochs, redense_epochs : int ≥ 0
        Length of phases D, S and D′.
    lr, redense_lr_factor : float
        SGD learning rate of phases D and S; phase D′ uses
        ``lr · redense_lr_factor`` (factor in (0, 1]).
    seed : int
        Initial weights and the batch order of each phase.
    skip_first : bool
        Leave the first prunable layer (conv1 / fc1) dense, as the paper does
        for the first conv layer.
    momentum, weight_decay, batch_size
        SGD settings, the same in every phase; the optimizer (and its
        momentum) restarts at each phase boundary.
    test : Split, optional
        Evaluated once on the final model (``test_acc``).
    after_step : callable, optional
        ``after_step(model, phase)`` after every optimizer step.

    Returns
    -------
    DSDResult with ``method="dsd"``.

    Behind chapter 13, "Distillation and DSD".
    """
    cfg = _cfg(dense_epochs, sparse_epochs, redense_epochs, lr, redense_lr_factor, seed, momentum, weight_decay,
               batch_size)
    model, shell = _dense_phase(arch, train, val, cfg, device, after_step)
    return _continue("dsd", model, shell, train, val, test, cfg, sparsity, skip_first, device, after_step)


@validate_params(**TRAIN_PARAMS)
def baseline_train(arch: str, train: Split, val: Split, *, dense_epochs: int, sparse_epochs: int,
                   redense_epochs: int, lr: float, redense_lr_factor: float = 0.1, seed: int = 0,
                   momentum: float = 0.9, weight_decay: float = 0.0, batch_size: int = 64,
                   test: Split | None = None, device=None, after_step=None) -> DSDResult:
    """The dense control for :func:`dsd_train`: same total epochs, same schedule, no sparse phase.

    Schedule choice: the baseline trains ``dense_epochs + sparse_epochs``
    epochs at ``lr`` and then ``redense_epochs`` at ``lr · redense_lr_factor``,
    with the optimizer restarted at the same two boundaries and the same
    batch order in each phase as DSD. So the *only* difference between the
    two is the mask of phase S. A baseline that kept the full learning rate
    to the end would confound DSD with "a lower learning rate at the end",
    which by itself often helps; DSD would get credit for the schedule.
    Equal epochs also means equal training compute, up to the cheaper
    masked phase.

    Arguments as :func:`dsd_train` (without ``sparsity`` and ``skip_first``).
    Returns a :class:`DSDResult` with ``method="baseline"``; its ``phases``
    name the epochs that correspond to DSD's phases.

    Behind chapter 13, "Distillation and DSD".
    """
    cfg = _cfg(dense_epochs, sparse_epochs, redense_epochs, lr, redense_lr_factor, seed, momentum, weight_decay,
               batch_size)
    model, shell = _dense_phase(arch, train, val, cfg, device, after_step)
    return _continue("baseline", model, shell, train, val, test, cfg, 0.0, False, device, after_step)


@validate_params(baseline=ACCURACIES, dsd=ACCURACIES)
def verdict(baseline: list[float], dsd: list[float]) -> dict:
    """Did DSD help? The difference of means against the spread of the per-seed numbers.

    ``baseline`` and ``dsd`` hold one accuracy (%) per seed, in the same seed
    order. "helped" when DSD's mean exceeds the baseline's by more than the
    larger of the two standard deviations; "hurt" when it is below by as
    much; else "no clear difference" (one seed has no spread: "one seed").
    Also the paired per-seed differences (same seed = same initial weights
    and phase D) and a paired t-test's two-sided p-value.

    Taught in chapter 13, "Distillation and DSD".
    """
    if len(baseline) != len(dsd):
        raise ValueError(f"verdict: dsd must have one value per seed of baseline ({len(baseline)}); got {len(dsd)}.")
    b, d = mean_std(baseline), mean_std(dsd)
    diff = round(d["mean"] - b["mean"], 3)
    noise = max(b["std"], d["std"])
    if len(baseline) < 2:
        word = "one seed"
    else:
        word = "helped" if diff > noise else "hurt" if diff < -noise else "no clear difference"
    paired = [round(y - x, 3) for x, y in zip(baseline, dsd)]
    p_value = None
    if len(paired) > 1 and any(p != paired[0] for p in paired):
        from scipy.stats import ttest_rel  # deferred: scipy.stats imports slowly; only the verdict needs it
        p_value = round(float(ttest_rel(dsd, baseline).pvalue), 4)
    return {"difference": diff, "noise": noise, "verdict": word, "paired_differences": paired,
            "seeds_dsd_better": sum(p > 0 for p in paired), "seeds_dsd_worse": sum(p < 0 for p in paired),
            "paired_t_p_value": p_value}


