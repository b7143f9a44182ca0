"""Chapter 21, Decoding faster: the checks of its graded exercises.

In ``chapters/21_decoding.ipynb``:

- ``check_expected_speedup`` tests the reader's ``my_expected_speedup``;
- ``check_residual_distribution`` tests the reader's ``my_residual_distribution``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ._common import fail
from ..validation import Callable, Seed, validate_params


def _speedup(alpha: float, k: int, c: float) -> float:
    tokens = k + 1 if alpha == 1.0 else (1 - alpha ** (k + 1)) / (1 - alpha)    # expected tokens per round
    return tokens / (k * c + 1)                                                 # per round's cost in target passes


@validate_params(fn=Callable(), seed=Seed())
def check_expected_speedup(fn, seed: int = 0) -> str:
    """Chapter 21: ``fn(alpha, n_draft, cost_ratio) -> float``, the expected wall-clock speed-up of
    speculative decoding, ``(1 − α^{k+1}) / ((1 − α)(k·c + 1))`` with ``k = n_draft``, ``(k + 1)/(k·c + 1)``
    at ``α = 1``.

    Taught in chapter 21, "Decoding faster".
    """
    rng = np.random.default_rng(seed)
    cases = [(1.0, int(rng.integers(1, 9)), float(rng.uniform(0, 0.5))),
             (0.0, int(rng.integers(1, 9)), float(rng.uniform(0, 0.5)))]
    cases += [(float(rng.uniform(0.05, 0.95)), int(rng.integers(1, 13)), float(rng.choice([0.0, 0.01, 0.1, 0.5])))
              for _ in range(8)]
    for alpha, k, c in cases:
        try:
            got = float(fn(alpha, k, c))
        except ZeroDivisionError:
            fail(f"alpha={alpha} divides by zero: at α = 1 every draft token is accepted and a round emits "
                 "k + 1 tokens (the limit of the geometric sum).")
        want = _speedup(alpha, k, c)
        if not math.isclose(got, want, rel_tol=1e-6):
            if math.isclose(got, _speedup(alpha, k, c) * (k * c + 1), rel_tol=1e-6):
                fail(f"for alpha={alpha}, n_draft={k}, cost_ratio={c} you return the tokens per round: divide by "
                     "the round's cost, k draft passes at c each plus one target pass.")
            if 0 < alpha < 1 and math.isclose(got, (1 - alpha ** k) / (1 - alpha) / (k * c + 1), rel_tol=1e-6):
                fail("a round emits up to k + 1 tokens (the accepted drafts and one from the target): the "
                     "geometric sum runs to α^k, so the numerator is 1 − α^(k+1).")
            fail(f"for alpha={alpha}, n_draft={k}, cost_ratio={c} your speed-up {got:.6g} is not the expected "
                 "tokens per round divided by the round's cost in target passes.")
    return "expected speed-up: correct on 10 (alpha, n_draft, cost_ratio), α = 0 and α = 1 included"


@validate_params(fn=Callable(), seed=Seed())
def check_residual_distribution(fn, seed: int = 0) -> str:
    """Chapter 21: ``fn(p, q) -> r``, where a rejected draft token's replacement is drawn from:
    ``r = max(0, p − q) / Σ max(0, p − q)`` over the last dimension, for probability tensors ``p`` (target)
    and ``q`` (draft) of shape (vocab,) or (rows, vocab) with ``p ≠ q`` in every row.

    Taught in chapter 21, "Decoding faster".
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    for i in range(8):
        vocab = int(rng.integers(3, 40))
        shape = (vocab,) if i % 2 == 0 else (int(rng.integers(2, 6)), vocab)
        p = torch.softmax(torch.randn(shape, generator=gen) * 2, -1)
        q = torch.softmax(torch.randn(shape, generator=gen) * 2, -1)
        r = (p - q).clamp_min(0)
        want = r / r.sum(-1, keepdim=True)
        got = fn(p.clone(), q.clone())
        if not isinstance(got, torch.Tensor) or got.shape != p.shape:
            fail(f"return a tensor of p's shape {tuple(p.shape)}; got {getattr(got, 'shape', type(got).__name__)}.")
        if torch.allclose(got, want, atol=1e-6):
            continue
        if torch.allclose(got, r, atol=1e-6):
            fail("max(0, p − q) is not yet a distribution: normalise it so that it sums to 1.")
        s = (q - p).clamp_min(0)
        if torch.allclose(got, s / s.sum(-1, keepdim=True), atol=1e-6):
            fail("the replacement goes where the target p has more mass than the draft q: max(0, p − q), not q − p.")
        if (got < -1e-7).any():
            fail("a distribution has no negative entries: clip p − q at 0 before normalising.")
        fail("your distribution differs from norm(max(0, p − q)); normalise along the last dimension (vocab), "
             "one distribution per row.")
    return "residual distribution: correct on 8 random (p, q)"
