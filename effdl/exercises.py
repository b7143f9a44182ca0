"""Checks for the chapters' exercises.

Each ``check_*`` takes the reader's function, calls it on fresh random
inputs and tests *properties* the right answer must have (exact counts,
invariances, agreement with ``effdl`` on inputs the reader never saw). A
failed property raises ``AssertionError`` with a hint, never the answer;
success returns a short confirmation string.
"""
from __future__ import annotations

import torch

from . import pruning


def _fail(message: str):
    raise AssertionError(message)


def check_magnitude_mask(fn) -> str:
    """Chapter 2: ``fn(weight, sparsity) -> bool mask`` pruning the smallest magnitudes."""
    gen = torch.Generator().manual_seed(2024)
    for shape, sparsity in [((40, 30), 0.5), ((7,), 0.3), ((20, 5, 3, 3), 0.92), ((50,), 0.0), ((50,), 1.0)]:
        w = torch.randn(shape, generator=gen)
        mask = fn(w.clone(), sparsity)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != w.shape:
            _fail(f"return a bool tensor of the weight's shape {tuple(w.shape)} (True = kept).")
        n_pruned = int((~mask).sum())
        if n_pruned != round(sparsity * w.numel()):
            _fail(f"with sparsity={sparsity} and {w.numel()} weights, prune exactly "
                  f"round(sparsity · numel) of them; you pruned {n_pruned}.")
        if mask.any() and (~mask).any() and w[mask].abs().min() < w[~mask].abs().max():
            _fail("a kept weight is smaller in magnitude than a pruned one: rank by |w|, not w.")
        again = fn(w * mask, sparsity)
        if not torch.equal(again, mask):
            _fail("pruning an already pruned tensor to the same sparsity must give the same mask.")
    ties = torch.tensor([0.5, -0.5, 0.5, 0.5, 0.1, -0.5])
    if int((~fn(ties, 0.5)).sum()) != 3:
        _fail("with ties at the threshold the count must still be exact.")
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
        _fail("pruned weights must stay zero through training (apply the mask with effdl.pruning.apply_masks).")
    return "magnitude mask: all checks passed"


def check_threshold_mask(fn) -> str:
    """Chapter 2: ``fn(weight, quality) -> bool mask`` keeping |w| > quality × std(w)."""
    gen = torch.Generator().manual_seed(7)
    for quality in (0.25, 0.7, 1.5):
        w = torch.randn(3000, generator=gen) * 0.05
        mask = fn(w.clone(), quality)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != w.shape:
            _fail("return a bool tensor of the weight's shape (True = kept).")
        if not torch.equal(fn(w * 10, quality), mask):
            _fail("the rule is relative to the layer's spread: scaling every weight by 10 must not change the mask.")
        if not torch.equal(mask, pruning.threshold_mask(w, quality)):
            _fail(f"for quality={quality} your mask differs from the rule on fresh random weights: "
                  "compare |w| with quality times the standard deviation of the layer's weights.")
    if fn(w, 0.5).sum() < fn(w, 1.0).sum():
        _fail("a larger quality parameter must prune more, not less.")
    return "threshold mask: all checks passed"


def check_centroid_gradient(fn) -> str:
    """Chapter 3: ``fn(grad, index, n_clusters) -> (n_clusters,)`` gradients summed per cluster."""
    import numpy as np

    from . import sharing

    rng = np.random.default_rng(33)
    for shape, k in [((4, 4), 4), ((30, 20), 16), ((500,), 3)]:
        grad = rng.normal(size=shape)
        index = rng.integers(0, k, size=shape)
        out = np.asarray(fn(grad, index, k), dtype=float)
        if out.shape != (k,):
            _fail(f"return one value per cluster: shape ({k},); got {out.shape}.")
        if not np.isclose(out.sum(), grad.sum()):
            _fail("every weight's gradient belongs to exactly one cluster: the sums must add up to the total.")
        if not np.allclose(out, sharing.centroid_gradient(grad, index, k)):
            _fail("on fresh random inputs your sums differ from effdl.sharing: group by index, then add.")
    empty = np.asarray(fn(np.ones(3), np.array([0, 0, 2]), 4), dtype=float)
    if empty.shape != (4,) or empty[1] != 0 or empty[3] != 0:
        _fail("a cluster with no weights must get a zero gradient (and still appear in the output).")
    return "centroid gradient: all checks passed"
