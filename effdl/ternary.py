"""Binary and ternary weights: BinaryConnect-style binary, TWN and trained ternary quantization (TTQ).

Taught in chapter 6, "Binary and ternary nets". Three ways to train a
network whose weights take two or three values, each kept apart as a pure
quantiser of a tensor and applied to a model's Linear / Conv2d layers by a
reparametrisation (``torch.nn.utils.parametrize``, as ``effdl.pruning``
applies masks): the layer keeps a full-precision **latent** weight, every
forward pass computes with its quantised version, and the backward pass
sends a gradient to the latent weight (a straight-through estimator, STE).

- **binary** (:func:`binary_weights`) — ``α · sign(w)`` with one scale per
  layer, ``α = mean |w|`` (the scale of Rastegari et al.'s binary-weight
  networks, ECCV 2016), trained as BinaryConnect (Courbariaux, Bengio &
  David, NIPS 2015): the quantiser is treated as the identity in the
  backward pass. BinaryConnect binarises to ±1 and clips its latent weights
  to [−1, 1]; with a per-layer scale the latent weights keep their trained
  size, so we do not clip. ``sign(0)`` counts as +1, so there are exactly
  two values.
- **twn** (:func:`twn_weights`) — Li & Liu, *Ternary Weight Networks*
  (2016): threshold ``Δ = 0.7 · E|w|``, weights above it in magnitude become
  ``±α`` with one scale ``α = mean{|w| : |w| > Δ}`` (the least-squares scale
  for that support), the rest 0. STE to the latent weights.
- **ttq** (:func:`ttq_weights`) — Zhu, Han, Mao & Dally, *Trained Ternary
  Quantization* (ICLR 2017): latent weights normalised to [−1, 1] (divided
  by their largest magnitude, as the paper does), threshold
  ``Δ = t · max|w̃|`` with ``t = 0.05``, and two **learned** scales per
  layer::

      w_t = +Wp   if w̃ >  Δ          (the set I_p)
             0    if |w̃| ≤ Δ
            −Wn   if w̃ < −Δ          (the set I_n)

  with the paper's gradient rules (:func:`ttq_gradients`): the scales get
  ``∂L/∂Wp = Σ_{I_p} ∂L/∂w_t`` and ``∂L/∂Wn = −Σ_{I_n} ∂L/∂w_t`` (the
  paper's Eq. 6 prints the second sum without the minus sign, i.e. the
  gradient with respect to the value −Wn; the sign here is the chain rule's
  for ``w_t = −Wn`` and what the authors' TensorFlow code computes), and the
  latent weights a *scaled* gradient, ``Wp · ∂L/∂w_t`` on I_p, ``1 ·
  ∂L/∂w_t`` on the zeros and ``Wn · ∂L/∂w_t`` on I_n (Eq. 7-8).

  The paper trains ResNets with batch normalisation and starts both scales
  at 1. LeNets have no normalisation to absorb a change of scale, so when we
  start from a trained full-precision model we initialise ``Wp`` and ``Wn``
  to the mean magnitude of the original weights in I_p and I_n (the
  least-squares fit of each side): the ternary layer starts close to the
  full-precision one.

**Which layers.** :func:`ternarize` quantises every Linear and Conv2d layer
by default (:func:`layer_names`). The TTQ paper keeps the first convolution
and the last fully connected layer in full precision (:func:`paper_layers`
lists the rest); in its ResNets and AlexNet those layers are a small part of
the weights. In LeNet-300-100 the first layer holds 88 % of them, so keeping
it would leave the model barely smaller; the chapter compares both
policies. :func:`model_size` counts the bytes exactly either way: 1 bit per
binary weight, 2 bits per ternary weight (three values need ⌈log2 3⌉ = 2
bits; packing five ternary digits per byte would give 1.6), 32 bits per
scale, and 32 bits for every bias and every weight left in full precision.

Training reuses :func:`effdl.train.fit` (:func:`train`); a
:class:`WeightHistory` passed as ``after_step`` records Wp, Wn and the
fractions of positive, zero and negative weights per layer as training goes.
:func:`freeze` makes the quantisation permanent (a plain model holding the
two or three values, saved with ``effdl.zoo.save_checkpoint``), and
:func:`export` returns what a deployment stores: int8 codes in {−1, 0, +1}
and the scales.

Longer than 600 lines because binary, TWN and TTQ share one quantizer interface and one
training loop, and chapter 6 compares them side by side.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from ._validate import _fail
from .data import Split
from .train import History, fit
from .validation import (Bool, Instance, Interval, ListOf, Module, OneOf, Options, PositiveInt, Seed, Tensor,
                         check_part, validate_params)

__all__ = [
    "METHODS", "TTQ_T", "TWN_FACTOR", "BITS_PER_WEIGHT", "SCALES_PER_LAYER",
    "binary_weights", "twn_threshold", "twn_weights", "ttq_threshold", "ttq_weights", "ttq_gradients",
    "ternary_codes", "value_fractions", "scales_of",
    "layer_names", "paper_layers", "ternarize", "ternarized_copy", "quantizers", "layer_stats",
    "WeightHistory", "train", "freeze", "export", "model_size",
]

METHODS = ("binary", "twn", "ttq")
TTQ_T = 0.05          # Zhu et al.: t = 0.05 on CIFAR-10 and ImageNet
TWN_FACTOR = 0.7      # Li & Liu: Δ ≈ 0.7 · E|w| (normally distributed weights)
BITS_PER_WEIGHT = {"binary": 1, "twn": 2, "ttq": 2}
SCALES_PER_LAYER = {"binary": 1, "twn": 1, "ttq": 2}
QUANTIZABLE_TYPES = (nn.Linear, nn.Conv2d)


# ------------------------------------------------------------------ constraints
WEIGHT = Tensor(convert=False)                              # a floating-point torch.Tensor, finite, non-empty
SCALE = OneOf(Interval(float, 0, None, closed="neither"), Tensor(convert=False))   # > 0; a tensor lets autograd flow
T_RANGE = Interval(float, 0, 1, closed="neither")   # TTQ's threshold factor t
FACTOR = Interval(float, 0, None, closed="neither")
METHOD = Options(METHODS)
LAYERS = ListOf(Instance(str, "a layer name"), optional=True)


def _nonzero(func: str, weight: torch.Tensor, name: str = "weight") -> torch.Tensor:
    """A weight with a non-zero entry (an all-zero one has scale 0: nothing to quantise)."""
    if not bool((weight != 0).any()):
        raise ValueError(f"{func}: {name} must have a non-zero entry (a scale of 0 quantises nothing); "
                         f"got all zeros.")
    return weight


def _scale(func: str, name: str, value) -> torch.Tensor:
    """A checked SCALE as a 0-d tensor (a tensor is kept, so autograd can flow)."""
    if not isinstance(value, torch.Tensor):
        return torch.tensor(value)
    if value.numel() != 1:
        raise TypeError(f"{func}: {name} must be a positive number or a one-element float tensor; "
                        f"got a tensor of shape {tuple(value.shape)}.")
    if float(value.detach()) <= 0:
        _fail(ValueError, name, "> 0", float(value.detach()))
    return value.reshape(())


# ------------------------------------------------------------------ pure quantisers
def _binary_core(w: torch.Tensor) -> torch.Tensor:
    alpha = w.abs().mean()                                   # α = E|w|
    return torch.where(w >= 0, alpha, -alpha)                # α · sign(w), sign(0) = +1


@validate_params(weight=WEIGHT)
def binary_weights(weight: torch.Tensor) -> torch.Tensor:
    """``α · sign(weight)`` with ``α = mean |weight|`` and ``sign(0) = +1``: exactly two values ±α.

    >>> binary_weights(torch.tensor([0.5, -1.5, 0.0, 2.0]))
    tensor([ 1., -1.,  1.,  1.])

    Taught in chapter 06, "Binary and ternary nets".
    """
    return _binary_core(_nonzero("binary_weights", weight).detach())


def _twn_core(w: torch.Tensor, factor: float) -> torch.Tensor:
    delta = factor * w.abs().mean()                          # Δ = 0.7 · E|w|
    keep = w.abs() > delta
    alpha = w.abs()[keep].mean() if keep.any() else w.new_zeros(())   # α = mean{|w| : |w| > Δ}
    return torch.where(keep, torch.sign(w) * alpha, torch.zeros_like(w))


@validate_params(weight=WEIGHT, factor=FACTOR)
def twn_threshold(weight: torch.Tensor, factor: float = TWN_FACTOR) -> float:
    """TWN's threshold ``Δ = factor · mean |weight|`` (``factor`` 0.7 in Li & Liu).

    Taught in chapter 06, "Binary and ternary nets".
    """
    return float(factor * _nonzero("twn_threshold", weight).detach().abs().mean())


@validate_params(weight=WEIGHT, factor=FACTOR)
def twn_weights(weight: torch.Tensor, factor: float = TWN_FACTOR) -> torch.Tensor:
    """TWN: ``±α`` where ``|w| > Δ = factor · E|w|``, else 0; ``α = mean{|w| : |w| > Δ}``.

    ``α`` minimises ``‖w − α·codes‖²`` for that choice of zeros. At most three
    values {−α, 0, α}; ``weight`` is left unchanged.

    >>> twn_weights(torch.tensor([1.0, -0.2, 3.0, -2.0]))   # Δ = 0.7 · 1.55 = 1.085
    tensor([ 0.0000,  0.0000,  2.5000, -2.5000])

    Taught in chapter 06, "Binary and ternary nets".
    """
    return _twn_core(_nonzero("twn_weights", weight).detach(), factor)


@validate_params(weight=WEIGHT, t=T_RANGE)
def ttq_threshold(weight: torch.Tensor, t: float = TTQ_T) -> float:
    """TTQ's threshold ``Δ = t · max |weight|`` (``t`` = 0.05 in Zhu et al.).

    Taught in chapter 06, "Binary and ternary nets".
    """
    return float(t * _nonzero("ttq_threshold", weight).detach().abs().max())


def _ttq_masks(w: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    delta = t * w.abs().max()                                # Δ = t · max|w̃|
    return w > delta, w < -delta                             # I_p, I_n


def _ttq_gradients_core(grad, pos, neg, wp, wn):
    zero = ~(pos | neg)
    # ∂L/∂w̃ = Wp·g on I_p, 1·g on the zeros, Wn·g on I_n        (Zhu et al., Eq. 7-8)
    grad_latent = grad * (pos * wp + neg * wn + zero)
    grad_wp = (grad * pos).sum()                             # ∂L/∂Wp =  Σ_{I_p} g   (Eq. 6)
    grad_wn = -(grad * neg).sum()                            # ∂L/∂Wn = −Σ_{I_n} g   (w_t = −Wn there)
    return grad_latent, grad_wp, grad_wn


class _TTQFunction(torch.autograd.Function):
    """w_t = Wp·[w̃ > Δ] − Wn·[w̃ < −Δ] forward; the paper's rules backward."""

    @staticmethod
    def forward(ctx, latent, wp, wn, t):
        pos, neg = _ttq_masks(latent, t)
        ctx.save_for_backward(pos, neg, wp, wn)
        return pos * wp - neg * wn                           # (same shape as latent)

    @staticmethod
    def backward(ctx, grad):
        pos, neg, wp, wn = ctx.saved_tensors
        g_latent, g_wp, g_wn = _ttq_gradients_core(grad, pos, neg, wp, wn)
        return g_latent, g_wp.reshape(wp.shape), g_wn.reshape(wn.shape), None


@validate_params(weight=WEIGHT, wp=SCALE, wn=SCALE, t=T_RANGE)
def ttq_weights(weight: torch.Tensor, wp, wn, t: float = TTQ_T) -> torch.Tensor:
    """TTQ's ternary weights: ``+wp`` above ``Δ = t · max|weight|``, ``−wn`` below ``−Δ``, else 0.

    Differentiable: the backward pass follows Zhu et al.'s rules
    (:func:`ttq_gradients`) for ``weight`` (the latent weights) and for
    ``wp``, ``wn`` when they are tensors with ``requires_grad``.

    >>> ttq_weights(torch.tensor([0.9, -0.01, -0.5, 0.04, 1.0]), 0.7, 0.4, t=0.05)
    tensor([ 0.7000,  0.0000, -0.4000,  0.0000,  0.7000])

    Taught in chapter 06, "Binary and ternary nets".
    """
    weight = _nonzero("ttq_weights", weight)
    wp, wn = _scale("ttq_weights", "wp", wp).to(weight), _scale("ttq_weights", "wn", wn).to(weight)
    return _TTQFunction.apply(weight, wp, wn, t)


@validate_params(weight=WEIGHT, grad=Tensor(convert=False), wp=SCALE, wn=SCALE, t=T_RANGE)
def ttq_gradients(weight: torch.Tensor, grad: torch.Tensor, wp, wn, t: float = TTQ_T):
    """Zhu et al.'s gradient rules: ``(∂L/∂w̃, ∂L/∂Wp, ∂L/∂Wn)`` given ``grad = ∂L/∂w_t``.

    ``weight``: the latent weights w̃; ``grad``: the gradient of the loss
    with respect to the ternary weights, same shape. Returns the latent
    weights' scaled gradient (Wp·g on I_p, g on the zeros, Wn·g on I_n) and
    the two scales' gradients as floats (Σ over I_p, −Σ over I_n).

    Behind chapter 06, "Binary and ternary nets".
    """
    weight = _nonzero("ttq_gradients", weight).detach()
    if grad.shape != weight.shape:
        raise ValueError(f"ttq_gradients: grad must have the weight's shape {tuple(weight.shape)}; "
                         f"got {tuple(grad.shape)}.")
    wp, wn = float(_scale("ttq_gradients", "wp", wp)), float(_scale("ttq_gradients", "wn", wn))
    pos, neg = _ttq_masks(weight, t)
    g_latent, g_wp, g_wn = _ttq_gradients_core(grad.detach().to(weight), pos, neg, wp, wn)
    return g_latent, float(g_wp), float(g_wn)


@validate_params(weight=WEIGHT, delta=Interval(float, 0, None))
def ternary_codes(weight: torch.Tensor, delta: float) -> torch.Tensor:
    """int8 codes: +1 where ``weight > delta``, −1 where ``weight < −delta``, else 0.

    Behind chapter 06, "Binary and ternary nets".
    """
    weight = _nonzero("ternary_codes", weight).detach()
    return (weight > delta).to(torch.int8) - (weight < -delta).to(torch.int8)


@validate_params(weight=Tensor(convert=False, dtype=None))
def value_fractions(weight: torch.Tensor) -> tuple[float, float, float]:
    """Fractions of positive, zero and negative entries of ``weight`` (they sum to 1).

    Behind chapter 06, "Binary and ternary nets".
    """
    w, n = weight.detach(), weight.numel()
    return int((w > 0).sum()) / n, int((w == 0).sum()) / n, int((w < 0).sum()) / n


@validate_params(weight=Tensor(convert=False, dtype=None))
def scales_of(weight: torch.Tensor) -> tuple[float, float]:
    """``(Wp, Wn)`` of a quantised weight tensor (values in {−Wn, 0, +Wp}); 0.0 for a missing side.

    Reads the scales back from a frozen checkpoint. A tensor with more than
    one positive or more than one negative value is not ternary: ValueError.

    Behind chapter 06, "Binary and ternary nets".
    """
    values = torch.unique(weight.detach())
    pos, neg = values[values > 0], values[values < 0]
    if len(pos) > 1 or len(neg) > 1:
        raise ValueError(f"scales_of: weight must take at most the three values {{-Wn, 0, +Wp}}; got {len(values)} "
                         f"distinct values.")
    return (float(pos[0]) if len(pos) else 0.0), (float(-neg[0]) if len(neg) else 0.0)


# ------------------------------------------------------------------ parametrisations
class _StraightThrough(torch.autograd.Function):
    """Forward: the quantised values exactly; backward: the gradient passes to the latent weights unchanged.

    (``latent + (q − latent).detach()`` would do the same up to rounding, and
    then the weights would no longer take exactly two or three values.)
    """

    @staticmethod
    def forward(ctx, latent, quantized):
        return quantized.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Binary(nn.Module):
    """Parametrisation ``weight = α · sign(latent)``, identity gradient (STE) to the latent weights.

    Behind chapter 06, "Binary and ternary nets".
    """

    method = "binary"

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return _StraightThrough.apply(latent, _binary_core(latent.detach()))

    def scales(self, latent: torch.Tensor) -> tuple[float, float]:
        alpha = float(latent.detach().abs().mean())
        return alpha, alpha


class TWN(nn.Module):
    """Parametrisation ``weight = TWN(latent)`` (threshold ``factor · E|w|``), STE to the latent weights.

    Taught in chapter 06, "Binary and ternary nets".
    """

    method = "twn"

    def __init__(self, factor: float = TWN_FACTOR):
        super().__init__()
        self.factor = check_part("TWN", FACTOR, "factor", factor)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return _StraightThrough.apply(latent, _twn_core(latent.detach(), self.factor))

    def scales(self, latent: torch.Tensor) -> tuple[float, float]:
        q = _twn_core(latent.detach(), self.factor)
        alpha = float(q.abs().max())
        return alpha, alpha


class TTQ(nn.Module):
    """Parametrisation ``weight = ttq(latent; Wp, Wn, t)`` with trainable ``wp`` and ``wn``.

    ``wp``, ``wn`` are ``nn.Parameter`` scalars of this module, so they
    appear in ``model.parameters()`` and any optimizer trains them.

    Taught in chapter 06, "Binary and ternary nets".
    """

    method = "ttq"

    def __init__(self, wp: float, wn: float, t: float = TTQ_T):
        super().__init__()
        self.t = check_part("TTQ", T_RANGE, "t", t)
        positive = Interval(float, 0, None, closed="neither")
        self.wp = nn.Parameter(torch.tensor(check_part("TTQ", positive, "wp", wp)))
        self.wn = nn.Parameter(torch.tensor(check_part("TTQ", positive, "wn", wn)))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return _TTQFunction.apply(latent, self.wp.to(latent), self.wn.to(latent), self.t)

    def scales(self, latent: torch.Tensor) -> tuple[float, float]:
        return float(self.wp.detach()), float(self.wn.detach())

    def extra_repr(self) -> str:
        return f"t={self.t}"


_QUANTIZERS = (Binary, TWN, TTQ)


# ------------------------------------------------------------------ module plumbing
@validate_params(model=Module())
def layer_names(model: nn.Module) -> list[str]:
    """Names of ``model``'s Linear and Conv2d layers, in definition order (what :func:`ternarize` quantises).

    Behind chapter 06, "Binary and ternary nets".
    """
    return _layer_names(model, "layer_names")


def _layer_names(model: nn.Module, func: str) -> list[str]:
    names = [n for n, m in model.named_modules() if isinstance(m, QUANTIZABLE_TYPES)]
    if not names:
        raise ValueError(f"{func}: model must contain a Linear or Conv2d layer; got {type(model).__name__}.")
    return names


@validate_params(model=Module())
def paper_layers(model: nn.Module) -> list[str]:
    """The TTQ paper's policy: every layer of :func:`layer_names` but the first and the last.

    Taught in chapter 06, "Binary and ternary nets".
    """
    names = _layer_names(model, "paper_layers")
    if len(names) < 3:
        raise ValueError(f"paper_layers: model must have at least 3 Linear/Conv2d layers to keep the first and last; "
                         f"got {names!r}.")
    return names[1:-1]


def _quantizer(module: nn.Module):
    if parametrize.is_parametrized(module, "weight"):
        for p in module.parametrizations["weight"]:
            if isinstance(p, _QUANTIZERS):
                return p
    return None


def _latent(module: nn.Module) -> torch.Tensor:
    return module.parametrizations["weight"].original


@validate_params(model=Module(), method=METHOD, layers=LAYERS, t=T_RANGE, factor=FACTOR)
def ternarize(model: nn.Module, method: str = "ttq", *, layers: Sequence[str] | None = None,
              t: float = TTQ_T, factor: float = TWN_FACTOR) -> nn.Module:
    """Quantise the weights of ``model``'s layers in place by ``method``; return ``model``.

    Parameters
    ----------
    method : {"binary", "twn", "ttq"}
    layers : list of str, optional
        Layer names from :func:`layer_names` (default: all of them;
        :func:`paper_layers` gives the TTQ paper's choice).
    t : float
        TTQ's threshold factor, Δ = t · max|w̃|.
    factor : float
        TWN's threshold factor, Δ = factor · E|w|.

    For TTQ the latent weights are divided by their largest magnitude
    (normalised to [−1, 1]) and ``Wp``, ``Wn`` start at the mean magnitude of
    the current weights above ``Δ`` and below ``−Δ``, so the quantised layer
    starts close to the full-precision one. Biases stay in full precision.

    Behind chapter 06, "Binary and ternary nets".
    """
    names = _layer_names(model, "ternarize")
    chosen = list(names) if layers is None else _check_layers(layers, names, "ternarize")
    starts = {}
    for name in chosen:                                      # check everything before changing anything
        module = model.get_submodule(name)
        if _quantizer(module) is not None:
            raise ValueError(f"ternarize: layers must not be quantised already; got {name!r}, which is.")
        weight = check_part("ternarize", WEIGHT, f"{name}.weight", module.weight.detach())
        _nonzero("ternarize", weight, f"{name}.weight")
        if method == "ttq":
            pos, neg = _ttq_masks(weight, t)
            if not pos.any() or not neg.any():
                raise ValueError(f"ternarize: {name}.weight must have entries above Δ and below −Δ to start Wp and "
                                 f"Wn; "
                                 f"got {int(pos.sum())} above and {int(neg.sum())} below.")
            # Wp, Wn start at the least-squares fit of each side: mean |w| over I_p and over I_n
            starts[name] = (float(weight[pos].abs().mean()), float(weight[neg].abs().mean()),
                            float(weight.abs().max()))
    for name in chosen:
        module = model.get_submodule(name)
        if method == "binary":
            parametrize.register_parametrization(module, "weight", Binary(), unsafe=True)
        elif method == "twn":
            parametrize.register_parametrization(module, "weight", TWN(factor), unsafe=True)
        else:
            wp, wn, peak = starts[name]
            parametrize.register_parametrization(module, "weight", TTQ(wp, wn, t), unsafe=True)
            with torch.no_grad():
                _latent(module).div_(peak)                   # w̃ = w / max|w| ∈ [−1, 1]
    return model


def _check_layers(layers: list[str], names: list[str], func: str) -> list[str]:
    """``layers`` (declared LAYERS: a non-empty list of strings) against the model's layer names."""
    for n in layers:
        if n not in names:
            raise ValueError(f"{func}: layers must be names from {names}; got {n!r}.")
    if len(set(layers)) != len(layers):
        raise ValueError(f"{func}: layers must not repeat a name; got {list(layers)!r}.")
    return list(layers)


@validate_params(model=Module(), method=METHOD, layers=LAYERS, t=T_RANGE, factor=FACTOR)
def ternarized_copy(model: nn.Module, method: str = "ttq", *, layers: Sequence[str] | None = None,
                    t: float = TTQ_T, factor: float = TWN_FACTOR) -> nn.Module:
    """A deep copy of ``model`` quantised by :func:`ternarize` (same keywords); ``model`` is untouched.

    Taught in chapter 06, "Binary and ternary nets".
    """
    return ternarize(copy.deepcopy(model), method, layers=layers, t=t, factor=factor)


@validate_params(model=Module())
def quantizers(model: nn.Module) -> dict[str, nn.Module]:
    """``{layer name: quantiser}`` of the quantised layers of ``model`` (empty if none).

    Behind chapter 06, "Binary and ternary nets".
    """
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, QUANTIZABLE_TYPES):
            q = _quantizer(module)
            if q is not None:
                out[name] = q
    return out


@validate_params(model=Module())
@torch.no_grad()
def layer_stats(model: nn.Module) -> dict[str, dict[str, float]]:
    """Per quantised layer: ``wp``, ``wn`` and the fractions ``pos``, ``zero``, ``neg`` of its weights.

    Works on a model with quantisers attached (:func:`ternarize`) and on a
    frozen one (:func:`freeze`, or a checkpoint), where the scales are read
    from the values and the layers reported are those whose weights take at
    most one positive and one negative value (layers left in full precision
    are skipped).

    Behind chapter 06, "Binary and ternary nets".
    """
    qs = quantizers(model)
    names = list(qs) if qs else [n for n in _layer_names(model, "layer_stats")
                                 if _is_quantized(model.get_submodule(n).weight)]
    out = {}
    for name in names:
        module = model.get_submodule(name)
        weight = module.weight
        wp, wn = qs[name].scales(_latent(module)) if name in qs else scales_of(weight)
        pos, zero, neg = value_fractions(weight)
        out[name] = {"wp": wp, "wn": wn, "pos": pos, "zero": zero, "neg": neg}
    return out


def _is_quantized(weight: torch.Tensor) -> bool:
    values = torch.unique(weight.detach())
    return int((values > 0).sum()) <= 1 and int((values < 0).sum()) <= 1


class WeightHistory:
    """Records Wp, Wn and the positive/zero/negative fractions of each quantised layer during training.

    Pass it as ``after_step`` to :func:`effdl.train.fit` (or use
    :func:`train`); it is called after every optimizer step and records every
    ``every``-th step. ``record(model)`` adds a point by hand (step 0 before
    training). :meth:`as_dict` gives ``{"step": [...], "layers": {name:
    {"wp": [...], "wn": [...], "pos": [...], "zero": [...], "neg": [...]}}}``.

    Behind chapter 06, "Binary and ternary nets".
    """

    def __init__(self, every: int = 10):
        self.every = check_part("WeightHistory", PositiveInt(), "every", every)
        self.steps: list[int] = []
        self.layers: dict[str, dict[str, list[float]]] = {}
        self._step = 0

    def record(self, model: nn.Module) -> None:
        self.steps.append(self._step)
        for name, stats in layer_stats(model).items():
            row = self.layers.setdefault(name, {k: [] for k in ("wp", "wn", "pos", "zero", "neg")})
            for key, value in stats.items():
                row[key].append(value)

    def __call__(self, model: nn.Module) -> None:
        self._step += 1
        if self._step % self.every == 0:
            self.record(model)

    def as_dict(self, digits: int = 6) -> dict:
        r = lambda v: round(v, digits)  # noqa: E731 - JSON-friendly, stable numbers
        return {"step": list(self.steps), "every": self.every,
                "layers": {n: {k: [r(v) for v in vs] for k, vs in row.items()} for n, row in self.layers.items()}}


@validate_params(model=Module(), train_split=Instance(Split, "an effdl.data.Split"), record_every=PositiveInt(),
                 epochs=Interval(int, 0, None), lr=Interval(float, 0, None, closed="neither"),
                 optimizer=Options(("sgd", "adam")), momentum=Interval(float, 0, 1, closed="left"),
                 weight_decay=Interval(float, 0, None), batch_size=PositiveInt(),
                 val=Instance(Split, "an effdl.data.Split", optional=True), keep_best=Bool(), seed=Seed(),
                 device=Instance((torch.device, str), "a torch.device or a device name", optional=True),
                 show_progress=Bool(optional=True))
def train(model: nn.Module, train_split: Split, *, record_every: int = 10, epochs: int = 10, lr: float = 0.05,
          optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0, batch_size: int = 64,
          val: Split | None = None, keep_best: bool = True, seed: int = 0, device: torch.device | str | None = None,
          show_progress: bool | None = None) -> tuple[History, WeightHistory]:
    """Train a quantised ``model`` (:func:`ternarize`) with :func:`effdl.train.fit`; record its weights.

    The keywords after ``record_every`` are ``fit``'s, with its defaults
    (``after_step`` is the recorder). Returns fit's History and the
    :class:`WeightHistory`, which starts with a point at step 0. With
    ``val`` and ``keep_best`` the model ends at its best validation epoch,
    while the history covers every step.

    Taught in chapter 06, "Binary and ternary nets".
    """
    if not quantizers(model):
        raise ValueError("train: model must have quantised layers (call effdl.ternary.ternarize first); got none.")
    if isinstance(device, str):
        try:
            device = torch.device(device)
        except RuntimeError:
            _fail(ValueError, "device", "a device name torch knows ('cpu', 'cuda', …)", device)
    history = WeightHistory(record_every)
    history.record(model)
    fit_history = fit(model, train_split, epochs=epochs, lr=lr, optimizer=optimizer, momentum=momentum,
                      weight_decay=weight_decay, batch_size=batch_size, val=val, keep_best=keep_best, seed=seed,
                      device=device, after_step=history, show_progress=show_progress)
    return fit_history, history


@validate_params(model=Module())
def freeze(model: nn.Module) -> nn.Module:
    """Make the quantisation permanent in place: plain weights holding the binary/ternary values.

    Behind chapter 06, "Binary and ternary nets".
    """
    for name in quantizers(model):
        module = model.get_submodule(name)
        # a class of its own first, so freezing a deep copy leaves the original intact (as pruning.remove_masks)
        cls = module.__class__
        module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


@validate_params(model=Module())
@torch.no_grad()
def export(model: nn.Module) -> dict[str, dict[str, Any]]:
    """What a deployment stores per quantised layer: ``codes`` (int8 in {−1, 0, +1}), ``wp``, ``wn``.

    ``codes`` times the scales gives the weights back exactly:
    ``w = wp · (codes == 1) − wn · (codes == −1)``. Works on a model with
    quantisers attached and on a frozen one.

    Taught in chapter 06, "Binary and ternary nets".
    """
    stats = layer_stats(model)
    out = {}
    for name, s in stats.items():
        w = model.get_submodule(name).weight.detach()
        out[name] = {"codes": (w > 0).to(torch.int8) - (w < 0).to(torch.int8), "wp": s["wp"], "wn": s["wn"]}
    return out


# ------------------------------------------------------------------ size accounting
@validate_params(model=Module(), method=METHOD, layers=LAYERS)
def model_size(model: nn.Module, method: str, *, layers: Sequence[str] | None = None) -> dict:
    """Bytes to store ``model`` with ``layers`` quantised by ``method``, counted exactly.

    Quantised layers: ``BITS_PER_WEIGHT[method]`` bits per weight (1 binary,
    2 ternary), rounded up to whole bytes per layer, plus
    ``SCALES_PER_LAYER[method]`` fp32 scales. Everything else — biases, the
    weights of layers left in full precision, any other parameter — 32 bits.
    ``layers`` defaults to every Linear/Conv2d layer. Works on a plain or a
    quantised model (the latent weights and the scales are not counted as
    parameters of the full-precision model).

    Returns ``{"method", "layers": [per quantised layer: name, weights,
    bits_per_weight, weight_bytes, scale_bytes], "fp32_bytes" (the model in
    fp32), "full_precision_bytes" (what stays fp32: biases, unquantised
    layers), "bytes" (the total), "ratio" (fp32_bytes / bytes)}``.

    >>> model_size(nn.Linear(100, 10), "ttq")["bytes"]    # 1,000 × 2 bits + 2 scales + 10 fp32 biases
    298

    Taught in chapter 06, "Binary and ternary nets".
    """
    names = _layer_names(model, "model_size")
    chosen = list(names) if layers is None else _check_layers(layers, names, "model_size")
    fp32_params, other_bytes, rows = 0, 0, []
    latent = "parametrizations.weight.original"
    for pname, p in model.named_parameters():
        if pname == latent or pname.endswith("." + latent):
            mod_name, is_weight = pname[: -len(latent)].rstrip("."), True
        elif pname.startswith("parametrizations.") or ".parametrizations." in pname:
            continue                                         # TTQ's Wp, Wn: not parameters of the fp model
        else:
            mod_name, _, leaf = pname.rpartition(".")
            is_weight = leaf == "weight" and mod_name in names
        fp32_params += p.numel()
        if is_weight and mod_name in chosen:
            bits = BITS_PER_WEIGHT[method]
            rows.append({"name": mod_name, "weights": p.numel(), "bits_per_weight": bits,
                         "weight_bytes": math.ceil(p.numel() * bits / 8),
                         "scale_bytes": 4 * SCALES_PER_LAYER[method]})
        else:
            other_bytes += 4 * p.numel()
    rows.sort(key=lambda r: chosen.index(r["name"]))
    total = other_bytes + sum(r["weight_bytes"] + r["scale_bytes"] for r in rows)
    fp32 = 4 * fp32_params
    return {"method": method, "layers": rows, "fp32_bytes": fp32, "full_precision_bytes": other_bytes,
            "bytes": total, "ratio": fp32 / total}
