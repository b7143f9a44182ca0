"""Chapter 7, Low-rank approximation: the checks of its graded exercises.

In ``chapters/07_lowrank.ipynb``:

- ``check_truncated_svd`` tests the reader's ``my_truncated_svd``;
- ``check_tt_params`` tests the reader's ``my_tt_params``.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import lowrank
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_truncated_svd(fn, seed: int = 7) -> str:
    """Chapter 7: ``fn(weight, rank) -> (first, second)`` of shapes (rank, in) and (out, rank)
    whose product ``second @ first`` is the best rank-``rank`` approximation of ``weight``.

    Behind chapter 02, "Pruning".
    """
    gen = torch.Generator().manual_seed(seed)
    for in_f, out_f, rank in [(40, 30, 5), (64, 100, 17), (10, 10, 10), (25, 8, 1)]:
        layer = torch.nn.Linear(in_f, out_f)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(out_f, in_f, generator=gen))
        w = layer.weight.detach().clone()
        got = fn(w.clone(), rank)
        if not isinstance(got, tuple) or len(got) != 2:
            fail("return two factors (first, second).")
        a, b = (torch.as_tensor(t, dtype=torch.float64) for t in got)
        if a.shape != (rank, in_f) or b.shape != (out_f, rank):
            fail(f"for a ({out_f}, {in_f}) weight at rank {rank} the shapes are (rank, in) = ({rank}, {in_f}) "
                  f"and (out, rank) = ({out_f}, {rank}); got {tuple(a.shape)} and {tuple(b.shape)}.")
        s = torch.linalg.svdvals(w.double())
        best = float(s[rank:].pow(2).sum().sqrt())                      # Eckart–Young
        err = float(torch.linalg.matrix_norm(w.double() - b @ a))
        if err > best * (1 + 1e-4) + 1e-4:
            fail(f"rank {rank}: ‖W − second·first‖ is {err:.4f}, but the best rank-{rank} error is the "
                  "root of the sum of the squared discarded singular values: keep the largest ones.")
        x = torch.randn(8, in_f, generator=gen)
        with torch.no_grad():
            ref = lowrank.factorize_linear(layer, rank)(x).double()
        if not torch.allclose(x.double() @ a.T @ b.T + layer.bias.double(), ref, atol=1e-4):
            fail("as two layers (x → first → second, plus the bias) your factors differ from "
                  "lowrank.factorize_linear on fresh inputs.")
    return "truncated SVD: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_tt_params(fn, seed: int = 0) -> str:
    """Chapter 7: ``fn(in_factors, out_factors, ranks) -> int``, the entries of a tensor train's
    cores; ``ranks`` is the full tuple ``(1, r_1, …, r_{d−1}, 1)``.

    Behind chapter 02, "Pruning".
    """
    rng = np.random.default_rng(seed)
    cases = [((4, 7, 7, 4), (3, 5, 5, 4), (1, 8, 8, 8, 1)), ((784,), (300,), (1, 1))]
    for _ in range(30):
        d = int(rng.integers(1, 6))
        ins = tuple(int(v) for v in rng.integers(2, 9, size=d))
        outs = tuple(int(v) for v in rng.integers(2, 9, size=d))
        inner = lowrank.tt_max_ranks(ins, outs)[1:-1]
        ranks = (1, *(int(rng.integers(1, r + 1)) for r in inner), 1)
        cases.append((ins, outs, ranks))
    for ins, outs, ranks in cases:
        got = fn(ins, outs, ranks)
        want = lowrank.tt_params(ins, outs, list(ranks))
        if got != want:
            if len(ins) == 1:
                fail(f"one core (d = 1) is the dense matrix: {ins[0]} × {outs[0]} entries; got {got}.")
            fail(f"in {ins}, out {outs}, ranks {ranks}: you count {got}. Core k has shape "
                  "(r_{k−1}, n_k, m_k, r_k); add up the entries of every core.")
    return "TT parameters: all checks passed"
