"""Rounding-error bounds shared by the tests: float32 results compared within a derived bound, not a guess.

Higham's first-order bound for a sum of n terms in any order is n·u·Σ|terms| (u = eps/2). A Linear or
Conv2d output sums fan-in products and a bias (and max-pooling compares, never adds); ReLU and max-pool
never enlarge an error, and later layers carry it at most as |W| carries |h|. So a feed-forward net's output
errs elementwise by at most u·Σ_layers(fan-in + 2)·|net|(|x|), |net| being the same net with |W|, |b| run on
|x|. Using eps rather than u covers the second-order terms.
"""
import copy

import torch
from torch import nn


@torch.no_grad()
def rounding_bound(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Elementwise bound on the rounding error of ``model(x)`` computed in ``x.dtype`` (see the module)."""
    n = sum(m.weight[0].numel() + 2 for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    net = copy.deepcopy(model).double()
    for p in net.parameters():
        p.abs_()
    return torch.finfo(x.dtype).eps * n * net(x.detach().double().abs())


def assert_within(got, want, bound) -> None:
    """|got − want| ≤ bound elementwise (compared in float64), naming the largest excess when not."""
    diff = (torch.as_tensor(got).detach().double() - torch.as_tensor(want).detach().double()).abs()
    assert (diff <= bound).all(), f"max excess {float((diff - bound).max()):.3g}"
