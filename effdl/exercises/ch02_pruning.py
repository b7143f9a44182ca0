"""Chapter 2, Pruning: the checks of its graded exercises.

In ``chapters/02_pruning.ipynb``:

- ``check_magnitude_mask`` tests the reader's ``my_magnitude_mask``;
- ``check_threshold_mask`` tests the reader's ``my_threshold_mask``.
"""
from __future__ import annotations

import torch

from .. import pruning
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_magnitude_mask(fn, seed: int = 2024) -> str:
    """Chapter 2: ``fn(weight, sparsity) -> bool mask`` pruning the smallest magnitudes.

    Taught in chapter 02, "Pruning".
    """
    gen = torch.Generator().manual_seed(seed)
    for shape, sparsity in [((40, 30), 0.5), ((7,), 0.3), ((20, 5, 3, 3), 0.92), ((50,), 0.0), ((50,), 1.0)]:
        w = torch.randn(shape, generator=gen)
        mask = fn(w.clone(), sparsity)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != w.shape:
            fail(f"return a bool tensor of the weight's shape {tuple(w.shape)} (True = kept).")
        n_pruned = int((~mask).sum())
        if n_pruned != round(sparsity * w.numel()):
            fail(f"with sparsity={sparsity} and {w.numel()} weights, prune exactly "
                  f"round(sparsity · numel) of them; you pruned {n_pruned}.")
        if mask.any() and (~mask).any() and w[mask].abs().min() < w[~mask].abs().max():
            fail("a kept weight is smaller in magnitude than a pruned one: rank by |w|, not w.")
        again = fn(w * mask, sparsity)
        if not torch.equal(again, mask):
            fail("pruning an already pruned tensor to the same sparsity must give the same mask.")
    ties = torch.tensor([0.5, -0.5, 0.5, 0.5, 0.1, -0.5])
    if int((~fn(ties, 0.5)).sum()) != 3:
        fail("with ties at the threshold the count must still be exact.")
    model = torch.nn.Linear(30, 10)
    masks = {"weight": fn(model.weight.detach().clone(), 0.7)}
    pruning.apply_masks(model, masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(2):
        loss = model(torch.randn(8, 30, generator=gen)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if torch.any(model.weight[~masks["weight"]] != 0):
        fail("pruned weights must stay zero through training (apply the mask with effdl.pruning.apply_masks).")
    return "magnitude mask: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_threshold_mask(fn, seed: int = 7) -> str:
    """Chapter 2: ``fn(weight, quality) -> bool mask`` keeping |w| > quality × std(w).

    Taught in chapter 02, "Pruning".
    """
    gen = torch.Generator().manual_seed(seed)
    for quality in (0.25, 0.7, 1.5):
        w = torch.randn(3000, generator=gen) * 0.05
        mask = fn(w.clone(), quality)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != w.shape:
            fail("return a bool tensor of the weight's shape (True = kept).")
        if not torch.equal(fn(w * 10, quality), mask):
            fail("the rule is relative to the layer's spread: scaling every weight by 10 must not change the mask.")
        if not torch.equal(mask, pruning.threshold_mask(w, quality)):
            fail(f"for quality={quality} your mask differs from the rule on fresh random weights: "
                  "compare |w| with quality times the standard deviation of the layer's weights.")
    if fn(w, 0.5).sum() < fn(w, 1.0).sum():
        fail("a larger quality parameter must prune more, not less.")
    return "threshold mask: all checks passed"
