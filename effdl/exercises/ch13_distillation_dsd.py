"""Chapter 13, Distillation and DSD: the checks of its graded exercises.

In ``chapters/13_distillation_dsd.ipynb``:

- ``check_distillation_loss`` tests the reader's ``my_distillation_loss``;
- ``check_dsd_masks`` tests the reader's ``my_dsd_masks``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import pruning
from ..training.distillation import distillation_loss
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_distillation_loss(fn, seed: int = 1313) -> str:
    """Chapter 13: ``fn(student_logits, teacher_logits, labels, temperature, alpha) -> scalar tensor``,
    Hinton et al.'s ``α · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α) · CE(s, y)`` (batch mean).

    Taught in chapter 13, "Distillation and DSD".
    """
    gen = torch.Generator().manual_seed(seed)
    for trial in range(12):
        batch, k = int(torch.randint(1, 40, (1,), generator=gen)), int(torch.randint(2, 12, (1,), generator=gen))
        temperature = [1.0, 2.0, 4.0, 8.0, 0.5, 20.0][trial % 6] * float(1 + torch.rand(1, generator=gen))
        alpha = [0.0, 1.0, 0.5, 0.9][trial % 4] if trial < 8 else float(torch.rand(1, generator=gen))
        s = (torch.randn(batch, k, generator=gen) * 3).requires_grad_(True)
        t = torch.randn(batch, k, generator=gen) * 5
        y = torch.randint(0, k, (batch,), generator=gen)
        want = distillation_loss(s, t, y, temperature=temperature, alpha=alpha)
        got = fn(s, t.clone(), y.clone(), temperature, alpha)
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            fail("return the loss as a scalar tensor (so that .backward() works).")
        if not torch.allclose(got.detach().reshape(()), want.detach(), rtol=1e-4, atol=1e-6):
            log_p_s, p_t = F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1)
            kl_sum = (p_t * (p_t.log() - log_p_s)).sum()
            hard = F.cross_entropy(s, y)
            if alpha == 0:
                fail("with alpha = 0 the loss is the plain cross-entropy of the student's logits (at T = 1).")
            if torch.allclose(got.detach(), alpha * kl_sum / batch + (1 - alpha) * hard, rtol=1e-4):
                fail("multiply the soft term by T²: its gradient shrinks as 1/T² (Hinton et al., section 2).")
            if torch.allclose(got.detach(), alpha * temperature ** 2 * kl_sum + (1 - alpha) * hard, rtol=1e-4):
                fail("average the KL divergence over the batch (batchmean), like the cross-entropy.")
            fail(f"T = {temperature:.3g}, alpha = {alpha:.2f}: expected {float(want):.5f}, got {float(got):.5f}. "
                  "Soften both logits by T, take KL(teacher ‖ student), weight it α · T², add (1 − α) · CE.")
        if not got.requires_grad:
            fail("the loss must stay differentiable: no .detach(), .item() or numpy on the student's logits.")
        if alpha > 0:
            g_want, = torch.autograd.grad(want, s)
            g_got, = torch.autograd.grad(got.reshape(()), s)
            if not torch.allclose(g_got, g_want, rtol=1e-3, atol=1e-6):
                fail("the value is right but the gradient is not: compute the loss with differentiable torch "
                      "operations on the student's logits.")
    return "distillation loss: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_dsd_masks(fn, seed: int = 17) -> str:
    """Chapter 13: ``fn(model, sparsity, skip_first) -> {name: bool mask}``, DSD's sparse-phase masks:
    per layer, the ``round(sparsity · numel)`` smallest-|w| weights of every prunable weight
    (``effdl.pruning.prunable_parameters``), the first one left out when ``skip_first``.

    Taught in chapter 13, "Distillation and DSD".
    """
    gen = torch.Generator().manual_seed(seed)
    for trial in range(8):
        layers, width = [], int(torch.randint(2, 5, (1,), generator=gen))
        if trial % 2:                                            # a small CNN
            layers += [nn.Conv2d(1, width, 3), nn.ReLU(), nn.Flatten()]
            n_in = width * 4 * 4
        else:
            layers += [nn.Flatten()]
            n_in = 36
        for _ in range(int(torch.randint(1, 3, (1,), generator=gen))):
            n_out = int(torch.randint(5, 40, (1,), generator=gen))
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
            n_in = n_out
        model = nn.Sequential(*layers, nn.Linear(n_in, 3))
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        sparsity = [0.3, 0.5, float(torch.rand(1, generator=gen)) * 0.95][trial % 3]
        skip_first = bool(trial % 4 >= 2)
        masks = fn(model, sparsity, skip_first)
        weights = pruning.prunable_parameters(model)
        names = list(weights)
        want = names[1:] if skip_first else names
        if not isinstance(masks, dict) or sorted(masks) != sorted(want):
            fail(f"return a dict keyed by the names of prunable_parameters(model); with skip_first={skip_first} "
                  f"expected keys {want}, got {sorted(masks) if isinstance(masks, dict) else type(masks).__name__}.")
        if any(not torch.equal(before[k], v) for k, v in model.state_dict().items()):
            fail("compute the masks only: do not change the model's weights (applying them is apply_masks' job).")
        for name in want:
            m, w = masks[name], weights[name].detach()
            if not isinstance(m, torch.Tensor) or m.dtype != torch.bool or m.shape != w.shape:
                fail(f"masks[{name!r}] must be a bool tensor of shape {tuple(w.shape)} (True = kept).")
            n_pruned = int((~m).sum())
            if n_pruned != round(sparsity * w.numel()):
                fail(f"{name}: prune round(sparsity · numel) = {round(sparsity * w.numel())} weights of this "
                      f"layer (per layer, not globally); you pruned {n_pruned}.")
            if m.any() and (~m).any() and w[m].abs().min() < w[~m].abs().max():
                fail(f"{name}: a kept weight is smaller in magnitude than a pruned one: rank by |w| within "
                      "the layer.")
    return "DSD masks: all checks passed"
