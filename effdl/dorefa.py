"""DoReFa-Net: low bit widths for the weights, the activations *and* the gradients.

Taught in chapter 06. Zhou et al. (2016) give each of the three tensors of
training its own bit width ``k`` and one quantizer of a value in [0, 1],

    quantize_k(r) = round((2^k − 1) · r) / (2^k − 1),

passed straight through in the backward pass (the gradient of the rounding
is taken as 1):

- weights, ``n_bits_weight`` = k_W: 1 bit is ``sign(w) · mean|w|``; more bits
  map ``tanh(w)`` into [0, 1] by its largest magnitude, quantize, and map
  back to [−1, 1];
- activations, ``n_bits_act`` = k_A: clipped to [0, 1], then quantized;
- gradients, ``n_bits_grad`` = k_G: the gradient reaching a layer's output is
  scaled by its largest magnitude (per example) into [0, 1], quantized with
  uniform noise of one step added before rounding (stochastic rounding, so
  that small gradients survive on average), and scaled back.

32 bits means "leave in floating point" for each of the three.
:func:`dorefa_copy` applies this to a trained LeNet-5 the way the paper
treats its networks: the first and the last layer keep floating-point
weights; every other layer gets k_W-bit weights and k_G-bit gradients; every
layer but the first reads k_A-bit activations.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .validation import Instance, Options, Seed, Tensor, validate_params

FLOAT = 32
LOW_BITS = Options((1, 2, 3, 4, 5, 6, 7, 8))
BITS = Options((1, 2, 3, 4, 5, 6, 7, 8, FLOAT))          # 32: floating point
VALUE = Tensor(convert=False)


class _RoundSTE(torch.autograd.Function):
    """quantize_k in the forward pass, the identity in the backward pass (straight through)."""

    @staticmethod
    def forward(ctx, r, n_bits):
        levels = 2 ** n_bits - 1
        return torch.round(r * levels) / levels

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def _quantize_k(r: torch.Tensor, n_bits: int) -> torch.Tensor:
    return _RoundSTE.apply(r, n_bits)


@validate_params(r=VALUE, n_bits=LOW_BITS)
def quantize_k(r: torch.Tensor, n_bits: int) -> torch.Tensor:
    """DoReFa's k-bit quantizer of values in [0, 1]: ``round((2^k − 1) r) / (2^k − 1)``, straight-through.

    ``r`` must lie in [0, 1] (the callers clip or scale into it first).

    >>> [round(v, 4) for v in quantize_k(torch.tensor([0.0, 0.2, 0.5, 1.0]), 2).tolist()]
    [0.0, 0.3333, 0.6667, 1.0]

    Behind chapter 06, "Binary and ternary nets".
    """
    if r.numel() and (r.min() < 0 or r.max() > 1):
        raise ValueError(f"quantize_k: r must lie in [0, 1]; got values from {r.min().item():g} "
                         f"to {r.max().item():g}.")
    return _quantize_k(r, n_bits)


def _weights(w: torch.Tensor, n_bits: int) -> torch.Tensor:
    if n_bits == FLOAT:
        return w
    if n_bits == 1:
        scale = w.detach().abs().mean()
        return _SignSTE.apply(w) * scale
    t = torch.tanh(w)
    t = t / (2 * t.detach().abs().max().clamp(min=1e-12)) + 0.5
    return 2 * _quantize_k(t, n_bits) - 1


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx, grad):
        return grad


@validate_params(weight=VALUE, n_bits=BITS)
def dorefa_weights(weight: torch.Tensor, n_bits: int) -> torch.Tensor:
    """The k_W-bit weights DoReFa computes from the float ones (differentiable, straight through).

    1 bit: ``sign(w) · mean|w|``; 2–8 bits: ``2 · quantize_k(tanh w / (2 max|tanh w|) + 1/2) − 1``,
    values in [−1, 1] on ``2^k`` levels; 32: ``w`` unchanged.

    >>> sorted({round(v, 4) for v in dorefa_weights(torch.linspace(-1, 1, 9), 2).tolist()})
    [-1.0, -0.3333, 0.3333, 1.0]

    Behind chapter 06, "Binary and ternary nets".
    """
    return _weights(weight, n_bits)


def _activations(x: torch.Tensor, n_bits: int) -> torch.Tensor:
    if n_bits == FLOAT:
        return x
    return _quantize_k(x.clamp(0, 1), n_bits)


@validate_params(x=VALUE, n_bits=BITS)
def dorefa_activations(x: torch.Tensor, n_bits: int) -> torch.Tensor:
    """k_A-bit activations: ``quantize_k(clip(x, 0, 1))`` (32: ``x`` unchanged).

    Behind chapter 06, "Binary and ternary nets".
    """
    return _activations(x, n_bits)


class _GradQuant(torch.autograd.Function):
    """Identity forward; the backward pass quantizes the incoming gradient to k_G bits, stochastically."""

    @staticmethod
    def forward(ctx, x, n_bits, generator):
        ctx.n_bits, ctx.generator = n_bits, generator
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return _quantize_gradient(grad, ctx.n_bits, ctx.generator), None, None


def _quantize_gradient(grad: torch.Tensor, n_bits: int, generator: torch.Generator | None) -> torch.Tensor:
    dims = tuple(range(1, grad.ndim)) if grad.ndim > 1 else (0,)
    top = grad.abs().amax(dim=dims, keepdim=True).clamp(min=1e-30)      # per example
    levels = 2 ** n_bits - 1
    noise = (torch.rand(grad.shape, generator=generator, dtype=grad.dtype) - 0.5) / levels
    r = (grad / (2 * top) + 0.5 + noise).clamp(0, 1)
    return 2 * top * (torch.round(r * levels) / levels - 0.5)


@validate_params(grad=VALUE, n_bits=LOW_BITS, seed=Seed())
def dorefa_gradient(grad: torch.Tensor, n_bits: int, *, seed: int = 0) -> torch.Tensor:
    """A gradient quantized as DoReFa's backward pass does: per example (first axis), scaled by its largest
    magnitude into [0, 1], one step of uniform noise added, rounded to ``2^k`` levels, scaled back.

    Unbiased up to the clipping at the ends: the mean over many seeds approaches ``grad``.

    Taught in chapter 06, "Binary and ternary nets".
    """
    return _quantize_gradient(grad, n_bits, torch.Generator().manual_seed(seed))


class DoReFaLayer(nn.Module):
    """A Linear or Conv2d that reads k_A-bit inputs, uses k_W-bit weights and sends back k_G-bit gradients.

    The wrapped layer keeps its float ("latent") weights, which the optimizer
    updates; the forward pass uses their quantized copy.

    Behind chapter 06, "Binary and ternary nets".
    """

    def __init__(self, layer: nn.Module, n_bits_weight: int, n_bits_act: int, n_bits_grad: int, seed: int = 0):
        super().__init__()
        self.layer, self.n_bits_weight, self.n_bits_act, self.n_bits_grad = layer, n_bits_weight, n_bits_act, n_bits_grad
        self.generator = torch.Generator().manual_seed(seed)

    def quantized_weight(self) -> torch.Tensor:
        return _weights(self.layer.weight, self.n_bits_weight)

    def forward(self, x):
        x = _activations(x, self.n_bits_act)
        w = self.quantized_weight()
        if isinstance(self.layer, nn.Conv2d):
            y = self.layer._conv_forward(x, w, self.layer.bias)
        else:
            y = nn.functional.linear(x, w, self.layer.bias)
        if self.n_bits_grad != FLOAT and torch.is_grad_enabled():
            y = _GradQuant.apply(y, self.n_bits_grad, self.generator)
        return y


def _layers(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


@validate_params(model=Instance(nn.Module, "a torch.nn.Module with Linear/Conv2d layers"),
                 n_bits_weight=BITS, n_bits_act=BITS, n_bits_grad=BITS, seed=Seed())
def dorefa_copy(model: nn.Module, n_bits_weight: int, n_bits_act: int, n_bits_grad: int, *,
                seed: int = 0) -> nn.Module:
    """A copy of ``model`` trained the DoReFa way: its Linear/Conv2d layers wrapped in :class:`DoReFaLayer`.

    As in the paper, the first layer stays in floating point (weights, input
    and gradient) and the last keeps floating-point weights and gradient but
    reads k_A-bit activations; the layers between get all three bit widths.
    The model's own activation function must give values ≥ 0 (ReLU): the
    k_A-bit quantizer clips them to [0, 1]. Needs at least three layers.

    Behind chapter 06, "Binary and ternary nets".
    """
    names = _layers(model)
    if len(names) < 3:
        raise ValueError(f"dorefa_copy: model must have at least three Linear/Conv2d layers (first and last stay "
                         f"in floating point); got {len(names)}: {names}.")
    out = copy.deepcopy(model)
    for i, name in enumerate(names[1:], start=1):
        last = i == len(names) - 1
        parent, _, attr = name.rpartition(".")
        owner = out.get_submodule(parent) if parent else out
        wrapped = DoReFaLayer(getattr(owner, attr), FLOAT if last else n_bits_weight, n_bits_act,
                              FLOAT if last else n_bits_grad, seed=seed + i)
        setattr(owner, attr, wrapped)
    return out
