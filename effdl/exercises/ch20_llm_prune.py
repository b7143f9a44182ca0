"""Chapter 20, Pruning a language model: the checks of its graded exercises.

In ``chapters/20_llm_pruning.ipynb``:

- ``check_wanda_mask`` tests the reader's ``my_wanda_mask``;
- ``check_nm_bytes`` tests the reader's ``my_nm_bytes``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ._common import fail
from ..llm import prune
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_wanda_mask(fn, seed: int = 2000) -> str:
    """Chapter 20: ``fn(weight, x, sparsity) -> bool mask``, Wanda's per-row rule: score ``|W_ij|·‖X_j‖₂``
    (the norm of input channel j over the tokens, the rows of ``x``), each row dropping its
    ``⌊sparsity · in⌋`` lowest scores. ``weight`` (out, in), ``x`` (tokens, in); True = kept.

    Taught in chapter 20, "Pruning a language model".
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    for _ in range(8):
        rows, cols, tokens = int(rng.integers(2, 9)), int(rng.integers(4, 17)), int(rng.integers(5, 40))
        if rows == cols:
            rows += 1                                            # rows ≠ cols: the wrong axis shows
        weight = torch.randn(rows, cols, generator=gen)
        x = torch.randn(tokens, cols, generator=gen) * (0.1 + 5 * torch.rand(cols, generator=gen))
        sparsity = float(rng.choice([0.25, 0.5, 0.6]))
        want = prune.wanda(weight, prune.input_norms(x), sparsity)[1]
        got = fn(weight.clone(), x.clone(), sparsity)
        if not isinstance(got, torch.Tensor) or got.dtype != torch.bool or got.shape != weight.shape:
            fail(f"return a bool tensor of the weight's shape {tuple(weight.shape)} (True = kept); got "
                 f"{getattr(got, 'dtype', type(got).__name__)} {tuple(getattr(got, 'shape', ()))}.")
        n_drop = math.floor(sparsity * cols + 1e-9)
        if not torch.all((~got).sum(1) == n_drop):
            fail(f"each row of a {rows}×{cols} weight must drop exactly ⌊{sparsity}·{cols}⌋ = {n_drop} weights: "
                 "Wanda compares the scores within each output row, not across the whole layer.")
        if not torch.equal(got, want):
            if torch.equal(got, prune.magnitude(weight, sparsity)[1]):
                fail("your mask is magnitude pruning: multiply |W_ij| by the norm of input channel j over the "
                     "tokens, ‖X[:, j]‖₂.")
            fail(f"for a {rows}×{cols} weight at sparsity {sparsity} your mask keeps other weights than the "
                 "largest |W_ij|·‖X[:, j]‖₂ of each row: is the norm taken over the tokens (dim 0 of x)?")
    return "Wanda mask: correct on 8 random layers"


@validate_params(fn=Callable(), seed=Seed())
def check_nm_bytes(fn, seed: int = 2001) -> str:
    """Chapter 20: ``fn(rows, cols, n, m, n_bits_value) -> int``, bytes of an N:M weight stored as its kept values
    (``n_bits_value`` bits each) plus one ``⌈log₂ m⌉``-bit index per kept value, each part rounded up to whole bytes.

    Taught in chapter 20, "Pruning a language model".
    """
    rng = np.random.default_rng(seed)
    cases = [(4, 8, 2, 4, 16), (160, 640, 2, 4, 32), (3, 8, 1, 8, 16)]
    for _ in range(7):
        m = int(rng.choice([2, 4, 8, 16]))
        cases.append((int(rng.integers(1, 50)), m * int(rng.integers(1, 20)), int(rng.integers(1, m)),
                      m, int(rng.choice([4, 8, 16, 32]))))
    for rows, cols, n, m, n_bits in cases:
        want = prune.nm_storage_bytes(rows, cols, f"{n}:{m}", n_bits)["total"]
        got = fn(rows, cols, n, m, n_bits)
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            fail(f"return a whole number of bytes (an int); got {type(got).__name__}.")
        if got != want:
            kept = rows * cols // m * n
            if got == math.ceil(kept * n_bits / 8):
                fail(f"for {rows}×{cols} at {n}:{m} you count the values only: add ⌈log₂ {m}⌉ bits of index per "
                     "kept value (which of the M positions it came from).")
            if got == math.ceil(rows * cols * n_bits / 8):
                fail("that is the dense matrix: only N of every M values are stored.")
            fail(f"for {rows}×{cols} at {n}:{m} with {n_bits}-bit values: expected {want} bytes (values: "
                 f"rows·cols·N/M·bits/8, indices: the same count × ⌈log₂ M⌉ bits / 8, each rounded up); got {got}.")
    return "N:M bytes: correct on 10 layouts"
