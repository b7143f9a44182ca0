"""Low-rank approximation of fully connected and convolutional layers.

Taught in chapter 07, "Low-rank approximation". Three ideas, one paper each:

* **Truncated SVD of an FC layer** (Denton et al., *Exploiting linear structure
  within convolutional networks for efficient evaluation*, NIPS 2014):
  ``W ≈ U_r S_r V_rᵀ``, so one ``in → out`` layer becomes ``in → r → out``
  (:func:`factorize_linear`, :func:`replace_linear`, :func:`linear_costs`).
* **Conv decomposition** (Zhang, Zou, He & Sun, *Efficient and accurate
  approximations of nonlinear convolutional networks*, CVPR 2015; *Accelerating
  very deep convolutional networks for classification and detection*, TPAMI
  2016): ``d`` filters of size k×k×c become ``d′`` k×k×c filters followed by
  ``d`` 1×1×d′ filters (:func:`factorize_conv` from the weights alone,
  :func:`factorize_conv_data` from the layer's responses on real inputs,
  :func:`select_ranks` for the ranks of a whole network, :func:`conv_costs`);
  VGG-16 4× faster for +0.3 % top-5 error (TPAMI).
* **Tensor-train layers** (Novikov, Podoprikhin, Osokin & Vetrov, *Tensorizing
  neural networks*, NIPS 2015): the ``out × in`` matrix is stored as a chain
  of small 4-way cores (:class:`TTLinear`, :func:`tt_params`, :func:`tt_macs`);
  FC layers compressed up to 200,000×, a whole VGG network up to 7×.

Vocabulary: ``rank`` is the inner dimension r (FC) or d′ (conv); costs are
dicts with ``dense_params``, ``lowrank_params``, ``dense_macs``,
``lowrank_macs`` (MACs per example; params include the bias).

Longer than 600 lines because SVD, the conv decompositions and tensor-train layers share the
rank-selection and sweep code that chapter 7 compares them with.
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ._validate import _fail
from .data import Split
from .train import evaluate
from .validation import (Bool, Instance, Interval, ListOf, Module, OneOf, Options, PositiveInt, Seed, Tensor,
                         check_part, validate_params)


__all__ = [
    "svd_rank_for_energy", "factorize_linear", "replace_linear", "linear_costs",
    "factorize_conv", "factorize_conv_data", "response_spectrum", "replace_conv", "layer_inputs",
    "select_ranks", "conv_costs",
    "TTLinear", "tt_params", "tt_macs", "tt_max_ranks",
    "svd_rank_sweep",
]


# ----------------------------------------------------------------- constraints
LINEAR = Instance(nn.Linear, "a torch.nn.Linear")
CONV = Instance(nn.Conv2d, "a torch.nn.Conv2d")
FACTORS = ListOf(PositiveInt())
TT_RANKS = OneOf(PositiveInt(), ListOf(PositiveInt()))     # an int, or the d + 1 ranks (1, r_1, …, r_{d−1}, 1)
PAIR = OneOf(PositiveInt(), ListOf(PositiveInt()))         # n (meaning n×n) or (n_h, n_w)
N_SAMPLES = PositiveInt(optional=True)
NAME = Instance(str, "a string")


def _check_rank(rank: int, max_rank: int, name: str = "rank") -> int:
    """A declared positive rank, at most ``max_rank`` (which depends on other arguments)."""
    if rank > max_rank:
        _fail(ValueError, name, f"an integer in [1, {max_rank}]", rank)
    return rank


def _pair(func: str, name: str, value: int | list[int]) -> tuple[int, int]:
    """A declared PAIR as (n_h, n_w)."""
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise ValueError(f"{func}: {name} must be an int or a pair of ints; got {value!r}.")
    return tuple(value)


def _finite(func: str, name: str, weight: torch.Tensor) -> torch.Tensor:
    """A layer's weight must be finite (an SVD of NaN fails inside LAPACK)."""
    return check_part(func, Tensor(), name, weight)


def _get_submodule(func: str, model: nn.Module, name: str, cls: type, what: str,
                   name_param: str = "name") -> nn.Module:
    try:
        sub = model.get_submodule(name) if name else None
    except AttributeError:
        sub = None
    if sub is None:
        names = [n for n, m in model.named_modules() if isinstance(m, cls)]
        raise ValueError(f"{func}: {name_param} must be the name of a {what} in model, one of {names}; "
                         f"got {name!r}.")
    if not isinstance(sub, cls):
        raise TypeError(f"{func}: model.{name} must be a {what}; got {sub!r}.")
    return sub


def _replace_submodule(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with submodule ``name`` replaced by ``new``."""
    model = copy.deepcopy(model)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)
    return model


# ----------------------------------------------------------- truncated SVD (FC)
def _svd64(matrix: torch.Tensor):
    """SVD in float64 (so full rank reproduces a float32 layer to ~1e-7)."""
    return torch.linalg.svd(matrix.detach().to(torch.float64), full_matrices=False)


@validate_params(weight=Tensor(ndim=(2, 3, 4)), energy=Interval(float, 0, 1, closed="right"))
def svd_rank_for_energy(weight, energy: float) -> int:
    """Smallest rank r whose top-r singular values keep ``energy`` of Σ σᵢ².

    Parameters
    ----------
    weight : tensor (out, in), or a conv weight (d, c, kh, kw) read as the
        (d, c·kh·kw) matrix of Zhang et al.; numpy arrays are accepted.
    energy : float in (0, 1]
        Fraction of the squared Frobenius norm to keep; 1 gives the numerical rank.

    >>> svd_rank_for_energy(torch.diag(torch.tensor([3.0, 1.0])), 0.8)   # 9/10 ≥ 0.8
    1
    >>> svd_rank_for_energy(torch.diag(torch.tensor([3.0, 1.0])), 0.95)
    2

    Behind chapter 07, "Low-rank approximation".
    """
    s = torch.linalg.svdvals(weight.detach().reshape(weight.shape[0], -1).to(torch.float64))
    cum = torch.cumsum(s ** 2, 0)
    if cum[-1] == 0:
        raise ValueError("svd_rank_for_energy: weight must not be all zeros; got a zero tensor.")
    kept = cum / cum[-1]                                   # kept[r-1] = energy of the top r
    return int(torch.searchsorted(kept, energy - 1e-12)) + 1


@validate_params(linear=LINEAR, rank=PositiveInt())
def factorize_linear(linear: nn.Linear, rank: int) -> nn.Sequential:
    """Truncated SVD of an FC layer: ``Linear(in, out)`` → ``Linear(in, r) ∘ Linear(r, out)``.

    ``W = U S Vᵀ`` (out × in); the first layer gets ``√S_r V_rᵀ`` (r × in, no
    bias), the second ``U_r √S_r`` (out × r) and the original bias, so the
    product is the best rank-r approximation (Eckart–Young):
    ``‖W − W_r‖_F = √(Σ_{i>r} σᵢ²)``. Splitting √S keeps both factors at the
    same scale, which helps fine-tuning. The original layer is not modified.

    >>> layer = factorize_linear(nn.Linear(784, 300), 20)
    >>> [tuple(m.weight.shape) for m in layer]
    [(20, 784), (300, 20)]

    Taught in chapter 07, "Low-rank approximation".
    """
    return _factorize_linear(linear, rank, "factorize_linear")


def _factorize_linear(linear: nn.Linear, rank: int, func: str) -> nn.Sequential:
    out_f, in_f = linear.weight.shape
    rank = _check_rank(rank, min(out_f, in_f))
    _finite(func, "linear.weight", linear.weight)
    u, s, vh = _svd64(linear.weight)                       # (out, m), (m,), (m, in)
    root = s[:rank].sqrt()
    w = linear.weight
    first = nn.Linear(in_f, rank, bias=False, device=w.device, dtype=w.dtype)
    second = nn.Linear(rank, out_f, bias=linear.bias is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        first.weight.copy_(root[:, None] * vh[:rank])      # (r, in)  √S_r V_rᵀ
        second.weight.copy_(u[:, :rank] * root)            # (out, r) U_r √S_r
        if linear.bias is not None:
            second.bias.copy_(linear.bias)
    return nn.Sequential(first, second)


@validate_params(model=Module(), name=NAME, rank=PositiveInt())
def replace_linear(model: nn.Module, name: str, rank: int) -> nn.Module:
    """A deep copy of ``model`` whose ``nn.Linear`` submodule ``name`` is factorized to ``rank``.

    ``model`` itself is left untouched. ``name`` is a dotted submodule name
    as in ``model.named_modules()`` (``"fc1"`` for LeNet-300-100).

    Behind chapter 07, "Low-rank approximation".
    """
    linear = _get_submodule("replace_linear", model, name, nn.Linear, "torch.nn.Linear")
    return _replace_submodule(model, name, _factorize_linear(linear, rank, "replace_linear"))


@validate_params(in_features=PositiveInt(), out_features=PositiveInt(), rank=PositiveInt())
def linear_costs(in_features: int, out_features: int, rank: int) -> dict:
    """Parameters and MACs (per example) of a dense FC layer and its rank-r factorization.

    dense: ``in·out + out`` params, ``in·out`` MACs; factorized:
    ``r·(in + out) + out`` params, ``r·(in + out)`` MACs. The factorization
    saves only when ``r < in·out / (in + out)``.

    >>> linear_costs(784, 300, 20)
    {'dense_params': 235500, 'lowrank_params': 21980, 'dense_macs': 235200, 'lowrank_macs': 21680}

    Taught in chapter 07, "Low-rank approximation".
    """
    in_f, out_f = in_features, out_features
    rank = _check_rank(rank, min(in_f, out_f))
    return {"dense_params": in_f * out_f + out_f, "lowrank_params": rank * (in_f + out_f) + out_f,
            "dense_macs": in_f * out_f, "lowrank_macs": rank * (in_f + out_f)}


# ------------------------------------------------------ conv (Zhang et al.)
def _check_conv(func: str, conv: nn.Conv2d, name: str = "conv") -> nn.Conv2d:
    """A declared Conv2d that can be decomposed: groups=1 and finite weights."""
    if conv.groups != 1:
        raise ValueError(f"{func}: {name} must have groups=1 (grouped convs are not decomposed); got {conv!r}.")
    _finite(func, f"{name}.weight", conv.weight)
    return conv


def _conv_max_rank(conv: nn.Conv2d) -> int:
    d, c, kh, kw = conv.weight.shape
    return min(d, c * kh * kw)


def _conv_pair(conv: nn.Conv2d, rank: int, first_weight: torch.Tensor, second_weight: torch.Tensor,
               bias: torch.Tensor | None) -> nn.Sequential:
    """Conv2d(c → d′, k×k, conv's stride/padding/dilation) then Conv2d(d′ → d, 1×1, bias)."""
    d, c, kh, kw = conv.weight.shape
    w = conv.weight
    first = nn.Conv2d(c, rank, (kh, kw), stride=conv.stride, padding=conv.padding,
                      dilation=conv.dilation, bias=False, padding_mode=conv.padding_mode,
                      device=w.device, dtype=w.dtype)
    second = nn.Conv2d(rank, d, 1, bias=bias is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        first.weight.copy_(first_weight.reshape(rank, c, kh, kw))
        second.weight.copy_(second_weight.reshape(d, rank, 1, 1))
        if bias is not None:
            second.bias.copy_(bias)
    return nn.Sequential(first, second)


@validate_params(conv=CONV, rank=PositiveInt())
def factorize_conv(conv: nn.Conv2d, rank: int) -> nn.Sequential:
    """Zhang et al.'s decomposition from the weights alone (SVD of the filter matrix).

    The d filters of size k×k×c form the d × (c·k·k) matrix ``W = U S Vᵀ``; the
    layer becomes ``Conv2d(c → d′, k×k)`` with filters ``√S V_{d′}ᵀ`` (same
    stride, padding, dilation; no bias) followed by ``Conv2d(d′ → d, 1×1)``
    with weights ``U_{d′} √S`` and the original bias. Full rank
    (``d′ = min(d, c·k·k)``) reproduces the layer exactly.

    >>> pair = factorize_conv(nn.Conv2d(20, 50, 5), 10)
    >>> [tuple(m.weight.shape) for m in pair]
    [(10, 20, 5, 5), (50, 10, 1, 1)]

    Behind chapter 07, "Low-rank approximation".
    """
    return _factorize_conv(conv, rank, "factorize_conv")


def _factorize_conv(conv: nn.Conv2d, rank: int, func: str) -> nn.Sequential:
    conv = _check_conv(func, conv)
    rank = _check_rank(rank, _conv_max_rank(conv))
    u, s, vh = _svd64(conv.weight.reshape(conv.out_channels, -1))   # (d, m), (m,), (m, c·k·k)
    root = s[:rank].sqrt()
    return _conv_pair(conv, rank, root[:, None] * vh[:rank], u[:, :rank] * root, conv.bias)


@torch.no_grad()
def _response_pca(conv: nn.Conv2d, inputs: torch.Tensor, n_samples: int | None, seed: int):
    """Mean and PCA of the layer's responses y = W x (no bias) at sampled positions.

    Returns (mean (d,), eigenvalues (d,) descending, eigenvectors (d, d) as
    columns), all float64.
    """
    w = conv.weight.detach().to(torch.float64)
    x = inputs.detach().to(device=w.device, dtype=torch.float64)
    y = conv._conv_forward(x, w, None)                     # (N, d, H', W'), responses without bias
    y = y.permute(0, 2, 3, 1).reshape(-1, w.shape[0])      # (positions, d)
    if n_samples is not None and n_samples < len(y):
        gen = torch.Generator().manual_seed(seed)
        y = y[torch.randperm(len(y), generator=gen)[:n_samples].to(y.device)]
    mean = y.mean(0)                                       # ȳ − b (the bias is added later)
    centred = y - mean
    cov = centred.T @ centred / len(y)                     # (d, d)
    evals, evecs = torch.linalg.eigh(cov)                  # ascending
    return mean, evals.flip(0).clamp_min(0), evecs.flip(1)


def _check_inputs(func: str, conv: nn.Conv2d, inputs: torch.Tensor) -> torch.Tensor:
    """Declared INPUTS (a finite 4-D tensor) with the conv's input channels."""
    if inputs.shape[1] != conv.in_channels:
        raise ValueError(f"{func}: inputs must have {conv.in_channels} channels (the conv's in_channels), "
                         f"shape (N, {conv.in_channels}, H, W); got shape {tuple(inputs.shape)}.")
    return inputs


INPUTS = Tensor(ndim=4)


@validate_params(conv=CONV, inputs=INPUTS, rank=PositiveInt(), n_samples=N_SAMPLES, seed=Seed())
def factorize_conv_data(conv: nn.Conv2d, inputs: torch.Tensor, rank: int, *,
                        n_samples: int | None = 10_000, seed: int = 0) -> nn.Sequential:
    """Zhang et al.'s decomposition fitted to the layer's responses on real inputs.

    What exactly is implemented: the *linear* response reconstruction of
    Zhang et al. (CVPR 2015), without their later nonlinear (ReLU-aware) and
    asymmetric (error-compensating) refinements. The layer's responses ``y = W x`` (d-dim, bias left out)
    are collected at ``n_samples`` output positions drawn at random (with
    ``seed``) from running the conv on ``inputs``. With ``ȳ`` their mean and
    ``M`` (d × d′) the top-d′ eigenvectors of their covariance, the
    approximation ``ŷ = M Mᵀ (y − ȳ) + ȳ`` is the rank-d′ projection with the
    least squared response error (PCA). It is realised as

    * first conv: filters ``W′ = Mᵀ W`` (d′ × c·k·k, no bias);
    * second conv (1×1): weights ``M`` and bias ``b + (I − M Mᵀ) ȳ``,

    which gives ``M Mᵀ W x + b + (I − M Mᵀ) ȳ`` = the projection above plus the
    original bias. On the sampled responses its error is never larger than
    the weight-only SVD's (:func:`factorize_conv`) at the same rank, because
    the SVD is also a rank-d′ projection of ``W x`` (onto ``U_{d′}``) with a
    worse offset. At full rank it reproduces the layer.

    Parameters
    ----------
    conv : nn.Conv2d (groups=1)
    inputs : tensor (N, c, H, W)
        Inputs *of this layer* (for a deep layer, capture them with
        :func:`layer_inputs`).
    rank : int in [1, min(d, c·k·k)]
    n_samples : int or None
        Number of response vectors (output positions over the batch) used;
        None uses all. Zhang et al. sample 10 positions in each of 3,000 images.
    seed : int
        Seeds the position sampling (a private generator).

    Behind chapter 07, "Low-rank approximation".
    """
    return _factorize_conv_data(conv, inputs, rank, n_samples, seed, "factorize_conv_data")


def _factorize_conv_data(conv: nn.Conv2d, inputs: torch.Tensor, rank: int, n_samples: int | None, seed: int,
                         func: str) -> nn.Sequential:
    conv = _check_conv(func, conv)
    inputs = _check_inputs(func, conv, inputs)
    rank = _check_rank(rank, _conv_max_rank(conv))
    mean, _, evecs = _response_pca(conv, inputs, n_samples, seed)
    m = evecs[:, :rank]                                    # (d, d′) top eigenvectors
    w = conv.weight.detach().to(torch.float64).reshape(conv.out_channels, -1)  # (d, c·k·k)
    bias = torch.zeros_like(mean) if conv.bias is None else conv.bias.detach().to(torch.float64)
    new_bias = bias + mean - m @ (m.T @ mean)               # b + (I − M Mᵀ) ȳ
    return _conv_pair(conv, rank, m.T @ w, m, new_bias)


@validate_params(conv=CONV, inputs=INPUTS, n_samples=N_SAMPLES, seed=Seed())
def response_spectrum(conv: nn.Conv2d, inputs: torch.Tensor, *, n_samples: int | None = 10_000,
                      seed: int = 0) -> torch.Tensor:
    """Eigenvalues (d,), descending, of the covariance of the layer's responses ``W x``.

    The "energy" spectrum of Zhang et al.'s rank selection, measured on data;
    pass a list of them as ``spectra`` to :func:`select_ranks`. Sampling as in
    :func:`factorize_conv_data`.

    Behind chapter 07, "Low-rank approximation".
    """
    conv = _check_conv("response_spectrum", conv)
    inputs = _check_inputs("response_spectrum", conv, inputs)
    _, evals, _ = _response_pca(conv, inputs, n_samples, seed)
    return evals.to(torch.float32)


MODEL_INPUT = Tensor(convert=False, dtype=None)


@validate_params(model=Module(), name=NAME, x=MODEL_INPUT)
def layer_inputs(model: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """The tensor that submodule ``name`` receives when ``model(x)`` runs (captured by a hook).

    Behind chapter 07, "Low-rank approximation".
    """
    return _layer_inputs(model, name, x, "layer_inputs")


@torch.no_grad()
def _layer_inputs(model: nn.Module, name: str, x: torch.Tensor, func: str) -> torch.Tensor:
    sub = _get_submodule(func, model, name, nn.Module, "torch.nn.Module")
    captured = []
    handle = sub.register_forward_hook(lambda module, args, out: captured.append(args[0].detach()))
    was_training = model.training
    try:
        model.eval()(x)
    except RuntimeError as err:                         # a batch the model cannot take (wrong shape, dtype)
        raise ValueError(f"{func}: x must hold inputs that {type(model).__name__} accepts; a batch of shape "
                         f"{tuple(x.shape)} failed with: {err}") from err
    finally:
        handle.remove()
        model.train(was_training)
    if not captured:
        raise ValueError(f"{func}: name must be a submodule that model's forward calls; {name!r} was not called.")
    return captured[0]


@validate_params(model=Module(), name=NAME, rank=PositiveInt(), x=Tensor(convert=False, dtype=None, optional=True),
                 n_samples=N_SAMPLES, seed=Seed())
def replace_conv(model: nn.Module, name: str, rank: int, *, x: torch.Tensor | None = None,
                 n_samples: int | None = 10_000, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with the ``nn.Conv2d`` named ``name`` decomposed to ``rank``.

    Without ``x``, from the weights (:func:`factorize_conv`); with ``x``, a
    batch of *model* inputs, from the layer's responses on them
    (:func:`factorize_conv_data`).

    Taught in chapter 07, "Low-rank approximation".
    """
    conv = _get_submodule("replace_conv", model, name, nn.Conv2d, "torch.nn.Conv2d")
    if x is None:
        new = _factorize_conv(conv, rank, "replace_conv")
    else:
        inputs = check_part("replace_conv", INPUTS, f"the input of {name}",
                            _layer_inputs(model, name, x, "replace_conv"))
        new = _factorize_conv_data(conv, inputs, rank, n_samples, seed, "replace_conv")
    return _replace_submodule(model, name, new)


@validate_params(c=PositiveInt(), d=PositiveInt(), k=PAIR, rank=PositiveInt(), out_hw=PAIR)
def conv_costs(c: int, d: int, k, rank: int, out_hw) -> dict:
    """Parameters and MACs (per image) of a k×k conv (c → d) and of its rank-d′ decomposition.

    dense: ``d·c·k² + d`` params, ``d·c·k²·H·W`` MACs; decomposed:
    ``d′·c·k² + d·d′ + d`` params, ``d′·(c·k² + d)·H·W`` MACs, with H×W the
    output size (``out_hw``; an int means square). ``k`` is an int or (kh, kw).

    >>> conv_costs(20, 50, 5, 10, 8)    # LeNet-5 conv2 (8×8 output) at d′ = 10
    {'dense_params': 25050, 'lowrank_params': 5550, 'dense_macs': 1600000, 'lowrank_macs': 352000}

    Taught in chapter 07, "Low-rank approximation".
    """
    kh, kw = _pair("conv_costs", "k", k)
    h, w = _pair("conv_costs", "out_hw", out_hw)
    ckk = c * kh * kw
    rank = _check_rank(rank, min(d, ckk))
    return {"dense_params": d * ckk + d, "lowrank_params": rank * ckk + d * rank + d,
            "dense_macs": d * ckk * h * w, "lowrank_macs": rank * (ckk + d) * h * w}


@validate_params(convs=ListOf(CONV), target_macs_ratio=Interval(float, 0, 1, closed="right"), out_hw=ListOf(PAIR),
                 method=Options(("energy", "uniform")), spectra=ListOf(Tensor(ndim=1), nonempty=False, optional=True))
def select_ranks(convs: Sequence[nn.Conv2d], target_macs_ratio: float, out_hw: Sequence, *,
                 method: str = "energy", spectra: Sequence | None = None) -> list[int]:
    """Ranks d′ for several conv layers so that the decomposed MACs ≤ ratio × dense MACs.

    Parameters
    ----------
    convs : sequence of nn.Conv2d
    target_macs_ratio : float in (0, 1]
        Budget: Σ decomposed MACs ≤ ``target_macs_ratio`` × Σ dense MACs of ``convs``.
    out_hw : sequence of int or (H, W), one per conv
        Output size of each layer (MACs scale with it).
    method : {"energy", "uniform"}
        ``"uniform"``: the same fraction f of each layer's full rank
        ``min(d, c·k·k)``, ``d′ = max(1, ⌊f·full⌋)``, with the largest f that
        fits. ``"energy"``: Zhang et al.'s greedy selection maximising
        ``Π_l Σ_{a ≤ d′_l} σ_{l,a}`` (the product of the layers' kept
        energies): start from full rank and repeatedly drop the one trailing
        eigenvalue, in any layer, whose removal costs the least log-energy
        per MAC saved, until the budget is met. MACs are counted exactly,
        ``d′·(c·k² + d)·H·W`` (the paper approximates a layer's cost as
        ``d′/d`` of the original, neglecting the 1×1 conv).
    spectra : sequence of 1-D tensors, optional
        The σ_{l,a} of each layer, descending. Default: squared singular values
        of the d × (c·k·k) weight matrix (the weight-only energy); Zhang et al.
        use the response eigenvalues, :func:`response_spectrum`.

    Returns
    -------
    list of int, one rank per conv, in order.

    Taught in chapter 07, "Low-rank approximation".
    """
    for i, conv in enumerate(convs):
        _check_conv("select_ranks", conv, f"convs[{i}]")
    ratio = target_macs_ratio
    if len(out_hw) != len(convs):
        raise ValueError(f"select_ranks: out_hw must be a sequence of {len(convs)} output sizes (one per conv); "
                         f"got {out_hw!r}.")
    hws = [_pair("select_ranks", f"out_hw[{i}]", hw) for i, hw in enumerate(out_hw)]

    full = [_conv_max_rank(cv) for cv in convs]
    # MACs per unit of d′: (c·k² + d)·H·W; dense: d·c·k²·H·W
    unit = [(cv.weight[0].numel() + cv.out_channels) * h * w for cv, (h, w) in zip(convs, hws)]
    dense = sum(cv.weight.numel() * h * w for cv, (h, w) in zip(convs, hws))
    budget = ratio * dense
    if sum(unit) > budget:
        raise ValueError(f"select_ranks: target_macs_ratio must be at least {sum(unit) / dense:.4g} "
                         f"(rank 1 in every layer); got {target_macs_ratio!r}.")

    if method == "uniform":
        fractions = sorted({j / f for f in full for j in range(1, f + 1)}, reverse=True)
        for frac in fractions:
            ranks = [max(1, math.floor(frac * f + 1e-9)) for f in full]
            if sum(r * u for r, u in zip(ranks, unit)) <= budget:
                return ranks
        raise AssertionError("unreachable: rank 1 everywhere fits the budget")

    if spectra is None:
        spectra = [torch.linalg.svdvals(cv.weight.detach().reshape(cv.out_channels, -1).double()) ** 2
                   for cv in convs]
    elif len(spectra) != len(convs):
        raise ValueError(f"select_ranks: spectra must be a sequence of {len(convs)} 1-D tensors (one per conv); "
                         f"got {spectra!r}.")
    cums = []
    for sp, f in zip(spectra, full):
        sp = sp.double()
        if len(sp) < f or (sp < 0).any():
            raise ValueError(f"select_ranks: spectra must hold at least {f} non-negative values for a layer of "
                             f"full rank {f}; got {sp!r}.")
        cums.append(torch.cumsum(sp[:f], 0).tolist())   # cums[l][r-1] = energy kept at rank r
    ranks = list(full)
    cost = sum(r * u for r, u in zip(ranks, unit))
    while cost > budget:
        best, best_score = None, math.inf
        for l, (r, cum) in enumerate(zip(ranks, cums)):
            if r == 1:
                continue
            # log-energy lost by dropping eigenvalue r of layer l, per MAC saved
            lost = math.inf if cum[r - 2] <= 0 else math.log(cum[r - 1] / cum[r - 2])
            score = lost / unit[l]
            if best is None or score < best_score:
                best, best_score = l, score
        ranks[best] -= 1
        cost -= unit[best]
    return ranks


# -------------------------------------------------------- tensor train (Novikov)
def _tt_shape(func: str, in_factors: list[int], out_factors: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Declared FACTORS as tuples, as many input as output factors."""
    ins, outs = tuple(in_factors), tuple(out_factors)
    if len(ins) != len(outs):
        raise ValueError(f"{func}: out_factors must have as many factors as in_factors ({len(ins)}); "
                         f"got {out_factors!r}.")
    return ins, outs


def _tt_max_ranks(ins, outs) -> tuple[int, ...]:
    sizes = [n * m for n, m in zip(ins, outs)]
    return tuple(min(math.prod(sizes[:k]), math.prod(sizes[k:])) for k in range(len(sizes) + 1))


def _tt_ranks(func: str, ranks: int | list[int], ins, outs) -> tuple[int, ...]:
    """Full TT-rank tuple (1, r_1, …, r_{d−1}, 1) from declared TT_RANKS: an int or d+1 ints."""
    d, cap = len(ins), _tt_max_ranks(ins, outs)
    if isinstance(ranks, int):
        return tuple(min(ranks, c) for c in cap)           # an int: every inner rank, capped
    ranks = tuple(ranks)
    if len(ranks) != d + 1:
        raise ValueError(f"{func}: ranks must have {d + 1} entries (r_0 = 1, r_1 … r_{d - 1}, r_{d} = 1) "
                         f"for {d} cores; got {ranks!r}.")
    if ranks[0] != 1 or ranks[-1] != 1:
        raise ValueError(f"{func}: ranks must start and end with 1 (r_0 = r_d = 1); got {ranks!r}.")
    if any(r > c for r, c in zip(ranks, cap)):
        raise ValueError(f"{func}: ranks must lie between 1 and the maximal TT-ranks {cap}; got {ranks!r}.")
    return ranks


@validate_params(in_factors=FACTORS, out_factors=FACTORS)
def tt_max_ranks(in_factors: Sequence[int], out_factors: Sequence[int]) -> tuple[int, ...]:
    """The largest useful TT-ranks: ``r_k = min(Π_{i≤k} n_i m_i, Π_{i>k} n_i m_i)``.

    With these ranks a TT-matrix can represent any matrix exactly (TT-SVD).

    >>> tt_max_ranks((4, 7, 7, 4), (3, 5, 5, 4))
    (1, 12, 420, 16, 1)

    Taught in chapter 07, "Low-rank approximation".
    """
    return _tt_max_ranks(*_tt_shape("tt_max_ranks", in_factors, out_factors))


@validate_params(in_factors=FACTORS, out_factors=FACTORS, ranks=TT_RANKS)
def tt_params(in_factors: Sequence[int], out_factors: Sequence[int], ranks) -> int:
    """Number of TT-core entries ``Σ_k r_{k−1} n_k m_k r_k`` (no bias).

    ``ranks``: an int (every inner rank, capped at :func:`tt_max_ranks`) or
    the d+1 ranks ``(1, r_1, …, r_{d−1}, 1)``.

    >>> tt_params((4, 7, 7, 4), (3, 5, 5, 4), 8)     # LeNet-300-100 fc1, 784 × 300
    4704

    Taught in chapter 07, "Low-rank approximation".
    """
    ins, outs = _tt_shape("tt_params", in_factors, out_factors)
    r = _tt_ranks("tt_params", ranks, ins, outs)
    return sum(r[k] * n * m * r[k + 1] for k, (n, m) in enumerate(zip(ins, outs)))


@validate_params(in_factors=FACTORS, out_factors=FACTORS, ranks=TT_RANKS)
def tt_macs(in_factors: Sequence[int], out_factors: Sequence[int], ranks) -> int:
    """MACs per example of :meth:`TTLinear.forward` (core by core, bias excluded).

    Core k contracts ``r_{k−1}·n_k`` with a state of ``m_1…m_{k−1}·n_{k+1}…n_d``
    positions into ``m_k·r_k`` outputs: ``Π_{i<k} m_i · Π_{i>k} n_i · r_{k−1} n_k m_k r_k``.
    One core (d = 1) is a dense layer, ``in·out`` MACs.

    >>> tt_macs((784,), (300,), 1)
    235200

    Taught in chapter 07, "Low-rank approximation".
    """
    ins, outs = _tt_shape("tt_macs", in_factors, out_factors)
    r = _tt_ranks("tt_macs", ranks, ins, outs)
    return sum(math.prod(outs[:k]) * math.prod(ins[k + 1:]) * r[k] * ins[k] * outs[k] * r[k + 1]
               for k in range(len(ins)))


class TTLinear(nn.Module):
    """A fully connected layer whose weight is a tensor train (Novikov et al., NIPS 2015).

    With ``in_features = Π n_k`` and ``out_features = Π m_k`` the weight is

        ``W[(j_1…j_d), (i_1…i_d)] = G_1[:, i_1, j_1, :] G_2[:, i_2, j_2, :] ⋯ G_d[:, i_d, j_d, :]``

    with cores ``G_k`` of shape ``(r_{k−1}, n_k, m_k, r_k)``, ``r_0 = r_d = 1``,
    and multi-indices in row-major order (i_1 most significant), as
    ``x.reshape(batch, n_1, …, n_d)`` reads them. The forward pass never
    forms W: it contracts x with one core at a time (:func:`tt_macs`).

    Parameters
    ----------
    in_factors, out_factors : sequences of d positive ints
    ranks : int or sequence of d+1 ints
        ``(1, r_1, …, r_{d−1}, 1)``; an int sets every inner rank (capped at
        :func:`tt_max_ranks`).
    bias : bool
        Add a bias (initialised to zero).
    generator : torch.Generator, optional
        For the initial cores (default: torch's global RNG, as ``nn.Linear``).

    Initialisation: i.i.d. normal core entries with variance ``σ²`` such that
    every entry of W has He variance ``2 / in_features`` (W's entries are
    sums over ``Π r_k`` paths of products of d core entries, uncorrelated, so
    ``Var W = Π_k r_k · σ^{2d}``). Trains from scratch like a dense ReLU layer.

    For LeNet-300-100's fc1 (784 → 300) the book uses in (4, 7, 7, 4), out
    (3, 5, 5, 4): 784 = 28·28 = (4·7)·(7·4), so the first two input factors
    index the image row (coarse, fine) and the last two the column; the cores'
    sizes n_k·m_k = 12, 35, 35, 16 are balanced. At rank 8 that is 4,704
    core entries instead of 235,200 (50×).

    >>> layer = TTLinear((4, 7, 7, 4), (3, 5, 5, 4), 8)
    >>> [tuple(g.shape) for g in layer.cores], layer(torch.zeros(2, 784)).shape
    ([(1, 4, 3, 8), (8, 7, 5, 8), (8, 7, 5, 8), (8, 4, 4, 1)], torch.Size([2, 300]))

    Taught in chapter 07, "Low-rank approximation".
    """

    def __init__(self, in_factors: Sequence[int], out_factors: Sequence[int], ranks, *,
                 bias: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        self.in_factors, self.out_factors = _tt_shape(
            "TTLinear", check_part("TTLinear", FACTORS, "in_factors", in_factors),
            check_part("TTLinear", FACTORS, "out_factors", out_factors))
        self.ranks = _tt_ranks("TTLinear", check_part("TTLinear", TT_RANKS, "ranks", ranks), self.in_factors,
                               self.out_factors)
        check_part("TTLinear", Bool(), "bias", bias)
        check_part("TTLinear", Instance(torch.Generator, "a torch.Generator", optional=True), "generator", generator)
        self.in_features = math.prod(self.in_factors)
        self.out_features = math.prod(self.out_factors)
        d, r = len(self.in_factors), self.ranks
        # Var W = Π r_k · σ^{2d} = 2 / in_features  ⇒  σ² = (2 / (in · Π r_k))^{1/d}
        std = (2.0 / (self.in_features * math.prod(r[1:-1]))) ** (0.5 / d)
        self.cores = nn.ParameterList(
            nn.Parameter(torch.randn(r[k], n, m, r[k + 1], generator=generator) * std)
            for k, (n, m) in enumerate(zip(self.in_factors, self.out_factors)))
        self.bias = nn.Parameter(torch.zeros(self.out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"TTLinear: x must have {self.in_features} features in its last dimension; "
                             f"got shape {tuple(x.shape)}.")
        lead = x.shape[:-1]
        t = x.reshape(-1, 1, 1, self.in_features)           # (B, out_done=1, r_0=1, in_rest)
        for core, n in zip(self.cores, self.in_factors):
            b, o, r, rest = t.shape
            t = t.reshape(b, o, r, n, rest // n)              # split off i_k
            # (B, O, r_{k−1}, n_k, I') × (r_{k−1}, n_k, m_k, r_k) → (B, O, m_k, r_k, I')
            t = torch.einsum("borni,rnms->bomsi", t, core)
            t = t.reshape(b, o * core.shape[2], core.shape[3], rest // n)
        y = t.reshape(*lead, self.out_features)             # (…, out): r_d = 1, in_rest = 1
        return y if self.bias is None else y + self.bias

    def to_dense(self) -> torch.Tensor:
        """The full weight matrix (out_features, in_features), as ``nn.Linear.weight``."""
        t = self.cores[0].new_ones(1, 1, 1)                   # (in_done, out_done, r)
        for core in self.cores:
            a, b, _ = t.shape
            n, m, s = core.shape[1:]
            # (N, M, r) × (r, n, m, s) → (N, n, M, m, s): i_k, j_k appended as least significant
            t = torch.einsum("xyr,rnms->xnyms", t, core).reshape(a * n, b * m, s)
        return t[..., 0].T

    @classmethod
    def from_dense(cls, weight, in_factors: Sequence[int], out_factors: Sequence[int], ranks, *,
                   bias=None) -> "TTLinear":
        """A TTLinear approximating ``weight`` (out, in) by TT-SVD (Oseledets 2011).

        The weight is reshaped to the d-way tensor with modes ``(i_k, j_k)``
        and split core by core with truncated SVDs; with :func:`tt_max_ranks`
        the result is exact (up to rounding), with smaller ranks it is a
        quasi-optimal approximation. ``bias`` (out,) is copied if given (zero
        otherwise). Parameters are in torch's default dtype; the SVDs run in float64.
        """
        func = "TTLinear.from_dense"
        weight = check_part(func, Tensor(ndim=2), "weight", weight)
        ins, outs = _tt_shape(func, check_part(func, FACTORS, "in_factors", in_factors),
                              check_part(func, FACTORS, "out_factors", out_factors))
        if math.prod(outs) != weight.shape[0] or math.prod(ins) != weight.shape[1]:
            raise ValueError(f"{func}: in_factors and out_factors must multiply to the weight's shape "
                             f"(out, in) = {tuple(weight.shape)}; got in_factors {in_factors!r} "
                             f"(product {math.prod(ins)}), out_factors {out_factors!r} "
                             f"(product {math.prod(outs)}).")
        # a private generator: the random initial cores are overwritten, so leave the global RNG alone
        layer = cls(ins, outs, ranks, bias=True, generator=torch.Generator())
        d, r = len(ins), layer.ranks
        # W (out, in) → (m_1…m_d, n_1…n_d) → (n_1, m_1, n_2, m_2, …)
        t = weight.detach().to(torch.float64).reshape(*outs, *ins)
        t = t.permute(*[p for k in range(d) for p in (d + k, k)])
        cores = []
        rest = t.reshape(1, -1)
        for k in range(d):
            rest = rest.reshape(r[k] * ins[k] * outs[k], -1)
            if k == d - 1:
                cores.append(rest.reshape(r[k], ins[k], outs[k], 1))
                break
            u, s, vh = torch.linalg.svd(rest, full_matrices=False)
            u, rest = u[:, :r[k + 1]], s[:r[k + 1], None] * vh[:r[k + 1]]   # (r_k, remaining modes)
            if u.shape[1] < r[k + 1]:                        # a rank above what this step has:
                pad = r[k + 1] - u.shape[1]                  # zero-pad (adds nothing to W)
                u = torch.nn.functional.pad(u, (0, pad))
                rest = torch.nn.functional.pad(rest, (0, 0, 0, pad))
            cores.append(u.reshape(r[k], ins[k], outs[k], r[k + 1]))
        with torch.no_grad():
            for param, core in zip(layer.cores, cores):
                param.copy_(core)
            if bias is not None:
                bias = check_part(func, Tensor(ndim=1), "bias", bias)
                if bias.shape[0] != layer.out_features:
                    raise ValueError(f"{func}: bias must have {layer.out_features} entries; got shape "
                                     f"{tuple(bias.shape)}.")
                layer.bias.copy_(bias)
        return layer

    def extra_repr(self) -> str:
        return (f"in_factors={self.in_factors}, out_factors={self.out_factors}, ranks={self.ranks}, "
                f"bias={self.bias is not None}")


# ------------------------------------------------------------- experiments
@validate_params(model=Module(), layer_name=NAME, ranks=ListOf(PositiveInt()),
                 test_split=Instance(Split, "an effdl.data.Split (from effdl.data.load_mnist)"))
def svd_rank_sweep(model: nn.Module, layer_name: str, ranks: Sequence[int], test_split) -> list[dict]:
    """Accuracy of ``model`` with FC layer ``layer_name`` truncated to each rank, no fine-tuning.

    Returns one dict per rank, in order: ``rank``, ``params`` (whole model),
    ``layer_params`` (the factorized layer) and ``acc`` (top-1 %, from
    :func:`effdl.train.evaluate` on ``test_split``). ``model`` is not modified.

    Taught in chapter 07, "Low-rank approximation".
    """
    linear = _get_submodule("svd_rank_sweep", model, layer_name, nn.Linear, "torch.nn.Linear", "layer_name")
    _finite("svd_rank_sweep", f"{layer_name}.weight", linear.weight)
    max_rank = min(linear.weight.shape)
    ranks = [_check_rank(r, max_rank, "ranks") for r in ranks]
    results = []
    for rank in ranks:
        new = replace_linear(model, layer_name, rank)
        layer = new.get_submodule(layer_name)
        results.append({"rank": rank,
                        "params": sum(p.numel() for p in new.parameters()),
                        "layer_params": sum(p.numel() for p in layer.parameters()),
                        "acc": evaluate(new, test_split)})
    return results
