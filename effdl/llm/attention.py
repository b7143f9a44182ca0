"""Attention without the N×N matrix: FlashAttention's tiling and its IO count.

Taught in chapter 18. Dao, Fu, Ermon, Rudra and Ré, "FlashAttention: fast
and memory-efficient exact attention with IO-awareness" (NeurIPS 2022).

Standard attention (the paper's Algorithm 0) writes the scores
``S = Q·Kᵀ`` and the probabilities ``P = softmax(S)`` to off-chip memory
(HBM) and reads them back: ``Θ(N·d + N²)`` accesses for a sequence of ``N``
positions of width ``d``. FlashAttention (Algorithm 1) loads blocks of K and
V into on-chip SRAM of ``M`` elements, and for each block of Q keeps a
running maximum ``m`` and sum ``l`` of the softmax (the *online softmax*),
rescaling the partial output whenever the maximum grows; S and P never leave
the chip, and the count is ``Θ(N²·d²/M)`` (Theorem 2) — fewer accesses
whenever ``d² < M``, which holds for every head size used in practice.

:func:`flash_attention` runs Algorithm 1 loop by loop in torch and counts the
elements it moves between "HBM" (its input and output tensors) and "SRAM"
(the blocks); :func:`flash_attention_io` is the same count in closed form,
and :func:`standard_attention_io` Algorithm 0's. The result equals
``torch.nn.functional.scaled_dot_product_attention`` (tested, causal or not).
"""
from __future__ import annotations

import math

import torch

from ..validation import Bool, Interval, PositiveInt, Tensor, validate_params

SRAM = Interval(int, 2, None)


@validate_params(d=PositiveInt(), sram=SRAM)
def block_sizes(d: int, sram: int) -> tuple[int, int]:
    """FlashAttention's block sizes ``(B_r, B_c)`` for head width ``d`` and SRAM of ``sram`` elements.

    ``B_c = ⌈M / 4d⌉`` (rows of K and of V per block) and
    ``B_r = min(⌈M / 4d⌉, d)`` (rows of Q and O per block), Algorithm 1, line 1.

    >>> block_sizes(64, 100_000 // 4)     # 100 KB of fp32 on chip
    (64, 98)

    Behind chapter 18, "Where the time goes in a transformer".
    """
    b_c = math.ceil(sram / (4 * d))
    return min(b_c, d), b_c


@validate_params(n=PositiveInt(), d=PositiveInt())
def standard_attention_io(n: int, d: int) -> dict:
    """HBM element reads and writes of standard attention (Algorithm 0) on ``n`` positions of width ``d``.

    Read Q, K, write S; read S, write P; read P, V, write O:
    ``reads = 3·N·d + 2·N²``, ``writes = 2·N² + N·d``.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    reads, writes = 3 * n * d + 2 * n * n, 2 * n * n + n * d
    return {"reads": reads, "writes": writes, "total": reads + writes}


@validate_params(n=PositiveInt(), d=PositiveInt(), sram=SRAM)
def flash_attention_io(n: int, d: int, sram: int) -> dict:
    """HBM element reads and writes of FlashAttention (Algorithm 1, not causal), in closed form.

    With ``T_c = ⌈N / B_c⌉`` blocks of K and V: initialise O, l, m
    (``N·d + 2N`` writes); read K and V once (``2·N·d``); for every K/V block
    read Q, O, l, m (``2·N·d + 2N``) and write O, l, m back (``N·d + 2N``).
    That is ``≈ 3·T_c·N·d ≈ 12·N²·d²/M`` — Theorem 2's ``Θ(N²d²/M)``.
    :func:`flash_attention` counts the same numbers as it runs.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    _, b_c = block_sizes(d, sram)
    t_c = math.ceil(n / b_c)
    reads = 2 * n * d + t_c * (2 * n * d + 2 * n)
    writes = (n * d + 2 * n) + t_c * (n * d + 2 * n)
    return {"reads": reads, "writes": writes, "total": reads + writes}


@validate_params(q=Tensor(ndim=(2, 3, 4)), k=Tensor(ndim=(2, 3, 4)), v=Tensor(ndim=(2, 3, 4)), causal=Bool(),
                 sram=SRAM)
def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                    sram: int = 4096) -> tuple[torch.Tensor, dict]:
    """Exact attention ``softmax(Q·Kᵀ/√d)·V`` by FlashAttention's Algorithm 1, and the elements it moved.

    ``q`` (..., N, d), ``k`` and ``v`` (..., N_k, d) with the same leading
    dimensions (batch, heads). ``causal`` masks key ``j > i`` for query ``i``
    (top-left aligned, as ``scaled_dot_product_attention(is_causal=True)``);
    K/V blocks wholly above the diagonal are skipped. ``sram`` (elements)
    sets the block sizes (:func:`block_sizes`). Returns ``(output, io)``, io
    = ``{"reads", "writes", "total"}`` in elements of one (batch, head) slice
    — equal to :func:`flash_attention_io` when not causal and ``N_k = N``.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    n, d = q.shape[-2:]
    n_k = k.shape[-2]
    if k.shape[:-2] != q.shape[:-2] or v.shape != k.shape or k.shape[-1] != d:
        raise ValueError(f"flash_attention: k and v must have shape (..., N_k, {d}) with q's leading dimensions "
                         f"{tuple(q.shape[:-2])}; got k {tuple(k.shape)} and v {tuple(v.shape)}.")
    b_r, b_c = block_sizes(d, sram)
    scale = 1.0 / math.sqrt(d)
    lead = q.shape[:-2]
    # "HBM": output, running row sums l and row maxima m (Algorithm 1, line 2)
    out = torch.zeros_like(q)
    l = torch.zeros(*lead, n, dtype=q.dtype)
    m = torch.full((*lead, n), -math.inf, dtype=q.dtype)
    reads, writes = 0, n * d + 2 * n
    for j in range(0, n_k, b_c):                               # outer loop: blocks of K and V
        if causal and j > n - 1:                               # every query is before this block
            break
        k_j, v_j = k[..., j:j + b_c, :], v[..., j:j + b_c, :]  # load K_j, V_j into SRAM: (..., B_c, d)
        reads += 2 * k_j.shape[-2] * d
        for i in range(0, n, b_r):                             # inner loop: blocks of Q (and O, l, m)
            if causal and j > i + b_r - 1:                     # block above the diagonal: all masked
                continue
            q_i, o_i = q[..., i:i + b_r, :], out[..., i:i + b_r, :]
            l_i, m_i = l[..., i:i + b_r], m[..., i:i + b_r]
            rows = q_i.shape[-2]
            reads += 2 * rows * d + 2 * rows
            s = (q_i @ k_j.transpose(-2, -1)) * scale          # S_ij (..., B_r, B_c), on chip only
            if causal:
                qi = torch.arange(i, i + rows).unsqueeze(1)
                kj = torch.arange(j, j + k_j.shape[-2]).unsqueeze(0)
                s = s.masked_fill(kj > qi, -math.inf)
            m_new = torch.maximum(m_i, s.amax(dim=-1))          # running maximum
            p = torch.exp(s - m_new.unsqueeze(-1))              # P̃_ij, shifted by the new maximum
            alpha = torch.exp(m_i - m_new)                      # rescales what was summed before
            l_new = alpha * l_i + p.sum(dim=-1)
            # O_i ← (l_i·e^{m_i − m_new}·O_i + P̃_ij·V_j) / l_new   (Algorithm 1, line 12)
            out[..., i:i + b_r, :] = ((alpha * l_i).unsqueeze(-1) * o_i + p @ v_j) / l_new.unsqueeze(-1)
            l[..., i:i + b_r], m[..., i:i + b_r] = l_new, m_new
            writes += rows * d + 2 * rows
    return out, {"reads": reads, "writes": writes, "total": reads + writes}


@validate_params(n=PositiveInt(), d=PositiveInt(), sram=SRAM)
def io_ratio(n: int, d: int, sram: int) -> float:
    """Standard attention's HBM accesses ÷ FlashAttention's, at ``n`` positions (closed forms).

    Behind chapter 18, "Where the time goes in a transformer".
    """
    return standard_attention_io(n, d)["total"] / flash_attention_io(n, d, sram)["total"]


@validate_params(q=Tensor(ndim=(2, 3, 4)), k=Tensor(ndim=(2, 3, 4)), v=Tensor(ndim=(2, 3, 4)), causal=Bool())
def standard_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False) -> torch.Tensor:
    """Attention with the full score matrix materialised (Algorithm 0): the reference FlashAttention avoids.

    Behind chapter 18, "Where the time goes in a transformer".
    """
    d = q.shape[-1]
    if k.shape[-1] != d or v.shape != k.shape:
        raise ValueError(f"standard_attention: k and v must have shape (..., N_k, {d}); got k {tuple(k.shape)} "
                         f"and v {tuple(v.shape)}.")
    s = q @ k.transpose(-2, -1) / math.sqrt(d)                 # (..., N, N_k): written to HBM
    if causal:
        n, n_k = s.shape[-2:]
        s = s.masked_fill(torch.ones(n, n_k, dtype=torch.bool).triu(1), -math.inf)
    return torch.softmax(s, dim=-1) @ v

