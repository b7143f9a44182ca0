"""Post-training weight quantization of a language model: RTN, GPTQ, AWQ, and SmoothQuant's W8A8.

Taught in chapter 19. Conventions (one grid for every weight-only method):
a weight matrix ``W`` (out_features × in_features) is cut into groups of
``group_size`` consecutive input columns of one row (``group_size=None``: the
whole row, i.e. per output channel). A group size that does not divide the
width is refused unless ``ragged=True``: then groups start every
``group_size`` columns and the last one of a row is narrower, as GPTQ's
reference implementation cuts them (our 160-wide layers in groups of 128:
one group of 128 and one of 32). Each group has its own **asymmetric**
grid: ``scale = (max(w, 0) − min(w, 0)) / (2ⁿ − 1)`` stored in fp16, an
integer ``zero_point``, codes ``q = clamp(round(w/scale) + zero_point, 0, 2ⁿ − 1)``
and values ``ŵ = (q − zero_point)·scale`` (GPTQ's and AWQ's default;
``symmetric=True`` gives signed codes, ``zero_point = 0``, ``scale = max|w| / (2ⁿ⁻¹ − 1)``).
Rounding is half-to-even (``torch.round``).

- :func:`rtn` rounds every weight to its nearest grid point.
- :func:`gptq` (Frantar et al. 2023) quantizes one column at a time and moves
  the not-yet-quantized columns to cancel the error just made, weighted by
  the inverse Hessian ``H⁻¹`` of the layer's output error (``H = 2XᵀX/n``):
  ``W[:, q:] −= (w_q − ŵ_q)/[H⁻¹]_qq · H⁻¹[q, q:]`` with ``H⁻¹`` replaced by
  its upper Cholesky factor, updates applied lazily ``block_size`` columns
  at a time.
- :func:`awq` (Lin et al. 2024) multiplies input channel ``j`` by
  ``s_j = mean|x_j|^α`` before quantizing and divides after
  (``ŵ = Q(W·diag(s))·diag(s)⁻¹``), ``α`` searched on the layer's output error.
- :func:`smoothquant` (Xiao et al. 2023) divides activations by
  ``s_j = max|x_j|^α / max|W_:,j|^(1−α)`` and multiplies the weights' columns
  by it — exact before quantization — so that int8 activations lose less.
  :class:`W8A8Linear` quantizes weights per output channel (symmetric int8)
  and activations **per tensor, statically** (one scale from the calibration
  maximum), the setting where outliers hurt most (SmoothQuant's O3).

:func:`quantize_model` returns a quantized *copy* of a model whose weights
are the dequantized fp32 values (fake quantization: the perplexity is that
of the integer model, the arithmetic is still fp32); :func:`save_packed`
writes the integer codes, bit-packed, with their fp16 scales, and returns
the file's size on disk.
"""
from __future__ import annotations

import copy
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..coding import pack_bits, unpack_bits
from ..validation import (Bool, Fraction, Instance, Interval, Module, Options, PositiveInt, Tensor,
                          validate_params)
from .calibration import activation_stats, hessian, inputs_block_by_block, linear_names, obs_sweep

N_BITS = Interval(int, 2, 8)
GROUP = PositiveInt(optional=True)
WEIGHT = Tensor(ndim=2)
METHODS = ("rtn", "gptq", "awq", "w8a8", "smoothquant")
PATH = Instance((str, os.PathLike), "a file path")


# ---------------------------------------------------------------- the grid
def _check_group(func: str, weight: torch.Tensor, group_size: int | None, ragged: bool = False) -> int:
    cols = weight.shape[1]
    if group_size is not None and cols % group_size and not (ragged and group_size < cols):
        raise ValueError(f"{func}: group_size must divide the input width ({cols}) (or be smaller than it, with "
                         f"ragged=True for a narrower last group); got {group_size!r}.")
    return cols if group_size is None else group_size


def _n_groups(cols: int, g: int) -> int:
    return -(-cols // g)


def _limits(n_bits: int, symmetric: bool) -> tuple[int, int]:
    return (-(1 << (n_bits - 1)), (1 << (n_bits - 1)) - 1) if symmetric else (0, (1 << n_bits) - 1)


def _grid(w: torch.Tensor, n_bits: int, symmetric: bool):
    """Scale (fp16-representable) and zero point per row of ``w`` (rows, g): both (rows, 1)."""
    lo, hi = _limits(n_bits, symmetric)
    if symmetric:
        scale = w.abs().amax(dim=1, keepdim=True) / hi
    else:
        wmin, wmax = w.amin(dim=1, keepdim=True).clamp(max=0), w.amax(dim=1, keepdim=True).clamp(min=0)
        scale = (wmax - wmin) / (hi - lo)                                   # (rows, 1)
    scale = scale.to(torch.float16).to(w.dtype)                             # stored as fp16
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))          # an all-zero group
    zero = torch.zeros_like(scale) if symmetric else torch.round(-wmin / scale).clamp(lo, hi)
    return scale, zero


def _codes(w, scale, zero, n_bits, symmetric):
    lo, hi = _limits(n_bits, symmetric)
    return torch.clamp(torch.round(w / scale) + zero, lo, hi)              # q = clamp(round(w/s) + z)


def _rtn(w: torch.Tensor, n_bits: int, g: int, symmetric: bool):
    rows, cols = w.shape
    if cols % g:                                                            # ragged: whole groups, then the rest
        parts = [_rtn(w[:, :cols - cols % g], n_bits, g, symmetric), _rtn(w[:, cols - cols % g:], n_bits,
                                                                          cols % g, symmetric)]
        return tuple(torch.cat(t, dim=1) for t in zip(*parts))
    groups = w.reshape(rows * (cols // g), g)                               # (rows · n_groups, g)
    scale, zero = _grid(groups, n_bits, symmetric)
    q = _codes(groups, scale, zero, n_bits, symmetric)
    deq = ((q - zero) * scale).reshape(rows, cols)                          # ŵ = (q − z)·s
    return deq, q.reshape(rows, cols), scale.reshape(rows, -1), zero.reshape(rows, -1)


@validate_params(weight=WEIGHT, n_bits=N_BITS, group_size=GROUP, symmetric=Bool(), ragged=Bool())
def rtn(weight: torch.Tensor, n_bits: int, group_size: int | None = None, *, symmetric: bool = False,
        ragged: bool = False) -> torch.Tensor:
    """Round-to-nearest: each weight to the nearest point of its group's ``n_bits`` grid (dequantized values).

    ``weight`` (out_features, in_features); ``group_size`` consecutive input
    columns share a grid (``None``: one grid per output row; ``ragged``: see
    the module). Asymmetric by default (see the module's conventions).

    >>> w = torch.tensor([[0.0, 0.1, 0.2, 0.3]])
    >>> rtn(w, 2).tolist()
    [[0.0, 0.0999755859375, 0.199951171875, 0.2999267578125]]

    Taught in chapter 19, "Quantizing a language model".
    """
    g = _check_group("rtn", weight, group_size, ragged)
    return _rtn(weight, n_bits, g, symmetric)[0]


@validate_params(weight=WEIGHT, x=Tensor(ndim=2), weight_hat=WEIGHT)
def layer_error(weight: torch.Tensor, x: torch.Tensor, weight_hat: torch.Tensor) -> float:
    """Mean squared output error ``‖X·Wᵀ − X·Ŵᵀ‖² / (tokens · out_features)`` of a quantized layer on inputs ``x``.

    Taught in chapter 19, "Quantizing a language model".
    """
    if weight.shape != weight_hat.shape or x.shape[1] != weight.shape[1]:
        raise ValueError(f"layer_error: weight_hat must have weight's shape {tuple(weight.shape)} and x "
                         f"{weight.shape[1]} columns; got {tuple(weight_hat.shape)} and {tuple(x.shape)}.")
    diff = x.double() @ (weight.double() - weight_hat.double()).T
    return float(diff.pow(2).mean())


# ---------------------------------------------------------------- GPTQ
def _gptq(w: torch.Tensor, h: torch.Tensor, n_bits: int, g: int, symmetric: bool, block_size: int, damp: float):
    rows, cols = w.shape
    codes = torch.zeros(rows, cols, dtype=torch.float64)
    scales, zeros = (torch.zeros(rows, _n_groups(cols, g), dtype=torch.float64) for _ in range(2))
    grid = {}

    def choose(col, ahead, u_diag):                                         # a group starts: its grid from the
        grid["scale"], grid["zero"] = _grid(ahead, n_bits, symmetric)      # weights as updated so far
        scales[:, col // g], zeros[:, col // g] = grid["scale"][:, 0], grid["zero"][:, 0]

    def target(col, w_col):
        q = _codes(w_col[:, None], grid["scale"], grid["zero"], n_bits, symmetric)   # (rows, 1)
        codes[:, col] = q[:, 0]
        return ((q - grid["zero"]) * grid["scale"])[:, 0]                  # ŵ_q = (q − z)·s

    try:
        deq = obs_sweep(w, h, target, choose=choose, step=g, block_size=block_size, damp=damp)
    except ValueError as err:
        raise ValueError(str(err).replace("inverse_hessian_factor:", "gptq:")) from None
    return deq, codes, scales, zeros


@validate_params(weight=WEIGHT, h=Tensor(ndim=2), n_bits=N_BITS, group_size=GROUP, symmetric=Bool(),
                 block_size=PositiveInt(), damp=Interval(float, 0, None), ragged=Bool())
def gptq(weight: torch.Tensor, h: torch.Tensor, n_bits: int, group_size: int | None = None, *,
         symmetric: bool = False, block_size: int = 32, damp: float = 0.01, ragged: bool = False) -> torch.Tensor:
    """GPTQ: quantize ``weight`` column by column, compensating each error on the columns not yet quantized.

    ``h``: the layer's Hessian ``2XᵀX/n`` (:func:`effdl.llm.calibration.hessian`),
    in_features × in_features, finite. ``damp``: ``damp · mean(diag H)`` is
    added to the diagonal (the paper's 1 %). ``block_size`` columns are
    updated eagerly, the rest once per block (lazy batch updates: the same
    result, fewer memory passes). With ``group_size`` a group's grid is
    chosen when the algorithm reaches its first column, from the weights as
    updated so far. Returns the dequantized weights (float32).

    Taught in chapter 19, "Quantizing a language model".
    """
    g = _check_group("gptq", weight, group_size, ragged)
    if h.shape != (weight.shape[1], weight.shape[1]):
        raise ValueError(f"gptq: h must be in_features × in_features ({weight.shape[1]}); got {tuple(h.shape)}.")
    return _gptq(weight, h, n_bits, g, symmetric, block_size, damp)[0].to(weight.dtype)


# ---------------------------------------------------------------- AWQ
def _awq(w, x, n_bits, g, symmetric, grid):
    x = x.float()
    ref = x @ w.T                                                           # (tokens, out)
    mean_abs = x.abs().mean(dim=0).clamp(min=1e-4)                          # (in,)
    errors, best = [], None
    for k in range(grid + 1):
        alpha = k / grid
        s = mean_abs.pow(alpha)
        s = (s / (s.max() * s.min()).sqrt()).half().float()                 # centred around 1, stored fp16
        deq, q, scale, zero = _rtn(w * s, n_bits, g, symmetric)             # Q(W·diag(s))
        w_hat = deq / s                                                     # ·diag(s)⁻¹
        e = float((x @ w_hat.T - ref).pow(2).mean())
        errors.append(e)
        if best is None or e < best[0]:
            best = (e, alpha, s, w_hat, q, scale, zero)
    return {"error": best[0], "alpha": best[1], "scales": best[2], "weight": best[3], "codes": best[4],
            "scale": best[5], "zero_point": best[6], "errors": errors}


@validate_params(weight=WEIGHT, x=Tensor(ndim=2), n_bits=N_BITS, group_size=GROUP, symmetric=Bool(),
                 grid=PositiveInt(), ragged=Bool())
def awq_scales(weight: torch.Tensor, x: torch.Tensor, n_bits: int, group_size: int | None = None, *,
               symmetric: bool = False, grid: int = 20, ragged: bool = False) -> dict:
    """AWQ's search: per-input-channel scales ``s = mean|x|^α`` with ``α`` in ``{0, 1/grid, …, 1}``.

    For each ``α`` the weights are quantized as ``Q(W·diag(s))·diag(s)⁻¹`` and
    the layer's mean squared output error on ``x`` (tokens, in_features) is
    measured; the best ``α`` wins (``α = 0`` is plain RTN, so AWQ never does
    worse than RTN on the calibration inputs). Returns ``{"alpha", "scales"
    (in,), "error", "errors" (one per α), "weight" (dequantized)}``.

    Taught in chapter 19, "Quantizing a language model".
    """
    g = _check_group("awq_scales", weight, group_size, ragged)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"awq_scales: x must have in_features ({weight.shape[1]}) columns; got {tuple(x.shape)}.")
    r = _awq(weight, x, n_bits, g, symmetric, grid)
    return {k: r[k] for k in ("alpha", "scales", "error", "errors", "weight")}


@validate_params(weight=WEIGHT, x=Tensor(ndim=2), n_bits=N_BITS, group_size=GROUP, symmetric=Bool(),
                 grid=PositiveInt(), ragged=Bool())
def awq(weight: torch.Tensor, x: torch.Tensor, n_bits: int, group_size: int | None = None, *,
        symmetric: bool = False, grid: int = 20, ragged: bool = False) -> torch.Tensor:
    """AWQ's dequantized weights ``Q(W·diag(s))·diag(s)⁻¹`` at the searched scales (:func:`awq_scales`).

    Taught in chapter 19, "Quantizing a language model".
    """
    return awq_scales(weight, x, n_bits, group_size, symmetric=symmetric, grid=grid, ragged=ragged)["weight"]


# ---------------------------------------------------------------- SmoothQuant
def _smooth(act_max, w_max, alpha):
    return act_max.clamp(min=1e-5).pow(alpha) / w_max.clamp(min=1e-5).pow(1 - alpha)


@validate_params(weight=WEIGHT, act_max=Tensor(ndim=1), alpha=Fraction())
def smoothquant(weight: torch.Tensor, act_max: torch.Tensor, alpha: float = 0.5) -> tuple:
    """SmoothQuant's migration: ``s_j = max|X_j|^α / max|W_:,j|^(1−α)``; returns ``(W·diag(s), s)``.

    The layer then computes ``(X·diag(s)⁻¹)·(W·diag(s))ᵀ = X·Wᵀ`` — exactly,
    before quantization — with activations whose channel maxima are
    ``max|X_j|^(1−α)·max|W_:,j|^(1−α)``: the outliers moved into the
    weights. ``act_max`` (in_features,): ``max|x_j|`` over calibration tokens.

    Taught in chapter 19, "Quantizing a language model".
    """
    if act_max.shape != (weight.shape[1],):
        raise ValueError(f"smoothquant: act_max must have in_features ({weight.shape[1]}) entries; "
                         f"got {tuple(act_max.shape)}.")
    s = _smooth(act_max, weight.abs().amax(dim=0), alpha)                   # (in,)
    return weight * s, s


class W8A8Linear(nn.Module):
    """A linear layer with fake-quantized int weights and activations, after an optional smoothing.

    ``forward(x) = Q_a(x / s) · Q_w(W·diag(s))ᵀ + b``: weights symmetric
    per output channel at ``n_bits``, activations symmetric per tensor at
    ``n_bits_act`` with a static scale ``max_j(act_max_j / s_j) / (2^(n−1) − 1)``
    from calibration (inputs beyond it are clipped). ``alpha=None`` is naive
    W8A8 (``s = 1``).

    Taught in chapter 19, "Quantizing a language model".
    """

    def __init__(self, linear: nn.Linear, act_max: torch.Tensor, alpha: float | None = None, *,
                 n_bits: int = 8, n_bits_act: int = 8):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"W8A8Linear: linear must be an nn.Linear; got {type(linear).__name__}.")
        w = linear.weight.detach()
        if alpha is None:
            s = torch.ones(w.shape[1])
        else:
            w, s = smoothquant(w, act_max, alpha)
        self.n_bits_act = n_bits_act
        self.register_buffer("inv_s", 1.0 / s)
        qmax = (1 << (n_bits_act - 1)) - 1
        self.act_scale = float((act_max / s).max()) / qmax
        self.weight = nn.Parameter(_rtn(w, n_bits, w.shape[1], True)[0], requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def forward(self, x):
        qmax = (1 << (self.n_bits_act - 1)) - 1
        x = x * self.inv_s                                                  # X·diag(s)⁻¹
        x = torch.clamp(torch.round(x / self.act_scale), -qmax - 1, qmax) * self.act_scale
        return F.linear(x, self.weight, self.bias)


# ---------------------------------------------------------------- 4-bit storage and its matmul
@validate_params(codes=Tensor(dtype="int", ndim=2))
def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte: (out, in) integers in [0, 15], ``in`` even → (out, in / 2) uint8, low nibble first.

    Taught in chapter 19, "Quantizing a language model".
    """
    if codes.shape[1] % 2 or int(codes.min()) < 0 or int(codes.max()) > 15:
        raise ValueError(f"pack_int4: codes must be integers in [0, 15] with an even number of columns; got shape "
                         f"{tuple(codes.shape)}, range [{int(codes.min())}, {int(codes.max())}].")
    c = codes.to(torch.uint8)
    return c[:, 0::2] | (c[:, 1::2] << 4)                                   # (out, in / 2)


@validate_params(x=Tensor(ndim=2), packed=Tensor(dtype=None, ndim=2), scale=Tensor(ndim=2),
                 zero_point=Tensor(dtype=None, ndim=2))
def int4_linear(x: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    """``x · Ŵᵀ`` from 4-bit codes, dequantizing on the fly: unpack, ``(q − z)·s`` per group, one fp32 matmul.

    ``packed`` (out, in / 2) uint8 from :func:`pack_int4`; ``scale`` and
    ``zero_point`` (out, n_groups). Reads half a byte per weight instead of
    four, but in plain torch the dequantized matrix is written out before the
    product (a fused kernel keeps it in registers): what that costs on a CPU
    is measured by ``benchmarks/bench_llm_quant.py``.

    Taught in chapter 19, "Quantizing a language model".
    """
    if packed.dtype != torch.uint8 or scale.shape != zero_point.shape or scale.shape[0] != packed.shape[0] \
            or (2 * packed.shape[1]) % scale.shape[1] or x.shape[1] != 2 * packed.shape[1]:
        raise ValueError(f"int4_linear: packed must be uint8 (out, in / 2) with scale and zero_point (out, n_groups) "
                         f"dividing in, and x (tokens, in); got {tuple(packed.shape)} {packed.dtype}, "
                         f"{tuple(scale.shape)}, {tuple(zero_point.shape)}, {tuple(x.shape)}.")
    rows, half = packed.shape
    q = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(rows, scale.shape[1], -1)   # (out, groups, g)
    w = ((q.to(x.dtype) - zero_point[..., None].to(x.dtype)) * scale[..., None]).reshape(rows, 2 * half)
    return x @ w.T


# ---------------------------------------------------------------- whole models
def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


@validate_params(model=Module(), method=Options(METHODS), n_bits=N_BITS, group_size=GROUP,
                 windows=Tensor(dtype="int", ndim=2, optional=True), alpha=Fraction(), symmetric=Bool(),
                 block_size=PositiveInt(), damp=Interval(float, 0, None), n_bits_act=N_BITS, ragged=Bool())
def quantize_model(model: nn.Module, method: str, n_bits: int = 4, group_size: int | None = None, *,
                   windows: torch.Tensor | None = None, alpha: float = 0.5, symmetric: bool = False,
                   block_size: int = 32, damp: float = 0.01, n_bits_act: int = 8, ragged: bool = False) -> nn.Module:
    """A quantized copy of ``model``: every ``nn.Linear`` by ``method``; embeddings, norms and biases stay fp32.

    ``"rtn"``, ``"gptq"``, ``"awq"``: weight-only, ``n_bits`` per group of
    ``group_size`` input columns; the copy's weights are the dequantized fp32
    values and ``copy.quant_state[name]`` holds each layer's integer codes,
    fp16 scales and zero points (and AWQ's channel scales) for
    :func:`save_packed`. GPTQ and AWQ need calibration ``windows`` (token
    ids, (n, t)) and go block by block: each block's inputs are captured on
    the model whose earlier blocks are already quantized.
    ``"w8a8"`` (naive) and ``"smoothquant"`` (migration strength ``alpha``)
    replace each linear by :class:`W8A8Linear` (weights ``n_bits`` per
    channel, activations ``n_bits_act`` per tensor); they need ``windows``
    for the activation maxima and take no ``group_size``. ``ragged``: allow a
    group size that does not divide a layer's width (see the module).

    Taught in chapter 19, "Quantizing a language model".
    """
    if method != "rtn" and windows is None:
        raise ValueError(f"quantize_model: windows must be calibration token ids for method {method!r}; got None.")
    if method in ("w8a8", "smoothquant") and group_size is not None:
        raise ValueError(f"quantize_model: group_size must be None for {method!r} (weights per channel); "
                         f"got {group_size!r}.")
    out = copy.deepcopy(model).eval()
    names = linear_names(out)
    mods = dict(out.named_modules())
    for n in names:
        _check_group("quantize_model", mods[n].weight, group_size, ragged)
    if method in ("w8a8", "smoothquant"):
        stats = activation_stats(out, windows)
        for n in names:
            _set(out, n, W8A8Linear(mods[n], stats[n]["max_abs"], alpha if method == "smoothquant" else None,
                                    n_bits=n_bits, n_bits_act=n_bits_act))
        return out
    state = {}
    for xs in (inputs_block_by_block(out, windows, names) if method != "rtn" else [{n: None for n in names}]):
        for n in xs:
            w = mods[n].weight.detach()
            g = w.shape[1] if group_size is None else group_size
            s = None
            if method == "rtn":
                deq, q, scale, zero = _rtn(w, n_bits, g, symmetric)
            elif method == "gptq":
                deq, q, scale, zero = _gptq(w, hessian(xs[n]), n_bits, g, symmetric, block_size, damp)
            else:
                r = _awq(w, xs[n], n_bits, g, symmetric, 20)
                deq, q, scale, zero, s = r["weight"], r["codes"], r["scale"], r["zero_point"], r["scales"]
            with torch.no_grad():
                mods[n].weight.copy_(deq.to(w.dtype))
            state[n] = {"codes": q.to(torch.int16), "scale": scale.float(), "zero_point": zero.to(torch.int16),
                        "n_bits": n_bits, "symmetric": symmetric, "channel_scale": s, "group_size": g}
    out.quant_state = state
    return out


@validate_params(model=Module(), path=PATH)
def save_packed(model: nn.Module, path) -> int:
    """Write ``model`` as packed integers where it was quantized (``model.quant_state``) and fp32 elsewhere.

    Each quantized weight is stored as its codes bit-packed at ``n_bits``
    (:func:`effdl.coding.pack_bits`), the zero points packed likewise, the
    scales (and AWQ's channel scales, which a deployment folds into the
    previous operation) in fp16; every other tensor of the state dict as
    fp32. One uncompressed ``.npz`` file; returns its size in bytes on disk.
    A model without ``quant_state`` is written all fp32 (the baseline).

    Taught in chapter 19, "Quantizing a language model".
    """
    state = getattr(model, "quant_state", {})
    arrays = {}
    for key, value in model.state_dict().items():
        layer = key.rsplit(".", 1)[0]
        if key.endswith(".weight") and layer in state:
            st = state[layer]
            lo = _limits(st["n_bits"], st["symmetric"])[0]
            codes = (st["codes"].long() - lo).reshape(-1).numpy()
            arrays[key + ".codes"] = np.frombuffer(pack_bits(codes, st["n_bits"]), dtype=np.uint8)
            arrays[key + ".zero_point"] = np.frombuffer(
                pack_bits((st["zero_point"].long() - lo).reshape(-1).numpy(), st["n_bits"]), dtype=np.uint8)
            arrays[key + ".scale"] = st["scale"].numpy().astype(np.float16)
            arrays[key + ".shape"] = np.array(list(value.shape) + [st["n_bits"], lo, st["group_size"]],
                                              dtype=np.int32)
            if st["channel_scale"] is not None:
                arrays[key + ".channel_scale"] = st["channel_scale"].numpy().astype(np.float16)
        else:
            arrays[key] = value.detach().float().numpy()
    path = os.fspath(path)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return os.path.getsize(path)


@validate_params(path=PATH, model=Module())
def load_packed(path, model: nn.Module) -> nn.Module:
    """A copy of ``model`` with the tensors of a :func:`save_packed` file (quantized weights dequantized).

    Taught in chapter 19, "Quantizing a language model".
    """
    out = copy.deepcopy(model).eval()
    with np.load(os.fspath(path)) as z:
        files = set(z.files)
        state = {}
        for key, ref in out.state_dict().items():
            if key in files:
                state[key] = torch.from_numpy(z[key].copy())
                continue
            rows, cols, n_bits, lo, g = (int(v) for v in z[key + ".shape"])
            scale = torch.from_numpy(z[key + ".scale"].astype(np.float32))          # (rows, n_groups)
            q = torch.from_numpy(unpack_bits(z[key + ".codes"].tobytes(), n_bits, rows * cols)) + lo
            zero = torch.from_numpy(unpack_bits(z[key + ".zero_point"].tobytes(), n_bits, scale.numel())) + lo
            widths = torch.tensor([g] * (cols // g) + ([cols % g] if cols % g else []))   # the last may be narrower
            zero_col, scale_col = (torch.repeat_interleave(t.reshape(rows, -1), widths, dim=1) for t in (zero, scale))
            w = (q.reshape(rows, cols) - zero_col) * scale_col
            if key + ".channel_scale" in files:                                     # AWQ: ŵ = Q(W·s)/s
                w = w / torch.from_numpy(z[key + ".channel_scale"].astype(np.float32))
            state[key] = w.float()
    out.load_state_dict(state)
    return out
