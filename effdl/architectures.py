"""Weightless architecture specs for parameter, byte and MAC accounting.

Taught in chapter 0, "Why efficiency", which plots how models grew from
LeNet to ResNet; later chapters reuse the per-layer tables (e.g. the
Deep Compression tables with AlexNet's ``conv1 … fc8`` and VGG-16's
``conv1_1 … conv5_3, fc6 … fc8``).

A spec is a tree of small frozen dataclasses: leaves (:class:`Conv2d`,
:class:`Linear`, :class:`MaxPool`, :class:`BatchNorm2d`, …) and composites
(:class:`Sequential`, :class:`Residual`, :class:`Concat`). It holds shapes
only, never weights, so VGG-16's 138 M parameters cost nothing to describe.
Pure functions read a spec: :func:`count_params`, :func:`count_macs`,
:func:`layer_table`, :func:`output_shape`, :func:`model_bytes`;
:func:`to_torch` builds the equivalent ``torch.nn.Module`` so tests can check
the accounting against torch (build it under ``with torch.device("meta"):`` to allocate nothing).

Shapes are per image, without the batch axis: ``(C, H, W)`` for feature maps,
``(F,)`` for flat vectors. A MAC is one multiply-accumulate of a conv or
linear layer, ``out_h·out_w·out_ch·(in_ch/groups)·k·k`` for a conv and
``in_f·out_f`` for a linear layer; bias adds, batch norm, pooling, ReLU and
residual adds are not counted (``torch.utils.flop_counter`` agrees: it
reports exactly ``2 × MACs`` FLOPs for these models).

Architectures in :data:`ARCHITECTURES` (papers):

- LeNet-300-100 and LeNet-5 — LeCun et al., "Gradient-Based Learning Applied
  to Document Recognition", Proc. IEEE 1998; the variants are Caffe's, as used
  by Han, Mao & Dally, "Deep Compression", ICLR 2016.
- AlexNet — Krizhevsky, Sutskever & Hinton, "ImageNet Classification with
  Deep Convolutional Neural Networks", NIPS 2012.
- VGG-16 — Simonyan & Zisserman, "Very Deep Convolutional Networks for
  Large-Scale Image Recognition", ICLR 2015.
- GoogLeNet — Szegedy et al., "Going Deeper with Convolutions", CVPR 2015.
- ResNet-18 / ResNet-50 — He, Zhang, Ren & Sun, "Deep Residual Learning for
  Image Recognition", CVPR 2016.
- SqueezeNet 1.0 — Iandola et al., "SqueezeNet: AlexNet-level accuracy with
  50x fewer parameters and <0.5MB model size", arXiv:1602.07360, 2016.

Efficient building blocks, taught in chapter 17, "Designing efficient models":
:func:`fire` (SqueezeNet), :func:`depthwise_separable` (Howard et al.,
"MobileNets", arXiv:1704.04861, 2017) and :func:`inverted_residual` (Sandler
et al., "MobileNetV2", CVPR 2018), and in :data:`DESIGNS` the book's three MNIST
nets built from them (the specs of :class:`effdl.models.ConvNet`,
:class:`~effdl.models.FireNet` and :class:`~effdl.models.SeparableNet`).

>>> net = Sequential([Flatten(), Linear(784, 300, name="ip1"), ReLU(),
...                   Linear(300, 10, name="ip2")])
>>> count_params(net), count_macs(net, (1, 28, 28))
(238510, 238200)
>>> [(row.name, row.kind, row.output_shape) for row in layer_table(net, (1, 28, 28))]
[('ip1', 'fc', (300,)), ('ip2', 'fc', (10,))]

Longer than 600 lines because it is mostly data: the layer-by-layer specs of the published
networks the book counts (one line per layer), kept beside the one accounting code that reads them.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Iterator, Mapping

import torch
from torch import nn

from effdl._validate import _fail
from effdl.validation import (Bool, Constraint, Instance, Interval, Options, PositiveInt, Shown, check_fields,
                              validate_params)

__all__ = [
    "Layer", "Conv2d", "Linear", "MaxPool", "AvgPool", "AdaptiveAvgPool", "GlobalAvgPool",
    "ReLU", "Flatten", "BatchNorm2d", "Dropout", "LRN", "Sequential", "Residual", "Concat",
    "LayerStats", "Architecture", "ARCHITECTURES", "DESIGNS", "get_architecture",
    "fire", "depthwise_separable", "inverted_residual",
    "layer_table", "count_params", "count_macs", "output_shape", "model_bytes", "to_torch",
]

Shape = tuple[int, ...]
_DEFAULT_INPUT_SHAPE: Shape = (3, 224, 224)


class _ShapeError(Exception):
    """A layer cannot take the shape it is given; turned into a ValueError on input_shape."""


_NAME = Instance(str, "a string or None", optional=True)
_COUNT = PositiveInt()
_BOOL = Bool()
_REAL = Interval(float, None, None)


# --------------------------------------------------------------------------- leaves


class Layer:
    """Base of every spec node. Subclasses are frozen dataclasses.

    Behind chapter 00, "Why efficiency".
    """

    __slots__ = ()
    kind: ClassVar[str | None] = None  # "conv", "fc", "bn" for layers with weights

    # Leaves override the four hooks below; composites override _leaves and _walk.
    def _out_shape(self, shape: Shape) -> Shape:
        return shape

    def _weight_count(self) -> int:
        return 0

    def _bias_count(self) -> int:
        return 0

    def _macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return 0

    def _module(self):
        raise NotImplementedError

    def _leaves(self) -> Iterator[Layer]:
        yield self

    def _walk(self, shape: Shape, visit: Callable[[Layer, Shape, Shape], None]) -> Shape:
        out = self._out_shape(shape)
        visit(self, shape, out)
        return out

    def _label(self) -> str:
        name = getattr(self, "name", None)
        return type(self).__name__ + (f" {name!r}" if name else "")

    def _need_chw(self, shape: Shape, channels: int | None = None) -> None:
        if len(shape) != 3:
            raise _ShapeError(f"{self._label()} needs a (C, H, W) feature map but sees {shape}")
        if channels is not None and shape[0] != channels:
            raise _ShapeError(f"{self._label()} needs {channels} input channels but sees {shape}")


def _window_len(n: int, kernel: int, stride: int, padding: int, ceil_mode: bool, label: str) -> int:
    """Output length of a conv/pool window sliding over n inputs (torch's rule)."""
    span = n + 2 * padding - kernel
    if span < 0:
        raise _ShapeError(f"{label} needs spatial size >= {kernel - 2 * padding} but sees {n}")
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1  # torch and Caffe drop a last window that would start in the padding
    return out


@dataclass(frozen=True)
class Conv2d(Layer):
    """2-D convolution with a square ``kernel``; ``groups`` splits channels as in AlexNet.

    Taught in chapter 17, "Designing efficient models".
    """

    in_ch: int
    out_ch: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    bias: bool = True
    name: str | None = None
    kind: ClassVar[str] = "conv"

    def __post_init__(self):
        check_fields(self, in_ch=_COUNT, out_ch=_COUNT, kernel=_COUNT, stride=_COUNT,
                      padding=Interval(int, 0, None), groups=_COUNT, bias=_BOOL, name=_NAME)
        if self.in_ch % self.groups or self.out_ch % self.groups:
            raise ValueError(f"Conv2d: groups must divide in_ch={self.in_ch} and out_ch={self.out_ch}; "
                             f"got {self.groups!r}.")

    def _out_shape(self, shape):
        self._need_chw(shape, self.in_ch)
        _, h, w = shape
        return (self.out_ch,
                _window_len(h, self.kernel, self.stride, self.padding, False, self._label()),
                _window_len(w, self.kernel, self.stride, self.padding, False, self._label()))

    def _weight_count(self):
        return self.out_ch * (self.in_ch // self.groups) * self.kernel ** 2  # (out, in/g, k, k)

    def _bias_count(self):
        return self.out_ch if self.bias else 0

    def _macs(self, in_shape, out_shape):
        out_ch, out_h, out_w = out_shape
        return out_h * out_w * out_ch * (self.in_ch // self.groups) * self.kernel ** 2

    def _module(self):
        return nn.Conv2d(self.in_ch, self.out_ch, self.kernel, stride=self.stride,
                         padding=self.padding, groups=self.groups, bias=self.bias)


@dataclass(frozen=True)
class Linear(Layer):
    """Fully connected layer on a flat ``(in_f,)`` input.

    Behind chapter 00, "Why efficiency".
    """

    in_f: int
    out_f: int
    bias: bool = True
    name: str | None = None
    kind: ClassVar[str] = "fc"

    def __post_init__(self):
        check_fields(self, in_f=_COUNT, out_f=_COUNT, bias=_BOOL, name=_NAME)

    def _out_shape(self, shape):
        if shape != (self.in_f,):
            raise _ShapeError(f"{self._label()} needs a flat ({self.in_f},) input but sees {shape}"
                              + (" (add a Flatten)" if len(shape) == 3 else ""))
        return (self.out_f,)

    def _weight_count(self):
        return self.in_f * self.out_f

    def _bias_count(self):
        return self.out_f if self.bias else 0

    def _macs(self, in_shape, out_shape):
        return self.in_f * self.out_f

    def _module(self):
        return nn.Linear(self.in_f, self.out_f, bias=self.bias)


@dataclass(frozen=True)
class _Pool(Layer):
    kernel: int
    stride: int | None = None  # None: stride = kernel, as in torch
    padding: int = 0
    ceil_mode: bool = False  # Caffe rounds up; torch's default rounds down
    name: str | None = None

    def __post_init__(self):
        check_fields(self, kernel=_COUNT, stride=PositiveInt(optional=True))
        check_fields(self, padding=Interval(int, 0, self.kernel // 2), ceil_mode=_BOOL, name=_NAME)

    @property
    def _stride(self) -> int:
        return self.kernel if self.stride is None else self.stride

    def _out_shape(self, shape):
        self._need_chw(shape)
        c, h, w = shape
        args = (self.kernel, self._stride, self.padding, self.ceil_mode, self._label())
        return (c, _window_len(h, *args), _window_len(w, *args))


@dataclass(frozen=True)
class MaxPool(_Pool):
    """Max pooling, square window; ``ceil_mode=True`` reproduces Caffe's output sizes.

    Behind chapter 00, "Why efficiency".
    """

    def _module(self):
        return nn.MaxPool2d(self.kernel, self._stride, self.padding, ceil_mode=self.ceil_mode)


@dataclass(frozen=True)
class AvgPool(_Pool):
    """Average pooling, square window.

    Behind chapter 00, "Why efficiency".
    """

    def _module(self):
        return nn.AvgPool2d(self.kernel, self._stride, self.padding, ceil_mode=self.ceil_mode)



@dataclass(frozen=True)
class AdaptiveAvgPool(Layer):
    """Average pooling to a fixed ``output_size × output_size`` map.

    Behind chapter 00, "Why efficiency".
    """

    output_size: int = 1
    name: str | None = None

    def __post_init__(self):
        check_fields(self, output_size=_COUNT, name=_NAME)

    def _out_shape(self, shape):
        self._need_chw(shape)
        return (shape[0], self.output_size, self.output_size)

    def _module(self):
        return nn.AdaptiveAvgPool2d(self.output_size)


@dataclass(frozen=True)
class GlobalAvgPool(AdaptiveAvgPool):
    """Average each channel to one value: ``(C, H, W) -> (C, 1, 1)``.

    Behind chapter 00, "Why efficiency".
    """

    output_size: int = field(default=1, init=False)


@dataclass(frozen=True)
class ReLU(Layer):
    """A ReLU: no parameters and no MACs (its comparisons are not counted).

    Behind chapter 00, "Why efficiency".
    """
    name: str | None = None

    def __post_init__(self):
        check_fields(self, name=_NAME)

    def _module(self):
        return nn.ReLU()


@dataclass(frozen=True)
class Flatten(Layer):
    """``(C, H, W) -> (C·H·W,)``.

    Behind chapter 00, "Why efficiency".
    """

    name: str | None = None

    def __post_init__(self):
        check_fields(self, name=_NAME)

    def _out_shape(self, shape):
        return (math.prod(shape),)

    def _module(self):
        return nn.Flatten()


@dataclass(frozen=True)
class BatchNorm2d(Layer):
    """Batch norm over ``ch`` channels: 2·ch learnable parameters (γ, β), like torch.

    The running mean and variance are buffers, not parameters, in torch and here.

    Behind chapter 00, "Why efficiency".
    """

    ch: int
    name: str | None = None
    kind: ClassVar[str] = "bn"

    def __post_init__(self):
        check_fields(self, ch=_COUNT, name=_NAME)

    def _out_shape(self, shape):
        self._need_chw(shape, self.ch)
        return shape

    def _weight_count(self):
        return self.ch  # γ

    def _bias_count(self):
        return self.ch  # β

    def _module(self):
        return nn.BatchNorm2d(self.ch)


@dataclass(frozen=True)
class Dropout(Layer):
    """Dropout with probability ``p``: no parameters, no MACs, the identity at inference.

    Behind chapter 00, "Why efficiency".
    """
    p: float = 0.5
    name: str | None = None

    def __post_init__(self):
        check_fields(self, p=Interval(float, 0, 1), name=_NAME)

    def _module(self):
        return nn.Dropout(self.p)


@dataclass(frozen=True)
class LRN(Layer):
    """Local response normalisation across channels (AlexNet, GoogLeNet); no parameters.

    Caffe's and torch's ``alpha`` mean the same thing (both divide it by ``size``).

    Behind chapter 00, "Why efficiency".
    """

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0
    name: str | None = None

    def __post_init__(self):
        check_fields(self, size=_COUNT, alpha=_REAL, beta=_REAL, k=_REAL, name=_NAME)

    def _out_shape(self, shape):
        self._need_chw(shape)
        return shape

    def _module(self):
        return nn.LocalResponseNorm(self.size, self.alpha, self.beta, self.k)


# --------------------------------------------------------------------------- composites


def _as_layers(owner: str, name: str, layers: Any) -> tuple[Layer, ...]:
    if not isinstance(layers, (list, tuple)) or not all(isinstance(x, Layer) for x in layers):
        raise TypeError(f"{owner}: {name} must be a list or tuple of layer specs; got {layers!r}.")
    if not layers:
        raise ValueError(f"{owner}: {name} must hold at least one layer; got {layers!r}.")
    return tuple(layers)


@dataclass(frozen=True)
class Sequential(Layer):
    """Layers applied one after the other.

    Behind chapter 00, "Why efficiency".
    """

    layers: tuple[Layer, ...]
    name: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "layers", _as_layers("Sequential", "layers", self.layers))
        check_fields(self, name=_NAME)

    def _leaves(self):
        for layer in self.layers:
            yield from layer._leaves()

    def _walk(self, shape, visit):
        for layer in self.layers:
            shape = layer._walk(shape, visit)
        return shape

    def _module(self):
        return nn.Sequential(*(layer._module() for layer in self.layers))


@dataclass(frozen=True)
class Residual(Layer):
    """``relu(body(x) + shortcut(x))``, the ResNet block; ``shortcut=None`` is the identity.

    ``relu=False`` leaves out the final ReLU (pre-activation or linear-bottleneck blocks).

    Behind chapter 00, "Why efficiency".
    """

    body: Layer
    shortcut: Layer | None = None
    relu: bool = True
    name: str | None = None

    def __post_init__(self):
        check_fields(self, body=Instance(Layer, "a layer spec"),
                      shortcut=Instance(Layer, "a layer spec or None", optional=True), relu=_BOOL, name=_NAME)

    def _leaves(self):
        yield from self.body._leaves()
        if self.shortcut is not None:
            yield from self.shortcut._leaves()

    def _walk(self, shape, visit):
        out = self.body._walk(shape, visit)
        short = shape if self.shortcut is None else self.shortcut._walk(shape, visit)
        if out != short:
            raise _ShapeError(f"{self._label()}: body gives {out} but shortcut gives {short}")
        return out

    def _module(self):
        return _ResidualModule(self.body._module(),
                               None if self.shortcut is None else self.shortcut._module(),
                               self.relu)


@dataclass(frozen=True)
class Concat(Layer):
    """Branches applied to the same input, outputs concatenated along channels.

    An Inception module, or the expand half of a SqueezeNet fire module.

    Behind chapter 00, "Why efficiency".
    """

    branches: tuple[Layer, ...]
    name: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "branches", _as_layers("Concat", "branches", self.branches))
        check_fields(self, name=_NAME)

    def _leaves(self):
        for branch in self.branches:
            yield from branch._leaves()

    def _walk(self, shape, visit):
        outs = [branch._walk(shape, visit) for branch in self.branches]
        if any(len(o) != 3 or o[1:] != outs[0][1:] for o in outs):
            raise _ShapeError(f"{self._label()}: branch outputs {outs} differ in height/width")
        return (sum(o[0] for o in outs), *outs[0][1:])

    def _module(self):
        return _ConcatModule([branch._module() for branch in self.branches])


class _ResidualModule(nn.Module):
    def __init__(self, body: nn.Module, shortcut: nn.Module | None, relu: bool):
        super().__init__()
        self.body = body
        self.shortcut = nn.Identity() if shortcut is None else shortcut
        self.relu = relu

    def forward(self, x):
        y = self.body(x) + self.shortcut(x)  # (N, C, H, W)
        return torch.relu(y) if self.relu else y


class _ConcatModule(nn.ModuleList):
    def forward(self, x):
        return torch.cat([branch(x) for branch in self], dim=1)  # (N, sum of C, H, W)


# --------------------------------------------------------------------------- accounting


@dataclass(frozen=True)
class LayerStats:
    """One row of :func:`layer_table`: a layer with weights (conv, fc, optionally bn).

    ``kind`` is ``"conv"``, ``"fc"`` or ``"bn"``; ``params = weights + biases``;
    ``macs`` is per image (0 for batch norm).

    Behind chapter 00, "Why efficiency".
    """

    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    weights: int
    biases: int
    params: int
    macs: int


@dataclass(frozen=True)
class Architecture:
    """A named spec with the metadata chapter 0 plots and the tests check against.

    ``published_params`` / ``published_macs`` are the figures the cited sources
    print (``published_source`` says which); they are None where no source gives
    one (always for the book's own :data:`DESIGNS`).

    Behind chapter 00, "Why efficiency".
    """

    key: str
    display_name: str
    year: int
    citation: str
    input_shape: Shape
    spec: Layer
    published_params: int | None
    published_macs: int | None
    published_source: str
    notes: str = ""


class _Spec(Instance):
    """A layer spec or an :class:`Architecture`; a torch module is pointed to the module accounting."""

    def __init__(self):
        super().__init__((Layer, Architecture), "a layer spec (e.g. Sequential) or an Architecture")

    def check(self, name, value):
        if isinstance(value, nn.Module):  # its repr spans many lines: name the class instead
            _fail(TypeError, name, f"{self.what} (for a torch.nn.Module, count with effdl.pruning.count_macs)",
                  Shown(f"a {type(value).__name__} torch.nn.Module"))
        return super().check(name, value)


class _InputShape(Constraint):
    """One image's shape, without the batch axis: ``(C, H, W)`` or ``(F,)`` of positive integers; or None."""

    optional = True
    what = "a tuple of positive integers for one image, (C, H, W) or (F,), without the batch axis"

    def describe(self):
        return self.what + " or None"

    def check(self, name, value):
        if value is None:
            return None
        if not isinstance(value, (tuple, list)) or any(
                isinstance(d, bool) or not isinstance(d, numbers.Integral) for d in value):
            _fail(TypeError, name, self.what, value)
        if len(value) not in (1, 3) or any(d < 1 for d in value):
            _fail(ValueError, name, self.what, value)
        return tuple(int(d) for d in value)

    def invalid_values(self):
        return [("3x224x224", TypeError), (224, TypeError), ((True, 224, 224), TypeError),
                ((3, 224.0, 224), TypeError), ((3, 0, 224), ValueError), ((3, 224), ValueError),
                ((1, 3, 224, 224), ValueError), ((), ValueError)]


SPEC = _Spec()
INPUT_SHAPE = _InputShape()


def _resolve(spec: Layer | Architecture, input_shape: Shape | None) -> tuple[Layer, Shape]:
    """The bare spec and the input shape (the architecture's own, or the default, when None)."""
    layer = spec.spec if isinstance(spec, Architecture) else spec
    if input_shape is None:
        return layer, (spec.input_shape if isinstance(spec, Architecture) else _DEFAULT_INPUT_SHAPE)
    return layer, input_shape


def _walk_checked(func: str, layer: Layer, shape: Shape, visit) -> Shape:
    try:
        return layer._walk(shape, visit)
    except _ShapeError as err:
        raise ValueError(f"{func}: input_shape must fit the spec ({err}); got {shape!r}.") from None


@validate_params(spec=SPEC, input_shape=INPUT_SHAPE, include_bn=Bool())
def layer_table(spec: Layer | Architecture, input_shape: Shape | None = None, *,
                include_bn: bool = False) -> list[LayerStats]:
    """Per-layer shapes, parameters and MACs of the layers with weights, in order.

    Parameters
    ----------
    spec : Layer or Architecture
    input_shape : tuple of int, optional
        ``(C, H, W)`` or ``(F,)`` for one image. Default: the architecture's own
        input shape, or ``(3, 224, 224)`` for a bare spec.
    include_bn : bool, default False
        Also list batch-norm layers (kind ``"bn"``, 0 MACs).

    Returns
    -------
    list of LayerStats
        Conv rows have ``kind == "conv"``, linear rows ``kind == "fc"``. Unnamed
        layers are called ``"{type}_{index}"``, index counting rows from 0.

    Taught in chapter 08, "Winograd convolution".
    """
    layer, shape = _resolve(spec, input_shape)
    kinds = ("conv", "fc", "bn") if include_bn else ("conv", "fc")
    rows: list[LayerStats] = []

    def visit(leaf: Layer, in_shape: Shape, out_shape: Shape) -> None:
        if leaf.kind not in kinds:
            return
        weights, biases = leaf._weight_count(), leaf._bias_count()
        name = leaf.name if leaf.name is not None else f"{type(leaf).__name__.lower()}_{len(rows)}"
        rows.append(LayerStats(name, leaf.kind, in_shape, out_shape, weights, biases,
                               weights + biases, leaf._macs(in_shape, out_shape)))

    _walk_checked("layer_table", layer, shape, visit)
    return rows


@validate_params(spec=SPEC)
def count_params(spec: Layer | Architecture) -> int:
    """Number of learnable parameters (weights, biases, batch-norm γ and β).

    Taught in chapter 00, "Why efficiency".
    """
    layer, _ = _resolve(spec, None)
    return sum(leaf._weight_count() + leaf._bias_count() for leaf in layer._leaves())


@validate_params(spec=SPEC, input_shape=INPUT_SHAPE)
def count_macs(spec: Layer | Architecture, input_shape: Shape | None = None) -> int:
    """Multiply-accumulates of the conv and linear layers for one image.

    ``input_shape`` defaults as in :func:`layer_table`. Raises ``ValueError``
    when the shape does not fit the spec (wrong channels, too small).

    Taught in chapter 00, "Why efficiency".
    """
    layer, shape = _resolve(spec, input_shape)
    total = 0

    def visit(leaf: Layer, in_shape: Shape, out_shape: Shape) -> None:
        nonlocal total
        total += leaf._macs(in_shape, out_shape)

    _walk_checked("count_macs", layer, shape, visit)
    return total


@validate_params(spec=SPEC, input_shape=INPUT_SHAPE)
def output_shape(spec: Layer | Architecture, input_shape: Shape | None = None) -> Shape:
    """Shape of one image's output, e.g. ``(1000,)``; ``input_shape`` defaults as in :func:`layer_table`.

    Taught in chapter 08, "Winograd convolution".
    """
    layer, shape = _resolve(spec, input_shape)
    return _walk_checked("output_shape", layer, shape, lambda leaf, in_shape, out_shape: None)


@validate_params(spec=SPEC, n_bits=Interval(int, 1, 64))
def model_bytes(spec: Layer | Architecture, n_bits: int = 32) -> int:
    """Bytes to store every parameter with ``n_bits`` bits (1..64), rounded up to a whole byte.

    Taught in chapter 00, "Why efficiency".
    """
    layer, _ = _resolve(spec, None)
    return -(-count_params(layer) * n_bits // 8)  # ceil(params · n_bits / 8)


@validate_params(spec=SPEC)
def to_torch(spec: Layer | Architecture):
    """An equivalent ``torch.nn.Module`` (fresh, randomly initialised weights).

    Created on torch's current default device, so ``with torch.device("meta"):``
    builds VGG-16 without allocating its 553 MB of weights.

    Behind chapter 00, "Why efficiency".
    """
    layer, _ = _resolve(spec, None)
    return layer._module()


# --------------------------------------------------------------------------- architectures


def _relu_conv(*args, **kwargs) -> list[Layer]:
    return [Conv2d(*args, **kwargs), ReLU()]


def _lenet300() -> Layer:
    # 784-300-100-10 with ReLU (Caffe lenet_300_100; layer names as in Deep Compression Table 2).
    return Sequential([
        Flatten(),
        Linear(784, 300, name="ip1"), ReLU(),
        Linear(300, 100, name="ip2"), ReLU(),
        Linear(100, 10, name="ip3"),
    ])


def _lenet5() -> Layer:
    # Caffe's LeNet (examples/mnist/lenet.prototxt): no ReLU after the convs,
    # one after ip1. Deep Compression Table 3 calls the layers conv1, conv2, ip1, ip2.
    return Sequential([
        Conv2d(1, 20, 5, name="conv1"),                 # (20, 24, 24)
        MaxPool(2, 2, name="pool1"),                    # (20, 12, 12)
        Conv2d(20, 50, 5, name="conv2"),                # (50, 8, 8)
        MaxPool(2, 2, name="pool2"),                    # (50, 4, 4)
        Flatten(),                                      # (800,)
        Linear(800, 500, name="ip1"), ReLU(name="relu1"),
        Linear(500, 10, name="ip2"),
    ])


def _alexnet() -> Layer:
    # Caffe bvlc_alexnet: the paper's two GPU towers become groups=2 in conv2, conv4, conv5.
    # Caffe pools round up; at 227x227 input every pool divides evenly, so it changes nothing.
    return Sequential([
        *_relu_conv(3, 96, 11, stride=4, name="conv1"),                 # (96, 55, 55)
        LRN(5, 1e-4, 0.75, name="norm1"),
        MaxPool(3, 2, ceil_mode=True, name="pool1"),                    # (96, 27, 27)
        *_relu_conv(96, 256, 5, padding=2, groups=2, name="conv2"),     # (256, 27, 27)
        LRN(5, 1e-4, 0.75, name="norm2"),
        MaxPool(3, 2, ceil_mode=True, name="pool2"),                    # (256, 13, 13)
        *_relu_conv(256, 384, 3, padding=1, name="conv3"),              # (384, 13, 13)
        *_relu_conv(384, 384, 3, padding=1, groups=2, name="conv4"),
        *_relu_conv(384, 256, 3, padding=1, groups=2, name="conv5"),    # (256, 13, 13)
        MaxPool(3, 2, ceil_mode=True, name="pool5"),                    # (256, 6, 6)
        Flatten(),                                                      # (9216,)
        Linear(9216, 4096, name="fc6"), ReLU(), Dropout(0.5),
        Linear(4096, 4096, name="fc7"), ReLU(), Dropout(0.5),
        Linear(4096, 1000, name="fc8"),
    ])


def _vgg16() -> Layer:
    # Configuration D of the VGG paper: 3x3 convs, pad 1, 2x2 max pools.
    layers: list[Layer] = []
    in_ch = 3
    for block, (width, n_convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for i in range(1, n_convs + 1):
            layers += _relu_conv(in_ch, width, 3, padding=1, name=f"conv{block}_{i}")
            in_ch = width
        layers.append(MaxPool(2, 2, name=f"pool{block}"))
    return Sequential([
        *layers,                                                        # (512, 7, 7)
        Flatten(),                                                      # (25088,)
        Linear(512 * 7 * 7, 4096, name="fc6"), ReLU(), Dropout(0.5),
        Linear(4096, 4096, name="fc7"), ReLU(), Dropout(0.5),
        Linear(4096, 1000, name="fc8"),
    ])


def _caffe_pool(name: str) -> Layer:
    # 3x3 stride-2 max pool that rounds up, as Caffe does (GoogLeNet, SqueezeNet).
    return MaxPool(3, 2, ceil_mode=True, name=name)


def _inception(name: str, in_ch: int, c1: int, c3r: int, c3: int, c5r: int, c5: int,
               proj: int) -> Layer:
    # GoogLeNet Table 1 columns: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
    return Concat([
        Sequential(_relu_conv(in_ch, c1, 1, name=f"{name}/1x1")),
        Sequential([*_relu_conv(in_ch, c3r, 1, name=f"{name}/3x3_reduce"),
                    *_relu_conv(c3r, c3, 3, padding=1, name=f"{name}/3x3")]),
        Sequential([*_relu_conv(in_ch, c5r, 1, name=f"{name}/5x5_reduce"),
                    *_relu_conv(c5r, c5, 5, padding=2, name=f"{name}/5x5")]),
        Sequential([MaxPool(3, 1, padding=1, name=f"{name}/pool"),
                    *_relu_conv(in_ch, proj, 1, name=f"{name}/pool_proj")]),
    ], name=name)


def _googlenet() -> Layer:
    # Paper Table 1 as in Caffe bvlc_googlenet (ceil-mode pools, LRN), no auxiliary classifiers.
    return Sequential([
        *_relu_conv(3, 64, 7, stride=2, padding=3, name="conv1/7x7_s2"),          # (64, 112, 112)
        _caffe_pool("pool1/3x3_s2"),                                              # (64, 56, 56)
        LRN(5, 1e-4, 0.75, name="pool1/norm1"),
        *_relu_conv(64, 64, 1, name="conv2/3x3_reduce"),
        *_relu_conv(64, 192, 3, padding=1, name="conv2/3x3"),                     # (192, 56, 56)
        LRN(5, 1e-4, 0.75, name="conv2/norm2"),
        _caffe_pool("pool2/3x3_s2"),                                              # (192, 28, 28)
        _inception("inception_3a", 192, 64, 96, 128, 16, 32, 32),                 # (256, 28, 28)
        _inception("inception_3b", 256, 128, 128, 192, 32, 96, 64),               # (480, 28, 28)
        _caffe_pool("pool3/3x3_s2"),                                              # (480, 14, 14)
        _inception("inception_4a", 480, 192, 96, 208, 16, 48, 64),                # (512, 14, 14)
        _inception("inception_4b", 512, 160, 112, 224, 24, 64, 64),
        _inception("inception_4c", 512, 128, 128, 256, 24, 64, 64),
        _inception("inception_4d", 512, 112, 144, 288, 32, 64, 64),               # (528, 14, 14)
        _inception("inception_4e", 528, 256, 160, 320, 32, 128, 128),             # (832, 14, 14)
        _caffe_pool("pool4/3x3_s2"),                                              # (832, 7, 7)
        _inception("inception_5a", 832, 256, 160, 320, 32, 128, 128),
        _inception("inception_5b", 832, 384, 192, 384, 48, 128, 128),             # (1024, 7, 7)
        AvgPool(7, 1, name="pool5/7x7_s1"),                                       # (1024, 1, 1)
        Dropout(0.4),
        Flatten(),
        Linear(1024, 1000, name="loss3/classifier"),
    ])


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int, prefix: str, i: int | str,
             relu: bool = True) -> list[Layer]:
    # ResNet convs carry no bias: the batch norm after them has β.
    pad = kernel // 2
    layers: list[Layer] = [Conv2d(in_ch, out_ch, kernel, stride, pad, bias=False, name=f"{prefix}conv{i}"),
                           BatchNorm2d(out_ch, name=f"{prefix}bn{i}")]
    return layers + [ReLU()] if relu else layers


def _resnet(bottleneck: bool, blocks: list[int]) -> Layer:
    # He et al. 2016, Table 1; projection shortcuts (option B) where the shape changes.
    # Names follow torchvision (layer1.0.conv1, …, fc) so rows map onto its state_dict keys.
    # ResNet-50 strides in the first 1x1 conv of a block, as the paper's Caffe model
    # does ("v1"); torchvision strides in the 3x3 ("v1.5"): same parameters, ~6 % more MACs.
    expansion = 4 if bottleneck else 1
    layers: list[Layer] = [*_conv_bn(3, 64, 7, 2, "", 1),                        # (64, 112, 112)
                           MaxPool(3, 2, padding=1, name="maxpool")]              # (64, 56, 56)
    in_ch = 64
    for stage, n_blocks in enumerate(blocks, 1):
        width = 64 * 2 ** (stage - 1)
        for b in range(n_blocks):
            stride = 2 if stage > 1 and b == 0 else 1
            p = f"layer{stage}.{b}."
            out_ch = width * expansion
            if bottleneck:
                body = [*_conv_bn(in_ch, width, 1, stride, p, 1),
                        *_conv_bn(width, width, 3, 1, p, 2),
                        *_conv_bn(width, out_ch, 1, 1, p, 3, relu=False)]
            else:
                body = [*_conv_bn(in_ch, width, 3, stride, p, 1),
                        *_conv_bn(width, width, 3, 1, p, 2, relu=False)]
            shortcut = None
            if stride != 1 or in_ch != out_ch:
                shortcut = Sequential([Conv2d(in_ch, out_ch, 1, stride, bias=False, name=f"{p}downsample.0"),
                                       BatchNorm2d(out_ch, name=f"{p}downsample.1")])
            layers.append(Residual(Sequential(body), shortcut, name=p.rstrip(".")))
            in_ch = out_ch
    return Sequential([*layers,                                                   # (512·exp, 7, 7)
                       GlobalAvgPool(name="avgpool"), Flatten(),
                       Linear(in_ch, 1000, name="fc")])


def _conv_unit(in_ch: int, out_ch: int, kernel: int, name: str, *, stride: int = 1, groups: int = 1,
               bn: bool = False, relu: bool = True) -> list[Layer]:
    # conv (+ batch norm, then no bias) (+ ReLU), "same" padding for odd kernels
    layers: list[Layer] = [Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups, bias=not bn, name=name)]
    if bn:
        layers.append(BatchNorm2d(out_ch, name=f"{name}/bn"))
    return layers + [ReLU()] if relu else layers


def _fire(name: str, in_ch: int, squeeze: int, expand1: int, expand3: int, bn: bool = False) -> Layer:
    # Fire module: 1x1 squeeze, then 1x1 and 3x3 expand side by side (SqueezeNet: no batch norm).
    return Sequential([
        *_conv_unit(in_ch, squeeze, 1, f"{name}/squeeze1x1", bn=bn),
        Concat([Sequential(_conv_unit(squeeze, expand1, 1, f"{name}/expand1x1", bn=bn)),
                Sequential(_conv_unit(squeeze, expand3, 3, f"{name}/expand3x3", bn=bn))]),
    ], name=name)


def _squeezenet() -> Layer:
    # SqueezeNet v1.0 (paper Table 1, Caffe release): ceil-mode pools, no FC layer.
    return Sequential([
        *_relu_conv(3, 96, 7, stride=2, name="conv1"),        # (96, 109, 109)
        _caffe_pool("pool1"),                                 # (96, 54, 54)
        _fire("fire2", 96, 16, 64, 64),
        _fire("fire3", 128, 16, 64, 64),
        _fire("fire4", 128, 32, 128, 128),                    # (256, 54, 54)
        _caffe_pool("pool4"),                                 # (256, 27, 27)
        _fire("fire5", 256, 32, 128, 128),
        _fire("fire6", 256, 48, 192, 192),
        _fire("fire7", 384, 48, 192, 192),
        _fire("fire8", 384, 64, 256, 256),                    # (512, 27, 27)
        _caffe_pool("pool8"),                                 # (512, 13, 13)
        _fire("fire9", 512, 64, 256, 256),
        Dropout(0.5),
        *_relu_conv(512, 1000, 1, name="conv10"),             # (1000, 13, 13)
        GlobalAvgPool(name="pool10"), Flatten(),              # (1000,)
    ])


_LECUN = ("Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-Based Learning Applied to "
          "Document Recognition. Proceedings of the IEEE, 1998")
_RESNET = ("K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image Recognition. "
           "CVPR 2016")
_SZE = ("Sze et al., Efficient Processing of Deep Neural Networks: A Tutorial and Survey, "
        "Proc. IEEE 2017, Table III")

ARCHITECTURES: Mapping[str, Architecture] = MappingProxyType({a.key: a for a in [
    Architecture(
        "lenet300", "LeNet-300-100", 1998, _LECUN, (1, 28, 28), _lenet300(),
        published_params=267_000, published_macs=None,
        published_source="Han et al., Deep Compression, ICLR 2016, Table 2 (267K weights)",
        notes="Exactly 266,610 = 784·300+300 + 300·100+100 + 100·10+10."),
    Architecture(
        "lenet5", "LeNet-5 (Caffe)", 1998, _LECUN, (1, 28, 28), _lenet5(),
        published_params=431_000, published_macs=None,
        published_source="Han et al., Deep Compression, ICLR 2016, Table 3 (431K weights)",
        notes="Caffe's LeNet (20 and 50 filters, 500 hidden units) as used by Deep "
              "Compression, not the 60K-parameter LeNet-5 of the 1998 paper."),
    Architecture(
        "alexnet", "AlexNet", 2012,
        "A. Krizhevsky, I. Sutskever, G. E. Hinton. ImageNet Classification with Deep "
        "Convolutional Neural Networks. NIPS 2012",
        (3, 227, 227), _alexnet(),
        published_params=61_000_000, published_macs=724_000_000,
        published_source="params: Deep Compression Table 4 (61M; the paper says 60 million); "
                         f"MACs: {_SZE}",
        notes="Caffe bvlc_alexnet with the two GPU towers as groups=2."),
    Architecture(
        "vgg16", "VGG-16", 2015,
        "K. Simonyan, A. Zisserman. Very Deep Convolutional Networks for Large-Scale Image "
        "Recognition. ICLR 2015",
        (3, 224, 224), _vgg16(),
        published_params=138_000_000, published_macs=15_500_000_000,
        published_source=f"params: VGG paper Table 2 (138M); MACs: {_SZE}"),
    Architecture(
        "googlenet", "GoogLeNet", 2015,
        "C. Szegedy et al. Going Deeper with Convolutions. CVPR 2015",
        (3, 224, 224), _googlenet(),
        published_params=6_800_000, published_macs=1_500_000_000,
        published_source="GoogLeNet paper: Table 1 params column sums to about 6.8M; "
                         "'1.5 billion multiply-adds' (Section 3)",
        notes="No auxiliary classifiers. Counting every conv weight and bias gives ~7.0M, "
              "about 3 % above the table's sum (its conv1 entry, 2.7K, is below the "
              "9.4K that 7x7x3x64 needs, and it omits biases)."),
    Architecture(
        "resnet18", "ResNet-18", 2016, _RESNET, (3, 224, 224), _resnet(False, [2, 2, 2, 2]),
        published_params=11_689_512, published_macs=1_800_000_000,
        published_source="params: torchvision model documentation (the paper gives none); "
                         "MACs: ResNet paper Table 1 (1.8×10^9 FLOPs, i.e. multiply-adds)"),
    Architecture(
        "resnet50", "ResNet-50", 2016, _RESNET, (3, 224, 224), _resnet(True, [3, 4, 6, 3]),
        published_params=25_557_032, published_macs=3_800_000_000,
        published_source="params: torchvision model documentation (the paper gives none); "
                         "MACs: ResNet paper Table 1 (3.8×10^9 FLOPs, i.e. multiply-adds)",
        notes="Stride 2 in the first 1x1 conv of a block as in the paper; torchvision's "
              "'v1.5' moves it to the 3x3, same parameters, 4.1G MACs."),
    Architecture(
        "squeezenet", "SqueezeNet 1.0", 2016,
        "F. N. Iandola, S. Han, M. W. Moskewicz, K. Ashraf, W. J. Dally, K. Keutzer. "
        "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size. "
        "arXiv:1602.07360, 2016",
        (3, 224, 224), _squeezenet(),
        published_params=1_248_424, published_macs=None,
        published_source="SqueezeNet paper Table 1 (1,248,424 parameters before pruning)"),
]})


# --------------------------------------------------------------------------- efficient blocks (chapter 17)

_BLOCK_NAME = Instance(str, "a string (the block's name prefix)")


@validate_params(in_ch=_COUNT, squeeze=_COUNT, expand1=_COUNT, expand3=_COUNT, batch_norm=_BOOL, name=_BLOCK_NAME)
def fire(in_ch: int, squeeze: int, expand1: int, expand3: int, *, batch_norm: bool = True,
         name: str = "fire") -> Layer:
    """SqueezeNet's fire module: 1×1 squeeze conv, then 1×1 ‖ 3×3 expand convs, concatenated.

    Each conv is followed by a ReLU, with a batch norm before it when
    ``batch_norm`` (then the conv has no bias; :class:`effdl.models.Fire`);
    ``batch_norm=False`` is SqueezeNet's original (biases, no batch norm).
    Output channels: ``expand1 + expand3``, same height and width.

    >>> count_params(fire(16, 8, 16, 16, batch_norm=False))   # 16·8+8 + 8·16+16 + 9·8·16+16
    1448

    Taught in chapter 17, "Designing efficient models".
    """
    return _fire(name, in_ch, squeeze, expand1, expand3, bn=batch_norm)


def _odd(func: str, kernel: int) -> None:
    if kernel % 2 == 0:
        raise ValueError(f"{func}: kernel must be an odd positive integer; got {kernel!r}.")


@validate_params(in_ch=_COUNT, out_ch=_COUNT, kernel=_COUNT, stride=_COUNT, name=_BLOCK_NAME)
def depthwise_separable(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, *,
                        name: str = "separable") -> Layer:
    """MobileNet's block: k×k depthwise conv (``groups=in_ch``) + BN + ReLU, 1×1 pointwise conv + BN + ReLU.

    The spec of :class:`effdl.models.DepthwiseSeparable`. MACs per output
    pixel ``in_ch·k² + in_ch·out_ch``: ``1/out_ch + 1/k²`` of a standard conv's
    ``in_ch·out_ch·k²``.

    >>> count_macs(depthwise_separable(32, 64), (32, 14, 14)) / count_macs(
    ...     Conv2d(32, 64, 3, padding=1, bias=False), (32, 14, 14)) == 1 / 64 + 1 / 9
    True

    Taught in chapter 17, "Designing efficient models".
    """
    _odd("depthwise_separable", kernel)
    return Sequential([*_conv_unit(in_ch, in_ch, kernel, f"{name}/depthwise", stride=stride, groups=in_ch, bn=True),
                       *_conv_unit(in_ch, out_ch, 1, f"{name}/pointwise", bn=True)], name=name)


@validate_params(in_ch=_COUNT, out_ch=_COUNT, expansion=_COUNT, kernel=_COUNT, stride=_COUNT, name=_BLOCK_NAME)
def inverted_residual(in_ch: int, out_ch: int, expansion: int = 6, kernel: int = 3, stride: int = 1, *,
                      name: str = "inverted") -> Layer:
    """MobileNetV2's block: 1×1 expand to ``in_ch·expansion``, k×k depthwise, 1×1 linear projection.

    The spec of :class:`effdl.models.InvertedResidual` (its ReLU6 is a
    :class:`ReLU` here: neither has parameters or MACs). No expand conv when
    ``expansion == 1``; a :class:`Residual` (identity shortcut, no final ReLU)
    when ``stride == 1`` and ``in_ch == out_ch``.

    Taught in chapter 17, "Designing efficient models".
    """
    _odd("inverted_residual", kernel)
    hidden = in_ch * expansion
    layers: list[Layer] = []
    if expansion != 1:
        layers += _conv_unit(in_ch, hidden, 1, f"{name}/expand", bn=True)
    layers += _conv_unit(hidden, hidden, kernel, f"{name}/depthwise", stride=stride, groups=hidden, bn=True)
    layers += _conv_unit(hidden, out_ch, 1, f"{name}/project", bn=True, relu=False)
    body = Sequential(layers, name=name)
    return Residual(body, None, relu=False, name=name) if stride == 1 and in_ch == out_ch else body


_MNIST_WIDTHS = (16, 32, 64, 64)   # effdl.models.WIDTHS


def _mnist_net(block: Callable[[int, int, str], Layer]) -> Layer:
    # stem 3×3 conv, blocks 16→32 (28×28), pool, 32→64 (14×14), pool, 64→64 (7×7), GAP, fc 64→10
    layers: list[Layer] = _conv_unit(1, _MNIST_WIDTHS[0], 3, "stem", bn=True)
    pairs = list(zip(_MNIST_WIDTHS, _MNIST_WIDTHS[1:]))
    for i, (in_ch, out_ch) in enumerate(pairs, 1):
        layers.append(block(in_ch, out_ch, f"block{i}"))
        if i < len(pairs):
            layers.append(MaxPool(2, 2, name=f"pool{i}"))
    return Sequential([*layers, GlobalAvgPool(name="gap"), Flatten(), Linear(_MNIST_WIDTHS[-1], 10, name="fc")])


_BOOK_NET = "effdl's own MNIST design (chapter 17): no published count"

DESIGNS: Mapping[str, Architecture] = MappingProxyType({a.key: a for a in [
    Architecture(
        "mnist_conv", "standard 3×3 conv net", 2015,
        "the book's reference net (3×3 convs as in VGG: Simonyan & Zisserman, ICLR 2015)",
        (1, 28, 28), _mnist_net(lambda i, o, n: Sequential(_conv_unit(i, o, 3, n, bn=True), name=n)),
        published_params=None, published_macs=None, published_source=_BOOK_NET),
    Architecture(
        "mnist_fire", "fire-module net", 2016,
        "the book's net of fire modules (Iandola et al., SqueezeNet, arXiv:1602.07360, 2016)",
        (1, 28, 28), _mnist_net(lambda i, o, n: _fire(n, i, o // 4, o // 2, o // 2, bn=True)),
        published_params=None, published_macs=None, published_source=_BOOK_NET),
    Architecture(
        "mnist_separable", "depthwise-separable net", 2017,
        "the book's net of depthwise-separable convs (Howard et al., MobileNets, arXiv:1704.04861, 2017)",
        (1, 28, 28), _mnist_net(lambda i, o, n: depthwise_separable(i, o, 3, name=n)),
        published_params=None, published_macs=None, published_source=_BOOK_NET),
]})


@validate_params(name=Options((*ARCHITECTURES, *DESIGNS)))
def get_architecture(name: str) -> Architecture:
    """The registered :class:`Architecture` called ``name`` (one of ``ARCHITECTURES`` or ``DESIGNS``).

    Taught in chapter 00, "Why efficiency".
    """
    return ARCHITECTURES[name] if name in ARCHITECTURES else DESIGNS[name]
