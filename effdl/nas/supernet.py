"""The once-for-all supernet: one set of weights from which every :class:`~effdl.nas.space.Arch` is cut.

Taught in chapter 17. After Cai, Gan, Wang, Zhang & Han, "Once-for-All: Train
One Network and Specialize it for Efficient Deployment", ICLR 2020:

- **elastic kernel**: each depthwise conv stores a 7×7 kernel; the 5×5 kernel
  is its centre times a learned 25×25 matrix, the 3×3 kernel the centre of
  the 5×5 one times a 9×9 matrix (OFA's kernel transformation matrices, shared
  by the channels of a layer, initialised to the identity);
- **elastic depth**: a stage of depth d runs its first d blocks;
- **elastic expansion**: a block of expansion e keeps the first e·c_in hidden
  channels, after :meth:`Supernet.sort_channels` has ordered them by
  importance (the L1 norm of each channel's weights in the projection conv);
- **elastic resolution**: the image is resized to r × r.

:func:`train_supernet` trains it by *progressive shrinking*: the largest
network first, then kernels, then depths, then expansions become elastic,
each step training one sampled sub-network (the resolution sampled too),
optionally distilled from the largest network, or, with ``sandwich``, the
largest, the smallest and a few sampled sub-networks together (Yu & Huang's
sandwich rule with in-place distillation, "Universally Slimmable Networks and
Improved Training Techniques", ICCV 2019). :meth:`Supernet.subnet` copies
a sub-network's weights into a standalone :class:`SubNet`, whose batch-norm
statistics :func:`recalibrate_bn` re-estimates on a few hundred training
images (the supernet's running statistics mix all sub-networks).
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from effdl.data import Split
from effdl.nas.space import (ARCH, DEPTHS, EXPANSIONS, HEAD_WIDTH, KERNELS, N_CLASSES, N_STAGES, RESOLUTIONS,
                             STEM_WIDTH, STRIDES, WIDTHS, Arch, largest, _sample)
from effdl.validation import (Bool, Instance, Interval, ListOf, Module, Options, PositiveInt, Seed, Tensor,
                              validate_params)

PHASES = ("full", "kernel", "depth", "expand")
MAX_K, MAX_E = max(KERNELS), max(EXPANSIONS)


def _resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Images (N, 1, H, W) resized to ``resolution`` (bilinear, antialiased); unchanged when they fit."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)


# --------------------------------------------------------------------------- standalone networks
class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1×1 expand, k×k depthwise (stride), 1×1 project; residual when shapes agree.

    Taught in chapter 17, "Designing efficient models".
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, expansion: int, stride: int):
        super().__init__()
        hidden = c_in * expansion
        self.expand = nn.Sequential(nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU())
        dw = nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False)
        self.depthwise = nn.Sequential(dw, nn.BatchNorm2d(hidden), nn.ReLU())
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))  # (N, c_out, H', W')
        return x + y if self.residual else y


def _stem() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, STEM_WIDTH, 3, 2, 1, bias=False), nn.BatchNorm2d(STEM_WIDTH), nn.ReLU())


def _head() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(WIDTHS[-1], HEAD_WIDTH, 1, bias=False), nn.BatchNorm2d(HEAD_WIDTH), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(HEAD_WIDTH, N_CLASSES))


class SubNet(nn.Module):
    """A standalone network of the space: resize to ``arch.resolution``, stem, blocks, head.

    Behind chapter 17, "Designing efficient models".
    """

    def __init__(self, arch: Arch):
        super().__init__()
        self.arch = arch
        self.resolution = arch.resolution
        self.stem = _stem()
        blocks, c_in = [], STEM_WIDTH
        for s, i, k, e in arch.blocks():
            blocks.append(InvertedResidual(c_in, WIDTHS[s], k, e, STRIDES[s] if i == 0 else 1))
            c_in = WIDTHS[s]
        self.blocks = nn.Sequential(*blocks)
        self.head = _head()

    def forward(self, x):
        return self.head(self.blocks(self.stem(_resize(x, self.resolution))))  # (N, 10)


@validate_params(arch=ARCH, seed=Seed())
def build_subnet(arch: Arch, *, seed: int = 0) -> SubNet:
    """A freshly initialised :class:`SubNet` (torch's default initialisation, seeded), e.g. to train alone.

    Behind chapter 17, "Designing efficient models".
    """
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return SubNet(arch)
    finally:
        torch.random.set_rng_state(gen_state)


# --------------------------------------------------------------------------- the supernet
def _bn(x, bn: nn.BatchNorm2d, n: int, training: bool):
    """Batch norm over the first ``n`` channels of ``bn`` (its slices are views: stats update in place)."""
    return F.batch_norm(x, bn.running_mean[:n], bn.running_var[:n], bn.weight[:n], bn.bias[:n],
                        training, bn.momentum, bn.eps)


class ElasticBlock(nn.Module):
    """An inverted residual at its largest (kernel 7, expansion 4) that runs any smaller kernel/expansion.

    Behind chapter 17, "Designing efficient models".
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        hidden = c_in * MAX_E
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.expand = nn.Conv2d(c_in, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.depthwise = nn.Conv2d(hidden, hidden, MAX_K, stride, MAX_K // 2, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.project = nn.Conv2d(hidden, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        # kernel transformation matrices: 5×5 from the 7×7's centre, 3×3 from the 5×5's centre
        self.transforms = nn.ParameterDict({str(k): nn.Parameter(torch.eye(k * k))
                                            for k in sorted(KERNELS, reverse=True)[1:]})
        self.residual = stride == 1 and c_in == c_out

    def kernel(self, k: int) -> torch.Tensor:
        """The depthwise kernel of size k: (hidden_max, 1, k, k)."""
        w, size = self.depthwise.weight, MAX_K
        for smaller in sorted(KERNELS, reverse=True)[1:]:
            if smaller < k:
                break
            lo = (size - smaller) // 2
            centre = w[:, :, lo:lo + smaller, lo:lo + smaller]                      # (C, 1, s, s)
            w = (centre.reshape(-1, smaller * smaller) @ self.transforms[str(smaller)]).reshape(centre.shape)
            size = smaller
        return w

    def forward(self, x, k: int, e: int):
        n = self.c_in * e
        y = F.relu(_bn(F.conv2d(x, self.expand.weight[:n]), self.bn1, n, self.training))
        y = F.conv2d(y, self.kernel(k)[:n], stride=self.stride, padding=k // 2, groups=n)
        y = F.relu(_bn(y, self.bn2, n, self.training))
        y = _bn(F.conv2d(y, self.project.weight[:, :n]), self.bn3, self.c_out, self.training)
        return x + y if self.residual else y

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Reorder hidden channels by importance, L1 norm of their projection weights, largest first."""
        order = self.project.weight.abs().sum(dim=(0, 2, 3)).argsort(descending=True)
        self.expand.weight.copy_(self.expand.weight[order])
        self.depthwise.weight.copy_(self.depthwise.weight[order])
        self.project.weight.copy_(self.project.weight[:, order])
        for bn in (self.bn1, self.bn2):
            for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                t.copy_(t[order])

    @torch.no_grad()
    def copy_into(self, block: InvertedResidual, k: int, e: int) -> None:
        n = self.c_in * e
        block.expand[0].weight.copy_(self.expand.weight[:n])
        block.depthwise[0].weight.copy_(self.kernel(k)[:n])
        block.project[0].weight.copy_(self.project.weight[:, :n])
        for src, dst, m in ((self.bn1, block.expand[1], n), (self.bn2, block.depthwise[1], n),
                            (self.bn3, block.project[1], self.c_out)):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(dst, name).copy_(getattr(src, name)[:m])


class Supernet(nn.Module):
    """The weight-shared network of the whole space: ``forward(x, arch)`` runs sub-network ``arch``.

    Taught in chapter 17, "Designing efficient models".
    """

    def __init__(self):
        super().__init__()
        self.stem = _stem()
        stages, c_in = [], STEM_WIDTH
        for s in range(N_STAGES):
            blocks = []
            for i in range(max(DEPTHS)):
                blocks.append(ElasticBlock(c_in, WIDTHS[s], STRIDES[s] if i == 0 else 1))
                c_in = WIDTHS[s]
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.head = _head()

    def forward(self, x, arch: Arch):
        y = self.stem(_resize(x, arch.resolution))
        for s, i, k, e in arch.blocks():
            y = self.stages[s][i](y, k, e)
        return self.head(y)

    def sort_channels(self) -> None:
        """Sort every block's hidden channels by importance (before the expansion phase)."""
        for stage in self.stages:
            for block in stage:
                block.sort_channels()

    def subnet(self, arch: Arch) -> SubNet:
        """A standalone :class:`SubNet` of ``arch`` holding copies of the shared weights (eval mode)."""
        ARCH.check("arch", arch)
        net = SubNet(arch)
        with torch.no_grad():
            net.stem.load_state_dict(self.stem.state_dict())
            net.head.load_state_dict(self.head.state_dict())
        for block, (s, i, k, e) in zip(net.blocks, arch.blocks()):
            self.stages[s][i].copy_into(block, k, e)
        return net.eval()


# --------------------------------------------------------------------------- batch norm and training
@validate_params(model=Module(), images=Tensor(), batch_size=PositiveInt())
@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, *, batch_size: int = 100) -> nn.Module:
    """Re-estimate every batch norm's running mean and variance on ``images`` (N, 1, H, W); eval mode after.

    The statistics are reset and then averaged over the batches (momentum None:
    a cumulative average), as Once-for-All does for each sub-network.

    Taught in chapter 17, "Designing efficient models".
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for start in range(0, len(images), batch_size):
        model(images[start:start + batch_size])
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    return model.eval()


def _phase_choices(phase: str) -> dict:
    big_d, big_k, big_e = (max(DEPTHS),), (MAX_K,), (MAX_E,)
    return {"full": dict(depths=big_d, kernels=big_k, expansions=big_e),
            "kernel": dict(depths=big_d, kernels=KERNELS, expansions=big_e),
            "depth": dict(depths=DEPTHS, kernels=KERNELS, expansions=big_e),
            "expand": dict(depths=DEPTHS, kernels=KERNELS, expansions=EXPANSIONS)}[phase]


def _soft_ce(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` against soft targets ``soft`` (N, 10), mean over the batch."""
    return -(soft * F.log_softmax(logits, dim=1)).sum(1).mean()


def _phase_smallest(phase: str) -> Arch:
    """The smallest sub-network a phase trains: lowest resolution, fewest blocks, smallest kernel and expansion."""
    ch = _phase_choices(phase)
    d, k, e = min(ch["depths"]), min(ch["kernels"]), min(ch["expansions"])
    return Arch(min(RESOLUTIONS), (d,) * N_STAGES, ((k,) * d,) * N_STAGES, ((e,) * d,) * N_STAGES)


def _sandwich_loss(supernet, phase: str, images: dict, idx, y, rng, n_random: int, distill: bool):
    """The summed loss of one sandwich step (largest, phase's smallest, ``n_random`` sampled) and its net count."""
    big = largest()
    big_logits = supernet(images[big.resolution][idx], big)
    loss = F.cross_entropy(big_logits, y)
    soft = F.softmax(big_logits.detach(), dim=1)
    others = [_phase_smallest(phase)] + [_sample(rng, **_phase_choices(phase)) for _ in range(n_random)]
    for arch in others:
        logits = supernet(images[arch.resolution][idx], arch)
        loss = loss + F.cross_entropy(logits, y) + (_soft_ce(logits, soft) if distill else 0.0)
    return loss, 1 + len(others)


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float) -> None:
    """One optimiser step at learning rate ``lr`` (the supernet's and a standalone sub-network's loop)."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _cosine(lr: float, step: int, total: int) -> float:
    return 0.5 * lr * (1 + math.cos(math.pi * step / max(total, 1)))


@validate_params(supernet=Instance(Supernet, "a Supernet"), train=Instance(Split, "an effdl.data.Split"),
                 epochs=Interval(int, 1, None), full_epochs=PositiveInt(optional=True),
                 lr=Interval(float, 0, None, closed="neither"), shrink_lr=Interval(float, 0, None, closed="neither"),
                 batch_size=PositiveInt(), distill=Bool(), sandwich=Interval(int, 0, None),
                 phases=ListOf(Options(PHASES)), seed=Seed())
def train_supernet(supernet: Supernet, train: Split, *, epochs: int = 3, full_epochs: int | None = None,
                   lr: float = 3e-3, shrink_lr: float = 1e-3, batch_size: int = 64, distill: bool = True,
                   sandwich: int = 0, phases=PHASES, seed: int = 0) -> dict:
    """Progressive shrinking: the phases of :data:`PHASES` in turn, Adam with cosine decay in each.

    Phase ``"full"`` trains the largest network for ``full_epochs`` epochs
    (default ``epochs``) at learning rate ``lr``; then
    kernels, depths and expansions become elastic in turn, ``epochs`` epochs each (``shrink_lr``);
    every step samples one sub-network among the phase's choices and a
    resolution. With ``distill`` the later phases add the soft cross-entropy to
    the largest network's outputs (a frozen copy after phase ``"full"``).

    ``sandwich`` > 0 uses the *sandwich rule* of Yu & Huang's universally
    slimmable networks and BigNAS instead: every step of a shrinking phase
    trains the largest network, the phase's smallest one and ``sandwich``
    sampled ones together (their losses summed into one update), and with
    ``distill`` the others learn from the largest network's outputs of the
    same step (*in-place distillation*, no frozen copy).
    Before phase ``"expand"`` the hidden channels are sorted by importance.
    ``phases`` runs a subset of :data:`PHASES`, in their order (e.g.
    ``("full", "expand")``: the largest network, then everything elastic at once).
    Returns ``{"loss": {phase: [mean loss per epoch]}}``.

    Behind chapter 17, "Designing efficient models".
    """
    if list(phases) != [p for p in PHASES if p in phases]:
        raise ValueError(f"train_supernet: phases must be distinct and in the order {list(PHASES)}; got {phases!r}.")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    images = {r: _resize(train.x, r) for r in RESOLUTIONS}          # resized once, not per step
    teacher, big, history = None, largest(), {}
    for phase in phases:
        if phase == "expand":
            supernet.sort_channels()
        if phase != "full" and distill and teacher is None and not sandwich:
            teacher = copy.deepcopy(supernet).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        base_lr = lr if phase == "full" else shrink_lr
        n_epochs = (full_epochs or epochs) if phase == "full" else epochs
        opt = torch.optim.Adam(supernet.parameters(), lr=base_lr)
        steps = n_epochs * math.ceil(len(train) / batch_size)
        step, history[phase] = 0, []
        for _ in range(n_epochs):
            supernet.train()
            order = torch.randperm(len(train), generator=gen)
            total = 0.0
            for start in range(0, len(train), batch_size):
                idx = order[start:start + batch_size]
                y = train.y[idx]
                if sandwich and phase != "full":
                    loss, n_nets = _sandwich_loss(supernet, phase, images, idx, y, rng, sandwich, distill)
                else:
                    arch = _sample(rng, **_phase_choices(phase))
                    logits = supernet(images[arch.resolution][idx], arch)
                    loss, n_nets = F.cross_entropy(logits, y), 1
                    if teacher is not None:
                        with torch.no_grad():
                            soft = F.softmax(teacher(images[big.resolution][idx], big), dim=1)
                        loss = loss + _soft_ce(logits, soft)
                _step(opt, loss, _cosine(base_lr, step, steps))
                step += 1
                total += loss.item() / n_nets * len(idx)
            history[phase].append(total / len(train))
    supernet.eval()
    return {"loss": history}


@validate_params(model=Instance(SubNet, "a SubNet"), train=Instance(Split, "an effdl.data.Split"),
                 epochs=Interval(int, 1, None), lr=Interval(float, 0, None, closed="neither"),
                 batch_size=PositiveInt(), seed=Seed())
def train_subnet(model: SubNet, train: Split, *, epochs: int = 12, lr: float = 3e-3, batch_size: int = 64,
                 seed: int = 0) -> list[float]:
    """Train a standalone sub-network in place (Adam, cosine decay over all epochs); mean loss per epoch.

    Used to train an architecture alone, from scratch, and to fine-tune a
    sub-network cut from the supernet.

    Behind chapter 17, "Designing efficient models".
    """
    gen = torch.Generator().manual_seed(seed)
    x_all = _resize(train.x, model.resolution)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps, step, losses = epochs * math.ceil(len(train) / batch_size), 0, []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=gen)
        total = 0.0
        for start in range(0, len(train), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(model(x_all[idx]), train.y[idx])
            _step(opt, loss, _cosine(lr, step, steps))
            step += 1
            total += loss.item() * len(idx)
        losses.append(total / len(train))
    model.eval()
    return losses


__all__ = ["PHASES", "InvertedResidual", "SubNet", "ElasticBlock", "Supernet", "build_subnet", "recalibrate_bn",
           "train_supernet", "train_subnet"]
