"""Mixed-precision training: fp16 gradients, loss scaling, fp32 master weights, Tensor Core arithmetic.

Chapter 12 (Mixed precision) teaches it, after Micikevicius et al.,
*Mixed Precision Training* (ICLR 2018): keep an fp32 master copy of the
weights, scale the loss so that small gradients survive fp16, and accumulate
fp16 products in fp32. This CPU has no fast fp16 arithmetic, so fp16 is
*emulated*: values are computed in fp32 and rounded to fp16 wherever fp16
hardware would store them (weights, activations, activation and weight
gradients). A product of two fp16 numbers is exact in fp32 (11 × 11
significant bits ≤ 24), so an fp32 matmul of fp16 operands is what a Tensor
Core computes before its result is stored.

- :func:`weight_gradients`, :func:`underflow_fraction`, :func:`overflow_fraction`:
  how many real LeNet gradients flush to zero (or overflow) in fp16 at a
  given loss scale;
- :class:`LossScaler`: static or dynamic loss scaling with the rules of
  ``torch.amp.GradScaler`` (skip the step on inf/NaN and back off; grow after
  ``growth_interval`` good steps);
- :func:`train_mixed`: LeNet trained in fp32, in emulated fp16 with fp32
  master weights, or in pure fp16 (weights, momentum and update rounded to
  fp16, so updates smaller than half a unit in the last place are lost);
- :func:`tensor_core_mma` and :func:`tensor_core_matmul`: the 4×4×4
  ``D = A·B + C`` of a Volta Tensor Core with fp32 or fp16 accumulation;
- :func:`matmul_gflops`: measured matmul speed per dtype on this machine;
  :func:`autocast_compare`: real ``torch.autocast`` training on CUDA.

Longer than 600 lines because the fp16 emulation, loss scaling, master weights and Tensor-Core
arithmetic are parts of one training loop that chapter 12 takes apart step by step.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data import Split, load_mnist
from ..models import MODELS, build_model
from ..numerics import FP16
from ..train import evaluate
from ..train import threads as scoped_threads  # (the name `threads` is a parameter here)
from ..validation import (Bool, Instance, Interval, ListOf, Module, OneOf, Options, PositiveInt, Seed, Tensor,
                          check_part, validate_params)


FP16_MAX = FP16.max                      # 65504
FP16_MIN_NORMAL = FP16.min_normal        # 2^-14
FP16_MIN_SUBNORMAL = FP16.min_subnormal  # 2^-24: smaller magnitudes round to zero
MODES = ("fp32", "fp16_master", "fp16_pure")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# A value rounded to fp16 may be anything a tensor holds: ±inf and NaN round to themselves, as in IEEE.
ANY_TENSOR = Tensor(finite=False, dtype=None, convert=False, nonempty=False)
GRADIENT = Tensor(dtype=None, convert=False)           # a finite, non-empty tensor of gradient values
# Gradients: one tensor, a list of tensors (one per parameter) or a dict of name → tensor
# (its values are checked in the body, see _flat_grads).
GRADS = OneOf(GRADIENT, ListOf(GRADIENT), Instance(dict, "a dict of name → gradient tensor"))
SCALE = Interval(float, 0, None, closed="neither")
SPLIT = Instance(Split, "an effdl.data.Split")
ACCUMULATE = Options(("fp32", "fp16"))


# ======================================================= rounding to fp16
@validate_params(x=ANY_TENSOR)
def to_fp16(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded to the nearest fp16 value (ties to even), returned as fp32.

    Magnitudes below half the smallest subnormal (2^-25) become 0; beyond
    65504 (+ half an ulp) they become ±inf, as on fp16 hardware.

    Taught in chapter 12, "Mixed precision".
    """
    return x.to(torch.float16).to(x.dtype if x.is_floating_point() else torch.float32)


class _RoundFP16(torch.autograd.Function):
    """Identity that stores its input in fp16 — and its gradient too, on the way back."""

    @staticmethod
    def forward(ctx, x):
        return x.half().float()

    @staticmethod
    def backward(ctx, grad):
        return grad.half().float()


@validate_params(x=ANY_TENSOR)
def fp16_storage(x: torch.Tensor) -> torch.Tensor:
    """Round ``x`` to fp16 in the forward pass and its gradient to fp16 in the backward pass.

    Behind chapter 12, "Mixed precision".
    """
    return _RoundFP16.apply(x)


@validate_params(model=Module())
def emulate_fp16(model: nn.Module) -> list:
    """Make every Linear/Conv2d of ``model`` read and write fp16 activations (and their gradients).

    A pre-hook rounds each layer's input, a hook rounds its output; both
    round the gradient flowing back through them. Weights are not touched:
    keep them fp16-representable yourself (:func:`train_mixed` does).
    Returns the hook handles; call ``h.remove()`` on each to undo.

    Behind chapter 12, "Mixed precision".
    """
    handles = []
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            handles.append(module.register_forward_pre_hook(lambda m, inp: (fp16_storage(inp[0]),)))
            handles.append(module.register_forward_hook(lambda m, inp, out: fp16_storage(out)))
    return handles


# ========================================================= gradient ranges
@validate_params(grads=GRADS, scale=SCALE)
def underflow_fraction(grads, scale: float = 1.0) -> float:
    """Fraction of the non-zero values of ``grads`` that become 0 when ``scale · g`` is stored in fp16.

    Taught in chapter 12, "Mixed precision".
    """
    g = _flat_grads("underflow_fraction", grads)
    nonzero = g[g != 0]
    if nonzero.numel() == 0:
        raise ValueError("underflow_fraction: grads must hold at least one non-zero value; got only zeros.")
    return float(((nonzero * scale).half() == 0).double().mean())


@validate_params(grads=GRADS, scale=SCALE)
def overflow_fraction(grads, scale: float = 1.0) -> float:
    """Fraction of the values of ``grads`` that become ±inf when ``scale · g`` is stored in fp16.

    Taught in chapter 12, "Mixed precision".
    """
    g = _flat_grads("overflow_fraction", grads)
    return float(torch.isinf((g * scale).half()).double().mean())


@validate_params(grads=GRADS)
def max_safe_scale(grads) -> float:
    """The largest power of two ``S`` with ``S · max|g|`` still finite in fp16 — where dynamic scaling settles.

    Behind chapter 12, "Mixed precision".
    """
    g = _flat_grads("max_safe_scale", grads).abs().max()
    if g == 0:
        raise ValueError("max_safe_scale: grads must not be all zero; got max |g| = 0.0.")
    s = 2.0 ** int(torch.floor(torch.log2(torch.tensor(FP16_MAX / float(g), dtype=torch.float64))))
    while torch.isinf(torch.tensor(float(g) * s).half()):   # ties at the top of the range
        s /= 2
    return s


def _flat_grads(func: str, grads, name: str = "grads") -> torch.Tensor:
    """Checked gradients (a tensor, a list, or a dict whose values are checked here) as one flat fp32 tensor."""
    if isinstance(grads, dict):
        if not grads:
            raise ValueError(f"{func}: {name} must name at least one gradient tensor; got {{}}.")
        grads = [check_part(func, GRADIENT, f"{name}[{k!r}]", g) for k, g in grads.items()]
    if isinstance(grads, torch.Tensor):
        return grads.detach().reshape(-1).float()
    return torch.cat([g.detach().reshape(-1).float() for g in grads])


@validate_params(model=Module(), split=SPLIT, n_batches=PositiveInt(), batch_size=PositiveInt(), seed=Seed(),
                 activations=Bool())
def weight_gradients(model: nn.Module, split, *, n_batches: int = 8, batch_size: int = 64, seed: int = 0,
                     activations: bool = False) -> list[torch.Tensor]:
    """Real fp32 gradients of ``model`` on ``n_batches`` training batches: one flat tensor per batch.

    Each is the gradient of the batch's mean cross-entropy with respect to
    every parameter (``activations=False``) or to every Linear/Conv2d output
    (``activations=True``) — the values an fp16 backward pass would have to
    store. The model is left unchanged.

    Taught in chapter 12, "Mixed precision".
    """
    check_part("weight_gradients", Interval(int, 1, len(split)), "batch_size", batch_size)   # at most the split
    model = copy.deepcopy(model).cpu().float().train()
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    out = []
    for b in range(n_batches):
        idx = order[(b * batch_size) % len(split):][:batch_size]
        outputs = []

        def keep(module, inputs, output, outputs=outputs):
            output.retain_grad()                  # (batch, features): its gradient is kept after backward
            outputs.append(output)

        hooks = [m.register_forward_hook(keep) for m in model.modules()
                 if isinstance(m, (nn.Linear, nn.Conv2d))] if activations else []
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(split.x[idx]), split.y[idx]).backward()
        for h in hooks:
            h.remove()
        tensors = [o.grad for o in outputs] if activations else [p.grad for p in model.parameters()]
        out.append(torch.cat([t.reshape(-1) for t in tensors]).detach().clone())
    return out


# ============================================================ loss scaling
class LossScaler:
    """Loss scaling as ``torch.amp.GradScaler`` does it, for gradients you unscale yourself.

    Multiply the loss by :attr:`scale` before ``backward``; then
    :meth:`unscale` divides the gradients by it and reports whether any is
    inf/NaN; :meth:`update` records the step. With ``dynamic=True``: a step
    with inf/NaN is skipped and the scale multiplied by ``backoff_factor``;
    after ``growth_interval`` consecutive good steps it is multiplied by
    ``growth_factor``. With ``dynamic=False`` the scale stays fixed (static
    loss scaling) and bad steps are still skipped.

    >>> s = LossScaler(init_scale=8.0, growth_interval=2)
    >>> for found_inf in [False, False, True, False]:
    ...     s.update(found_inf)
    >>> s.scale, s.skipped
    (8.0, 1)

    Taught in chapter 12, "Mixed precision".
    """

    def __init__(self, init_scale: float = 2.0 ** 16, *, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, dynamic: bool = True):
        self.scale = check_part("LossScaler", SCALE, "init_scale", init_scale)
        self.growth_factor = check_part("LossScaler", Interval(float, 1, None, closed="neither"), "growth_factor",
                                        growth_factor)
        self.backoff_factor = check_part("LossScaler", Interval(float, 0, 1, closed="neither"), "backoff_factor",
                                         backoff_factor)
        self.growth_interval = check_part("LossScaler", PositiveInt(), "growth_interval", growth_interval)
        self.dynamic = check_part("LossScaler", Bool(), "dynamic", dynamic)
        self.good_steps = 0
        self.skipped = 0
        self.history: list[tuple[float, bool]] = []   # (scale used, step skipped) per step

    def unscale(self, grads: list[torch.Tensor]) -> bool:
        """Divide ``grads`` in place by the scale; return True if any is inf or NaN (None entries are skipped)."""
        check_part("LossScaler.unscale", ListOf(Tensor(finite=False, dtype=None, convert=False, nonempty=False,
                                                       optional=True), nonempty=False), "grads", grads)
        found_inf = False
        for g in grads:
            if g is None:
                continue
            if not torch.isfinite(g).all():
                found_inf = True
            g.div_(self.scale)
        return found_inf

    def update(self, found_inf: bool) -> None:
        """Record a step: skipped if ``found_inf``; adjust the scale (dynamic scaling only)."""
        check_part("LossScaler.update", Bool(), "found_inf", found_inf)
        self.history.append((self.scale, found_inf))
        if found_inf:
            self.skipped += 1
        if not self.dynamic:
            return
        if found_inf:
            self.scale *= self.backoff_factor
            self.good_steps = 0
        else:
            self.good_steps += 1
            if self.good_steps == self.growth_interval:
                self.scale *= self.growth_factor
                self.good_steps = 0


@validate_params(grads=ListOf(GRADS), scaler=Instance(LossScaler, "an effdl.training.mixed_precision.LossScaler"))
def scaled_underflow(grads: list[torch.Tensor], scaler: LossScaler) -> dict:
    """Run ``scaler`` over a sequence of gradients (one tensor per step) as a training run would.

    At each step the gradients are scaled by the current scale and stored in
    fp16; a step with an overflow is skipped and the scaler backs off. Returns
    the underflow fraction over the steps that were *not* skipped (those are
    the gradients the optimizer uses), the underflow without scaling, the
    scales of the steps used (and the largest), the scale the scaler would
    try next and the number of skipped steps.

    Taught in chapter 12, "Mixed precision".
    """
    steps = [_flat_grads("scaled_underflow", g, f"grads[{i}]") for i, g in enumerate(grads)]   # one per step
    n_nonzero = sum(int((g != 0).sum()) for g in steps)
    if n_nonzero == 0:
        raise ValueError("scaled_underflow: grads must hold at least one non-zero value; got only zeros.")
    used, lost, total, lost_unscaled = [], 0, 0, 0
    for g in steps:
        stored = (g * scaler.scale).half()
        found_inf = bool(torch.isinf(stored).any())
        nonzero = g != 0
        lost_unscaled += int((g[nonzero].half() == 0).sum())
        if not found_inf:
            used.append(scaler.scale)
            lost += int((stored[nonzero] == 0).sum())
            total += int(nonzero.sum())
        scaler.update(found_inf)
    return {"underflow_unscaled": lost_unscaled / n_nonzero,
            "underflow_scaled": lost / total if total else float("nan"),
            "scales_used": used, "max_scale_used": max(used) if used else None, "final_scale": scaler.scale,
            "skipped": scaler.skipped}


# ================================================ training in (emulated) fp16
@dataclass
class MixedResult:
    """A :func:`train_mixed` run. ``model`` is the trained model (fp16-valued weights for fp16 modes).

    Behind chapter 12, "Mixed precision".
    """

    mode: str
    model: nn.Module
    test_acc: float
    val_acc: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    scales: list = field(default_factory=list)
    skipped: int = 0
    lost_update_fraction: list = field(default_factory=list)


@validate_params(mode=Options(MODES), arch=Options(tuple(MODELS)),
                 loss_scale=OneOf(Options(("dynamic",), optional=True), SCALE),
                 epochs=Interval(int, 0, None), lr=Interval(float, 0, None, closed="neither"),
                 momentum=Interval(float, 0, 1, closed="left"), batch_size=PositiveInt(),
                 schedule=Options(("cosine", "constant")), seed=Seed(), growth_interval=PositiveInt(),
                 train=Instance(Split, "an effdl.data.Split", optional=True),
                 val=Instance(Split, "an effdl.data.Split", optional=True),
                 test=Instance(Split, "an effdl.data.Split", optional=True))
def train_mixed(mode: str = "fp16_master", *, arch: str = "lenet300", loss_scale="dynamic", epochs: int = 10,
                lr: float = 0.03, momentum: float = 0.9, batch_size: int = 64, schedule: str = "cosine",
                seed: int = 0, growth_interval: int = 200, train=None, val=None, test=None) -> MixedResult:
    """Train ``arch`` on the embedded MNIST with SGD + momentum in one of three precisions.

    Parameters
    ----------
    mode : {"fp32", "fp16_master", "fp16_pure"}
        ``"fp32"``: ordinary training. ``"fp16_master"``: weights,
        activations and all gradients stored in fp16 (emulated), products
        accumulated in fp32, and an fp32 master copy of the weights that the
        optimizer updates in fp32 (Micikevicius et al.). ``"fp16_pure"``: the
        same but without master weights: the unscaled gradient, the momentum
        buffer and the new weight are each rounded to fp16, so an update
        smaller than half an ulp of its weight is lost.
    loss_scale : "dynamic", float or None
        ``"dynamic"``: :class:`LossScaler` from 2^16 with ``growth_interval``;
        a positive number: static scaling; None: no scaling (fp16 modes) —
        ignored for ``"fp32"``.
    lr, schedule : float, {"cosine", "constant"}
        Peak learning rate (0.03, the zoo's choice for LeNet-300-100 on
        validation) and its schedule: cosine decay to 0 over all steps, or
        constant. Late in a cosine schedule updates get small, which is where
        pure fp16 loses them.
    train, val, test : Split, optional
        Default: the embedded MNIST splits.

    Returns
    -------
    MixedResult
        Final test accuracy (the model after the last epoch, evaluated in its
        own precision), validation accuracy and mean training loss per epoch,
        the loss scale per step and, for ``"fp16_pure"``, the fraction of
        non-zero updates lost to rounding per epoch.

    Behind chapter 12, "Mixed precision".
    """
    train = load_mnist("train", source="embedded") if train is None else train
    val = load_mnist("val", source="embedded") if val is None else val
    test = load_mnist("test", source="embedded") if test is None else test

    model = build_model(arch, seed=seed)
    params = list(model.parameters())
    fp16 = mode != "fp32"
    if not fp16 or loss_scale is None:
        scaler = LossScaler(1.0, dynamic=False)
    elif loss_scale == "dynamic":
        scaler = LossScaler(2.0 ** 16, growth_interval=growth_interval)
    else:
        scaler = LossScaler(float(loss_scale), dynamic=False)
    handles = emulate_fp16(model) if fp16 else []
    master = [p.detach().clone() for p in params]                   # fp32 master weights
    velocity = [torch.zeros_like(p) for p in params]
    with torch.no_grad():
        for p, w in zip(params, master):
            p.copy_(to_fp16(w) if fp16 else w)                      # the fp16 copy used by forward/backward
    result = MixedResult(mode, model, 0.0)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-len(train) // batch_size)
    step_no = 0
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=generator)
        total, count, lost, changed = 0.0, 0, 0, 0
        model.train()
        for start in range(0, len(train), batch_size):
            idx = order[start:start + batch_size]
            rate = lr if schedule == "constant" else \
                lr * 0.5 * (1 + math.cos(math.pi * step_no / (epochs * steps_per_epoch)))
            step_no += 1
            loss = nn.functional.cross_entropy(model(train.x[idx]), train.y[idx])  # softmax/loss in fp32
            model.zero_grad(set_to_none=True)
            (loss * scaler.scale).backward()
            grads = [to_fp16(p.grad) if fp16 else p.grad for p in params]   # weight gradients stored in fp16
            found_inf = any(not torch.isfinite(g).all() for g in grads)
            result.scales.append(scaler.scale)
            scaler.update(found_inf)
            if found_inf:
                continue                                             # skip the step, as GradScaler does
            with torch.no_grad():
                for i, (p, g) in enumerate(zip(params, grads)):
                    if mode == "fp16_pure":
                        g = to_fp16(g / result.scales[-1])           # unscale in fp16
                        velocity[i] = to_fp16(momentum * velocity[i] + g)
                        step = to_fp16(rate * velocity[i])
                        new = to_fp16(p - step)                       # w ← fp16(w − fp16(lr·v))
                        nz = step != 0
                        lost += int(((new == p) & nz).sum())          # a non-zero update that changed nothing
                        changed += int(nz.sum())
                        p.copy_(new)
                    else:
                        g = g / result.scales[-1]                    # unscale in fp32
                        velocity[i].mul_(momentum).add_(g)           # v ← m·v + g
                        master[i].sub_(rate * velocity[i])           # w ← w − lr·v, in fp32
                        p.copy_(to_fp16(master[i]) if fp16 else master[i])
            total += loss.item() * len(idx)
            count += len(idx)
        if not count or not torch.isfinite(torch.tensor(total)):
            raise FloatingPointError(f"train_mixed: {mode} training diverged or skipped every step; "
                                     f"lower lr (got {lr!r}).")
        result.train_loss.append(total / count)
        result.val_acc.append(evaluate(model, val, device="cpu"))
        if mode == "fp16_pure":
            result.lost_update_fraction.append(lost / changed if changed else 0.0)
    result.test_acc = evaluate(model, test, device="cpu")
    result.skipped = scaler.skipped
    for h in handles:
        h.remove()
    result.model = model.eval()
    return result


@validate_params(weights=Tensor(dtype=None, convert=False), updates=Tensor(dtype=None, convert=False))
def lost_updates(weights: torch.Tensor, updates: torch.Tensor) -> float:
    """Fraction of the non-zero ``updates`` that leave their fp16 weight unchanged: fp16(w + u) == w.

    Taught in chapter 12, "Mixed precision".
    """
    if weights.shape != updates.shape:
        raise ValueError(f"lost_updates: updates must have the weights' shape {tuple(weights.shape)}; "
                         f"got {tuple(updates.shape)}.")
    w = to_fp16(weights.float())
    nz = updates != 0
    if not nz.any():
        raise ValueError("lost_updates: updates must hold at least one non-zero value; got only zeros.")
    return float((to_fp16(w + updates.float())[nz] == w[nz]).double().mean())


# =================================================== Tensor Core arithmetic
MATRIX = Tensor(dtype=None, convert=False, ndim=2)


@validate_params(a=MATRIX, b=MATRIX, c=MATRIX, accumulate=ACCUMULATE)
def tensor_core_mma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, *, accumulate: str = "fp32") -> torch.Tensor:
    """One Volta Tensor Core operation ``D = A·B + C`` on 4×4 matrices, emulated.

    ``A`` and ``B`` are rounded to fp16; each product ``a_ik · b_kj`` is exact
    (fp16 × fp16 fits in fp32); the four products are added to ``c_ij`` one
    after the other in fp32 (``accumulate="fp32"``) or with a rounding to fp16
    after every addition (``"fp16"``, and ``C`` is rounded to fp16 first).
    Returns ``D`` (4, 4) as fp32 holding fp32- or fp16-representable values.

    Taught in chapter 12, "Mixed precision".
    """
    for name, t in (("a", a), ("b", b), ("c", c)):
        if t.shape != (4, 4):
            raise ValueError(f"tensor_core_mma: {name} must have shape (4, 4); got {tuple(t.shape)}.")
    return tensor_core_matmul(a, b, c, accumulate=accumulate)


@validate_params(a=MATRIX, b=MATRIX, c=Tensor(dtype=None, convert=False, ndim=2, optional=True),
                 accumulate=ACCUMULATE)
def tensor_core_matmul(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None, *,
                       accumulate: str = "fp32") -> torch.Tensor:
    """``A·B (+ C)`` as a chain of 4×4×4 Tensor Core operations along K, emulated (see :func:`tensor_core_mma`).

    Every output element adds its K products in order, each product exact,
    each addition rounded to the accumulator's format — the order a chain of
    4-deep MMAs walking along K produces. ``A`` (M, K), ``B`` (K, N), ``C`` (M, N).

    Behind chapter 12, "Mixed precision".
    """
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"tensor_core_matmul: a and b must be (M, K) and (K, N) matrices; "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}.")
    m, n = a.shape[0], b.shape[1]
    if c is None:
        c = torch.zeros(m, n)
    if c.shape != (m, n):
        raise ValueError(f"tensor_core_matmul: c must have shape {(m, n)}; got {tuple(c.shape)}.")
    a16, b16 = to_fp16(a.float()), to_fp16(b.float())
    acc = to_fp16(c.float()) if accumulate == "fp16" else c.float().clone()
    for k in range(a.shape[1]):
        product = a16[:, k, None] * b16[None, k, :]      # (M, N), exact in fp32
        acc = acc + product                               # one fp32 addition
        if accumulate == "fp16":
            acc = to_fp16(acc)                            # … stored back in fp16
    return acc


@validate_params(k=PositiveInt(), accumulate=ACCUMULATE, m=PositiveInt(), n=PositiveInt(), seed=Seed())
def accumulation_error(k: int, *, accumulate: str = "fp32", m: int = 16, n: int = 16, seed: int = 0) -> float:
    """Relative error ‖D − D_exact‖ / ‖D_exact‖ of an (m×k)(k×n) Tensor Core product on N(0, 1) inputs.

    ``D_exact`` is the fp64 product of the *same* fp16-rounded inputs, so the
    error measured is that of the accumulation alone.

    Taught in chapter 12, "Mixed precision".
    """
    g = torch.Generator().manual_seed(seed)
    a, b = to_fp16(torch.randn(m, k, generator=g)), to_fp16(torch.randn(k, n, generator=g))
    exact = a.double() @ b.double()
    d = tensor_core_matmul(a, b, accumulate=accumulate).double()
    return float((d - exact).norm() / exact.norm())


# ======================================================== real hardware paths
@validate_params(dtype=Options(tuple(DTYPES)), n=PositiveInt(), repeats=PositiveInt(),
                 device=Options(("cpu", "cuda")), threads=PositiveInt(optional=True))
def matmul_gflops(dtype: str = "fp32", *, n: int = 256, repeats: int = 3, device: str = "cpu",
                  threads: int | None = 1) -> float:
    """Measured GFLOP/s of an ``n × n × n`` matmul in ``dtype`` (best of ``repeats``; 2n³ flops each).

    On a CPU without bf16/fp16 instructions those formats are converted in
    software and run far slower than fp32; a CPU with AVX512-BF16/FP16 or
    AMX runs them at fp32 speed or faster — measure before you assume.
    ``threads`` sets torch's CPU threads for the measurement (restored
    after; None keeps the current setting): on a busy 2-core machine two
    threads can be many times slower than one.

    Taught in chapter 12, "Mixed precision".
    """
    if threads is not None:
        with scoped_threads(threads):
            return matmul_gflops(dtype, n=n, repeats=repeats, device=device, threads=None)
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("matmul_gflops: device='cuda' needs a CUDA device; none is available here.")
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=DTYPES[dtype])
    b = torch.randn(n, n, generator=g).to(device=device, dtype=DTYPES[dtype])
    best = float("inf")
    for _ in range(repeats + 1):                          # the first call warms up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


@validate_params()
def cpu_low_precision_flags() -> list[str]:
    """The CPU's bf16/fp16 matrix instructions named in ``/proc/cpuinfo`` (Linux; [] elsewhere or if none).

    ``avx512_bf16`` and ``amx_bf16`` make bf16 matmuls fast, ``avx512_fp16``
    and ``amx_fp16`` fp16 ones; without them the formats are emulated.

    Taught in chapter 12, "Mixed precision".
    """
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return []
    wanted = {"avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile"}
    return sorted(wanted & set(path.read_text().split()))


@validate_params(dtype=Options(("fp16", "bf16")), epochs=PositiveInt(), batch_size=PositiveInt(),
                 arch=Options(tuple(MODELS)), seed=Seed())
def autocast_compare(*, dtype: str = "fp16", epochs: int = 2, batch_size: int = 256, arch: str = "lenet5",
                     seed: int = 0) -> dict:
    """Train ``arch`` on CUDA in fp32 and with ``torch.autocast`` + ``torch.amp.GradScaler``: time and accuracy.

    Raises ``RuntimeError`` when there is no CUDA device (chapters check
    ``torch.cuda.is_available()`` first and skip).

    Taught in chapter 12, "Mixed precision".
    """
    if not torch.cuda.is_available():
        raise RuntimeError("autocast_compare needs a CUDA device; none is available here.")
    device = torch.device("cuda")
    train, test = load_mnist("train"), load_mnist("test")
    x, y = train.x.to(device), train.y.to(device)
    out = {}
    for name in ("fp32", dtype):
        model = build_model(arch, seed=seed).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        amp = name != "fp32"
        scaler = torch.amp.GradScaler("cuda", enabled=amp and dtype == "fp16")
        gen = torch.Generator().manual_seed(seed)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(epochs):
            order = torch.randperm(len(train), generator=gen).to(device)
            for i in range(0, len(train), batch_size):
                idx = order[i:i + batch_size]
                with torch.autocast("cuda", dtype=DTYPES[dtype], enabled=amp):
                    loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
        torch.cuda.synchronize()
        out[name] = {"seconds": time.perf_counter() - start, "test_acc": evaluate(model, test, device=device)}
    return out


# ================================================================ the report


