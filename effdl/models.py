"""The trainable models of the book: LeNet-300-100, LeNet-5, a row-LSTM and efficient blocks.

Used by every chapter that trains or compresses (pruning, quantization, …).
LeNet-300-100 and LeNet-5 follow Han, Mao & Dally, *Deep Compression*
(ICLR 2016), Tables 2 and 3: 266,610 and 431,080 parameters. LeNet-5 is the
Caffe variant (conv 20@5×5, pool, conv 50@5×5, pool, fc 500, fc 10); we add a
ReLU after each pooled conv so that every hidden activation is non-negative,
which the activation-quantization chapter relies on (Caffe's has none there;
the parameter count is unchanged). The row-LSTM reads a 28×28 image as 28
time steps of 28 pixels, the RNN of the pruning chapter.

The building blocks of chapter 17 are SqueezeNet's fire module (Iandola et al.,
arXiv:1602.07360), MobileNet's depthwise-separable convolution (Howard et al.,
arXiv:1704.04861) and MobileNetV2's inverted residual (Sandler et al., CVPR
2018); :class:`ConvNet`, :class:`FireNet` and :class:`SeparableNet` are three
MNIST nets of the same depth and widths built from a standard 3×3 conv, a fire
module and a depthwise-separable conv respectively. Every conv of these blocks
is followed by a batch norm (so it has no bias), then a ReLU, as in MobileNet;
SqueezeNet's fire module had no batch norm, we add it so that the three nets
train alike. Batch norm adds two parameters per channel and no MACs (at
inference it folds into the conv).

Every model takes ``x`` of shape (batch, 1, 28, 28) and returns logits (batch, 10).
Weightless specs of the big ImageNet networks live in ``effdl.architectures``.
"""
from __future__ import annotations

import torch
from torch import nn

from .validation import Interval, ListOf, Module, Options, PositiveInt, check_part, validate_params


class LeNet300(nn.Module):
    """784-300-100-10 fully connected net (Deep Compression's LeNet-300-100).

    Behind chapter 17, "Designing efficient models".
    """

    def __init__(self, hidden: tuple[int, int] = (300, 100)):
        super().__init__()
        widths = check_part("LeNet300", ListOf(PositiveInt()), "hidden", hidden)
        if len(widths) != 2:
            raise ValueError(f"LeNet300: hidden must be two layer widths (h1, h2); got {hidden!r}.")
        h1, h2 = widths
        self.fc1 = nn.Linear(784, h1)
        self.fc2 = nn.Linear(h1, h2)
        self.fc3 = nn.Linear(h2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)                       # (batch, 784)
        x = torch.relu(self.fc1(x))            # (batch, 300)
        x = torch.relu(self.fc2(x))            # (batch, 100)
        return self.fc3(x)                     # (batch, 10)


class LeNet5(nn.Module):
    """Caffe LeNet-5 as in Deep Compression Table 3 (ReLU after each pooled conv).

    Behind chapter 17, "Designing efficient models".
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)       # 28×28 → 24×24
        self.conv2 = nn.Conv2d(20, 50, 5)      # 12×12 → 8×8
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(nn.functional.max_pool2d(self.conv1(x), 2))   # (batch, 20, 12, 12)
        x = torch.relu(nn.functional.max_pool2d(self.conv2(x), 2))   # (batch, 50, 4, 4)
        x = torch.relu(self.fc1(x.flatten(1)))                        # (batch, 500)
        return self.fc2(x)                                            # (batch, 10)


class RowLSTM(nn.Module):
    """Reads the image row by row (28 steps × 28 pixels); classifies from the last state.

    Behind chapter 17, "Designing efficient models".
    """

    def __init__(self, hidden_size: int = 128):
        super().__init__()
        self.hidden_size = check_part("RowLSTM", PositiveInt(), "hidden_size", hidden_size)
        self.lstm = nn.LSTM(28, self.hidden_size, batch_first=True)
        self.fc = nn.Linear(self.hidden_size, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(x.shape[0], 28, 28)   # (batch, time=28, pixels=28)
        out, _ = self.lstm(rows)               # (batch, 28, hidden)
        return self.fc(out[:, -1])             # (batch, 10)


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    # no bias: the batch norm's β plays its part
    return [nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch)]


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(*_conv_bn(in_ch, out_ch, kernel, stride, groups), nn.ReLU())


def _positive(owner: str, **values: int) -> list[int]:
    return [check_part(owner, PositiveInt(), name, value) for name, value in values.items()]


def _odd_kernel(owner: str, kernel: int) -> int:
    kernel = check_part(owner, PositiveInt(), "kernel", kernel)
    if kernel % 2 == 0:   # padding k // 2 keeps the map's size only for odd kernels
        raise ValueError(f"{owner}: kernel must be an odd positive integer; got {kernel!r}.")
    return kernel


class Fire(nn.Module):
    """SqueezeNet's fire module: a 1×1 *squeeze* conv, then 1×1 and 3×3 *expand* convs side by side.

    ``(batch, in_ch, H, W) → (batch, expand1 + expand3, H, W)``; every conv is
    followed by batch norm and ReLU. Weights: ``in_ch·s + s·e1 + 9·s·e3`` for
    ``s = squeeze`` (plus ``2·(s + e1 + e3)`` batch-norm γ, β), against
    ``9·in_ch·(e1 + e3)`` for a 3×3 conv with the same output.

    Taught in chapter 17, "Designing efficient models".
    """

    def __init__(self, in_ch: int, squeeze: int, expand1: int, expand3: int):
        super().__init__()
        in_ch, squeeze, expand1, expand3 = _positive("Fire", in_ch=in_ch, squeeze=squeeze, expand1=expand1,
                                                     expand3=expand3)
        self.squeeze = _conv_bn_relu(in_ch, squeeze, 1)
        self.expand1 = _conv_bn_relu(squeeze, expand1, 1)
        self.expand3 = _conv_bn_relu(squeeze, expand3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)                                               # (batch, squeeze, H, W)
        return torch.cat([self.expand1(s), self.expand3(s)], dim=1)       # (batch, e1 + e3, H, W)


class DepthwiseSeparable(nn.Module):
    """MobileNet's depthwise-separable conv: a k×k depthwise conv, then a 1×1 pointwise conv.

    The depthwise conv filters each channel alone (``groups=in_ch``), the
    pointwise conv mixes channels; each is followed by batch norm and ReLU
    (MobileNet's Fig. 3). Padding ``kernel // 2``, so
    ``(batch, in_ch, H, W) → (batch, out_ch, ⌈H/stride⌉, ⌈W/stride⌉)``.
    MACs: ``H'W'·in_ch·k² + H'W'·in_ch·out_ch``, i.e. ``1/out_ch + 1/k²`` of a
    standard k×k conv's ``H'W'·in_ch·out_ch·k²``.

    Taught in chapter 17, "Designing efficient models".
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        in_ch, out_ch, stride = _positive("DepthwiseSeparable", in_ch=in_ch, out_ch=out_ch, stride=stride)
        kernel = _odd_kernel("DepthwiseSeparable", kernel)
        self.depthwise = _conv_bn_relu(in_ch, in_ch, kernel, stride, groups=in_ch)
        self.pointwise = _conv_bn_relu(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise(x)                   # (batch, in_ch, H', W'): one k×k filter per channel
        return self.pointwise(x)                # (batch, out_ch, H', W'): 1×1 mixes the channels


class InvertedResidual(nn.Module):
    """MobileNetV2's inverted residual: 1×1 expand, k×k depthwise, 1×1 *linear* projection.

    ``hidden = in_ch · expansion`` channels inside (the expand conv is left out
    when ``expansion == 1``, as in MobileNetV2); ReLU6 after the expand and the
    depthwise conv, none after the projection (the "linear bottleneck"); every
    conv is followed by batch norm; the input is added back when ``stride == 1``
    and ``in_ch == out_ch``.

    Taught in chapter 17, "Designing efficient models".
    """

    def __init__(self, in_ch: int, out_ch: int, expansion: int = 6, kernel: int = 3, stride: int = 1):
        super().__init__()
        in_ch, out_ch, expansion, stride = _positive("InvertedResidual", in_ch=in_ch, out_ch=out_ch,
                                                     expansion=expansion, stride=stride)
        kernel = _odd_kernel("InvertedResidual", kernel)
        hidden = in_ch * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += _conv_bn(in_ch, hidden, 1) + [nn.ReLU6()]                             # expand
        layers += _conv_bn(hidden, hidden, kernel, stride, groups=hidden) + [nn.ReLU6()]    # depthwise
        layers += _conv_bn(hidden, out_ch, 1)                                               # linear projection
        self.body = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)                        # (batch, out_ch, H', W')
        return x + y if self.use_residual else y


# The three chapter-17 nets share one skeleton: a 3×3 stem conv (1 → 16 channels, as
# MobileNet keeps its first layer a standard conv), three blocks 16 → 32 (28×28),
# max pool, 32 → 64 (14×14), max pool, 64 → 64 (7×7), global average pool, fc 64 → 10.
WIDTHS = (16, 32, 64, 64)


class _BlockNet(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.stem = _conv_bn_relu(1, WIDTHS[0], 3)
        self.blocks = nn.ModuleList(block(i, o) for i, o in zip(WIDTHS, WIDTHS[1:]))
        self.fc = nn.Linear(WIDTHS[-1], 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)                                           # (batch, 16, 28, 28)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < len(self.blocks) - 1:
                x = nn.functional.max_pool2d(x, 2)                 # 28 → 14 → 7
        return self.fc(x.mean(dim=(2, 3)))                         # (batch, 64) → (batch, 10)


class ConvNet(_BlockNet):
    """Chapter 17's reference MNIST net: every block a standard 3×3 conv + batch norm + ReLU (9.1 M MACs).

    Behind chapter 17, "Designing efficient models".
    """

    def __init__(self):
        super().__init__(lambda i, o: _conv_bn_relu(i, o, 3))


def _fire_block(in_ch: int, out_ch: int) -> Fire:
    # squeeze to a quarter of the output, expand half 1×1 and half 3×3
    return Fire(in_ch, out_ch // 4, out_ch // 2, out_ch // 2)


class FireNet(_BlockNet):
    """:class:`ConvNet` with every block a fire module (squeeze ``out/4``, expand ``out/2`` 1×1 ‖ ``out/2`` 3×3).

    Behind chapter 17, "Designing efficient models".
    """

    def __init__(self):
        super().__init__(_fire_block)


class SeparableNet(_BlockNet):
    """:class:`ConvNet` with every block a 3×3 depthwise-separable conv (MobileNet's block).

    Behind chapter 17, "Designing efficient models".
    """

    def __init__(self):
        super().__init__(DepthwiseSeparable)


MODELS = {"lenet300": LeNet300, "lenet5": LeNet5, "lstm": RowLSTM,
          "mnist_conv": ConvNet, "mnist_fire": FireNet, "mnist_separable": SeparableNet}


@validate_params(name=Options(MODELS), seed=Interval(int, 0, None, optional=True))
def build_model(name: str, *, seed: int | None = None) -> nn.Module:
    """A freshly initialised model by name (``"lenet300"``, ``"lenet5"``, ``"lstm"``, ``"mnist_conv"``, …).

    ``seed`` makes the initial weights reproducible without touching the
    global RNG (the weights are drawn under a forked RNG state).

    Taught in chapter 17, "Designing efficient models".
    """
    if seed is None:
        return MODELS[name]()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name]()


@validate_params(model=Module())
def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights and biases).

    Behind chapter 17, "Designing efficient models".
    """
    return sum(p.numel() for p in model.parameters())
