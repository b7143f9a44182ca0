"""One-shot pruning of a language model: magnitude, Wanda and SparseGPT, unstructured and N:M.

Taught in chapter 20. Conventions (one rule for every method):

- a weight matrix ``W`` (out_features × in_features) is pruned **per output
  row**, the comparison group Wanda uses (Sun et al. 2024): at ``sparsity``
  s every row keeps all but ``⌊s · in_features⌋`` of its weights, so each
  output neuron loses the same share of its inputs;
- ``pattern="N:M"`` keeps at most ``N`` nonzeros in every group of ``M``
  consecutive input columns of a row (exactly ``N`` here: the ``N`` best
  scores), ``0 < N < M`` and ``M`` dividing the width. ``"2:4"`` is the
  pattern NVIDIA's sparse tensor cores skip in hardware (50 % zeros, stored
  as the 2 values plus a 2-bit index each, :func:`nm_storage_bytes`);
- a mask is a bool tensor of the weight's shape, True = kept.

The three methods differ in the score that ranks the weights and in what
happens to the weights that stay:

- :func:`magnitude` keeps the largest ``|W_ij|``;
- :func:`wanda` keeps the largest ``|W_ij| · ‖X_j‖₂`` — the weight times
  the norm of its input channel over the calibration tokens — and leaves the
  kept weights unchanged;
- :func:`sparsegpt` (Frantar & Alistarh 2023) goes column by column as GPTQ
  does (chapter 19) and, instead of rounding column ``q``, zeroes its pruned
  weights and moves the columns not yet visited to cancel the error:
  ``W[:, q:] −= (w_q − ŵ_q)/U_qq · U[q, q:]`` with ``U`` the upper Cholesky
  factor of ``(H + λI)⁻¹``, ``H = 2XᵀX/n``
  (:func:`effdl.llm.calibration.inverse_hessian_factor`). Which weights to
  prune is chosen adaptively, ``mask_block`` columns at a time, by the OBS
  saliency ``w² / U_qq²`` of the weights as updated so far (for N:M: per
  group of M columns); updates are applied lazily ``block_size`` columns at
  a time.

:func:`prune_model` returns a pruned *copy* of a model, block by block on the
already-pruned model's inputs as chapter 19's GPTQ goes; :func:`pack_nm` and
:func:`unpack_nm` store an N:M weight as its kept values plus their indices.
"""
from __future__ import annotations

import copy
import math
import re

import numpy as np
import torch
from torch import nn

from ..coding import pack_bits, unpack_bits
from ..validation import Dict, Instance, Interval, Module, Options, PositiveInt, Tensor, Text, validate_params
from .calibration import hessian, inputs_block_by_block, linear_names, obs_sweep

METHODS = ("magnitude", "wanda", "sparsegpt")
WEIGHT = Tensor(ndim=2)
SPARSITY_OR_NONE = Interval(float, 0, 1, closed="left", optional=True)
PATTERN = Text(optional=True)


# ---------------------------------------------------------------- the rule: which weights a score keeps
def _parse_pattern(func: str, pattern: str, cols: int) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", pattern)
    n_keep, group = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if not m or not 0 < n_keep < group or cols % group:
        raise ValueError(f"{func}: pattern must be 'N:M' with 0 < N < M and M dividing the input width ({cols}); "
                         f"got {pattern!r}.")
    return n_keep, group


def _check_target(func: str, sparsity, pattern, cols: int):
    """``(sparsity, (N, M) or None)`` after checking that exactly one of the two is given."""
    if (sparsity is None) == (pattern is None):
        raise ValueError(f"{func}: give exactly one of sparsity and pattern; got sparsity={sparsity!r}, "
                         f"pattern={pattern!r}.")
    return sparsity, (None if pattern is None else _parse_pattern(func, pattern, cols))


def _n_pruned(sparsity: float, cols: int) -> int:
    return math.floor(sparsity * cols + 1e-9)                              # ⌊s · in⌋ zeros per row


def _keep_top(scores: torch.Tensor, n_drop: int) -> torch.Tensor:
    """Mask dropping the ``n_drop`` lowest scores of each row (ties: the lower index is dropped first)."""
    mask = torch.ones_like(scores, dtype=torch.bool)
    if n_drop:
        drop = torch.argsort(scores, dim=1, stable=True)[:, :n_drop]       # (rows, n_drop)
        mask.scatter_(1, drop, False)
    return mask


def _select(scores: torch.Tensor, sparsity, nm) -> torch.Tensor:
    rows, cols = scores.shape
    if nm is None:
        return _keep_top(scores, _n_pruned(sparsity, cols))
    n_keep, group = nm
    grouped = scores.reshape(rows * cols // group, group)                   # (rows · groups, M)
    return _keep_top(grouped, group - n_keep).reshape(rows, cols)


@validate_params(scores=Tensor(ndim=2), sparsity=SPARSITY_OR_NONE, pattern=PATTERN)
def select_mask(scores: torch.Tensor, sparsity: float | None = None, pattern: str | None = None) -> torch.Tensor:
    """The mask (True = kept) that keeps each row's best ``scores``: all but ``⌊s · in⌋`` per row, or N per M.

    Give exactly one of ``sparsity`` (a fraction in [0, 1)) and ``pattern``
    (``"N:M"``). Ties are broken towards dropping the lower column index.

    >>> select_mask(torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.5, 0.1, 0.2, 0.3]]), pattern="2:4").int().tolist()
    [[1, 0, 1, 0, 1, 0, 0, 1]]

    Taught in chapter 20, "Pruning a language model".
    """
    sparsity, nm = _check_target("select_mask", sparsity, pattern, scores.shape[1])
    return _select(scores, sparsity, nm)


@validate_params(weight=WEIGHT, sparsity=SPARSITY_OR_NONE, pattern=PATTERN)
def magnitude(weight: torch.Tensor, sparsity: float | None = None, pattern: str | None = None) -> tuple:
    """Magnitude pruning per output row: ``(weight · mask, mask)`` keeping the largest ``|W_ij|``.

    Taught in chapter 20, "Pruning a language model".
    """
    sparsity, nm = _check_target("magnitude", sparsity, pattern, weight.shape[1])
    mask = _select(weight.abs(), sparsity, nm)
    return weight * mask, mask


@validate_params(x=Tensor(ndim=2))
def input_norms(x: torch.Tensor) -> torch.Tensor:
    """Wanda's ``‖X_j‖₂`` per input channel ``j`` of a layer's inputs ``x`` (tokens, in_features), float32 (in,).

    Taught in chapter 20, "Pruning a language model".
    """
    return x.double().pow(2).sum(dim=0).sqrt().float()


@validate_params(weight=WEIGHT, x_norm=Tensor(ndim=1), sparsity=SPARSITY_OR_NONE, pattern=PATTERN)
def wanda(weight: torch.Tensor, x_norm: torch.Tensor, sparsity: float | None = None,
          pattern: str | None = None) -> tuple:
    """Wanda (Sun et al. 2024): ``(weight · mask, mask)`` keeping the largest ``|W_ij| · ‖X_j‖₂`` of each row.

    ``x_norm`` (in_features,): the norms of the layer's input channels over
    the calibration tokens (:func:`input_norms`). No weight is updated: a
    weight on a loud input channel is worth keeping even when it is small.

    Taught in chapter 20, "Pruning a language model".
    """
    if x_norm.shape != (weight.shape[1],) or bool((x_norm < 0).any()):
        raise ValueError(f"wanda: x_norm must hold in_features ({weight.shape[1]}) non-negative norms; got shape "
                         f"{tuple(x_norm.shape)}.")
    sparsity, nm = _check_target("wanda", sparsity, pattern, weight.shape[1])
    mask = _select(weight.abs() * x_norm[None, :], sparsity, nm)           # S_ij = |W_ij| · ‖X_j‖₂
    return weight * mask, mask


# ---------------------------------------------------------------- SparseGPT
def _sparsegpt(w: torch.Tensor, h: torch.Tensor, sparsity, nm, block_size: int, mask_block: int, damp: float):
    mask = torch.ones(w.shape, dtype=torch.bool)

    def choose(col, ahead, u_diag):                                         # the mask of columns col:end
        saliency = ahead.pow(2) / u_diag.pow(2)                             # OBS: w² / [H_F⁻¹]_qq = w² / U_qq²
        end = col + ahead.shape[1]
        if nm is not None:
            mask[:, col:end] = _select(saliency, None, nm)
        else:                                                               # this block's share of ⌊s · in⌋
            mask[:, col:end] = _keep_top(saliency, _n_pruned(sparsity, end) - _n_pruned(sparsity, col))

    def target(col, w_col):
        return w_col * mask[:, col]                                         # ŵ_q = 0 where dropped

    try:
        swept = obs_sweep(w, h, target, choose=choose, step=nm[1] if nm is not None else mask_block,
                          block_size=block_size, damp=damp)
    except ValueError as err:
        raise ValueError(str(err).replace("inverse_hessian_factor:", "sparsegpt:")) from None
    return swept * mask, mask


@validate_params(weight=WEIGHT, h=Tensor(ndim=2), sparsity=SPARSITY_OR_NONE, pattern=PATTERN,
                 block_size=PositiveInt(), mask_block=PositiveInt(), damp=Interval(float, 0, None))
def sparsegpt(weight: torch.Tensor, h: torch.Tensor, sparsity: float | None = None, pattern: str | None = None, *,
              block_size: int = 128, mask_block: int = 128, damp: float = 0.01) -> tuple:
    """SparseGPT: ``(pruned weight, mask)``, pruning column by column and reconstructing the rest (OBS).

    ``h``: the layer's Hessian ``2XᵀX/n`` (:func:`effdl.llm.calibration.hessian`),
    in_features × in_features. ``damp``: ``damp · mean(diag H)`` is added to
    the diagonal (the paper's 1 %). ``mask_block`` (the paper's ``B_s``):
    unstructured masks are chosen for that many columns at once, each row
    dropping its share of ``⌊s · in⌋``; N:M masks per group of M. The kept
    weights are changed — that is the reconstruction — and returned in the
    weight's dtype.

    Taught in chapter 20, "Pruning a language model".
    """
    if h.shape != (weight.shape[1], weight.shape[1]):
        raise ValueError(f"sparsegpt: h must be in_features × in_features ({weight.shape[1]}); "
                         f"got {tuple(h.shape)}.")
    sparsity, nm = _check_target("sparsegpt", sparsity, pattern, weight.shape[1])
    pruned, mask = _sparsegpt(weight, h, sparsity, nm, block_size, mask_block, damp)
    return pruned.to(weight.dtype), mask


@validate_params(weight=WEIGHT, x=Tensor(ndim=2), mask=Instance(torch.Tensor, "a bool tensor (True = kept)"))
def least_squares_reconstruction(weight: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The best weights for a fixed ``mask``: per row, ``min ‖X·w − X_K·v‖²`` over the kept columns ``K`` (float64).

    Solves the normal equations ``(X_Kᵀ X_K) v = X_Kᵀ X w`` row by row: the
    exact answer SparseGPT approximates in one sweep (its bound from below).

    Taught in chapter 20, "Pruning a language model".
    """
    if mask.dtype != torch.bool or mask.shape != weight.shape or x.shape[1] != weight.shape[1]:
        raise ValueError(f"least_squares_reconstruction: mask must be bool with weight's shape {tuple(weight.shape)} and x "
                         f"{weight.shape[1]} columns; got {tuple(mask.shape)} and {tuple(x.shape)}.")
    xd, wd = x.double(), weight.double()
    gram, target = xd.T @ xd, xd.T @ (xd @ wd.T)                            # XᵀX (in, in), XᵀX·Wᵀ (in, out)
    out = torch.zeros_like(wd)
    for r in range(wd.shape[0]):
        k = mask[r].nonzero().flatten()
        if len(k):
            out[r, k] = torch.linalg.lstsq(gram[k][:, k], target[k, r:r + 1]).solution[:, 0]
    return out


# ---------------------------------------------------------------- N:M storage
@validate_params(rows=PositiveInt(), cols=PositiveInt(), pattern=Text(), n_bits_value=PositiveInt())
def nm_storage_bytes(rows: int, cols: int, pattern: str = "2:4", n_bits_value: int = 16) -> dict:
    """Bytes of a ``rows × cols`` N:M weight stored as its kept values plus one ``⌈log₂ M⌉``-bit index per value.

    The hardware format of 2:4 (NVIDIA's compressed matrix and metadata):
    ``values = rows·cols·N/M·n_bits_value/8``, ``indices = rows·cols·N/M·⌈log₂ M⌉/8``
    (rounded up to whole bytes), against ``dense = rows·cols·n_bits_value/8``.
    Returns ``{"dense", "values", "indices", "total", "ratio"}`` (ratio = total / dense).

    >>> nm_storage_bytes(4, 8, "2:4", 16)["total"]
    36

    Taught in chapter 20, "Pruning a language model".
    """
    n_keep, group = _parse_pattern("nm_storage_bytes", pattern, cols)
    kept = rows * cols // group * n_keep
    values = -(-kept * n_bits_value // 8)
    indices = -(-kept * max(1, math.ceil(math.log2(group))) // 8)
    dense = -(-rows * cols * n_bits_value // 8)
    return {"dense": dense, "values": values, "indices": indices, "total": values + indices,
            "ratio": (values + indices) / dense}


@validate_params(weight=WEIGHT, pattern=Text())
def pack_nm(weight: torch.Tensor, pattern: str = "2:4") -> dict:
    """An N:M-sparse ``weight`` as ``{"values" (rows, cols·N/M), "indices" (packed uint8), "shape", "pattern"}``.

    Each group of M columns must hold at most N nonzeros (a zero kept by the
    mask is stored as a value like any other). ``indices``: the position
    (0…M−1) of every stored value in its group, ``⌈log₂ M⌉`` bits each, bit-
    packed (:func:`effdl.coding.pack_bits`).

    Taught in chapter 20, "Pruning a language model".
    """
    n_keep, group = _parse_pattern("pack_nm", pattern, weight.shape[1])
    rows, cols = weight.shape
    grouped = weight.reshape(rows, cols // group, group)                    # (rows, groups, M)
    if int((grouped != 0).sum(-1).max()) > n_keep:
        raise ValueError(f"pack_nm: weight must have at most {n_keep} nonzeros in every group of {group} columns; "
                         f"got a group with {int((grouped != 0).sum(-1).max())}.")
    keep = _select(grouped.abs().reshape(-1, group), None, (n_keep, group)).reshape(grouped.shape)
    idx = keep.nonzero()[:, 2].reshape(rows, -1)                            # (rows, groups · N), ascending
    values = grouped[keep].reshape(rows, -1)
    n_bits = max(1, math.ceil(math.log2(group)))
    return {"values": values.clone(), "indices": np.frombuffer(pack_bits(idx.reshape(-1).numpy(), n_bits),
                                                                dtype=np.uint8).copy(),
            "shape": (rows, cols), "pattern": f"{n_keep}:{group}"}


@validate_params(packed=Dict())
def unpack_nm(packed: dict) -> torch.Tensor:
    """The dense weight of a :func:`pack_nm` dict.

    Taught in chapter 20, "Pruning a language model".
    """
    rows, cols = packed["shape"]
    n_keep, group = _parse_pattern("unpack_nm", packed["pattern"], cols)
    n_bits = max(1, math.ceil(math.log2(group)))
    values = packed["values"]
    idx = torch.from_numpy(unpack_bits(packed["indices"].tobytes(), n_bits, values.numel())).reshape(rows, -1)
    base = torch.arange(cols // group).repeat_interleave(n_keep)[None, :] * group   # each value's group start
    out = torch.zeros(rows, cols, dtype=values.dtype)
    out.scatter_(1, base + idx, values)
    return out


# ---------------------------------------------------------------- whole models
@validate_params(model=Module(), method=Options(METHODS), sparsity=SPARSITY_OR_NONE, pattern=PATTERN,
                 windows=Tensor(dtype="int", ndim=2, optional=True), block_size=PositiveInt(),
                 mask_block=PositiveInt(), damp=Interval(float, 0, None))
def prune_model(model: nn.Module, method: str, *, sparsity: float | None = None, pattern: str | None = None,
                windows: torch.Tensor | None = None, block_size: int = 128, mask_block: int = 128,
                damp: float = 0.01) -> nn.Module:
    """A pruned copy of ``model``: every ``nn.Linear`` by ``method``; embeddings, norms and biases stay dense.

    Give exactly one of ``sparsity`` and ``pattern`` (see the module).
    ``"wanda"`` and ``"sparsegpt"`` need calibration ``windows`` (token ids,
    (n, t)) and go block by block: each block's inputs are captured on the
    model whose earlier blocks are already pruned (chapter 19's order,
    :func:`effdl.llm.calibration.inputs_block_by_block`). ``copy.prune_masks``
    holds each layer's mask.

    Taught in chapter 20, "Pruning a language model".
    """
    if method != "magnitude" and windows is None:
        raise ValueError(f"prune_model: windows must be calibration token ids for method {method!r}; got None.")
    out = copy.deepcopy(model).eval()
    names = linear_names(out)
    mods = dict(out.named_modules())
    for n in names:
        _check_target("prune_model", sparsity, pattern, mods[n].weight.shape[1])
    masks = {}
    stages = inputs_block_by_block(out, windows, names) if method != "magnitude" else [{n: None for n in names}]
    for xs in stages:
        for n, x in xs.items():
            w = mods[n].weight.detach()
            if method == "magnitude":
                pruned, mask = magnitude(w, sparsity, pattern)
            elif method == "wanda":
                pruned, mask = wanda(w, input_norms(x), sparsity, pattern)
            else:
                pruned, mask = sparsegpt(w, hessian(x), sparsity, pattern, block_size=block_size,
                                         mask_block=mask_block, damp=damp)
            with torch.no_grad():
                mods[n].weight.copy_(pruned)
            masks[n] = mask
    out.prune_masks = masks
    return out


@validate_params(model=Module())
def model_sparsity(model: nn.Module) -> float:
    """Fraction of zeros among the weights of ``model``'s ``nn.Linear`` layers (biases excluded).

    Taught in chapter 20, "Pruning a language model".
    """
    ws = [m.weight.detach() for m in model.modules() if isinstance(m, nn.Linear)]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)
