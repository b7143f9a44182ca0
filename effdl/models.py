"""The trainable models of the book: LeNet-300-100, LeNet-5 and a row-LSTM.

Used by every chapter that trains or compresses (pruning, quantization, …).
LeNet-300-100 and LeNet-5 follow Han, Mao & Dally, *Deep Compression*
(ICLR 2016), Tables 2 and 3: 266,610 and 431,080 parameters. LeNet-5 is the
Caffe variant (conv 20@5×5, pool, conv 50@5×5, pool, fc 500, fc 10); we add a
ReLU after each pooled conv so that every hidden activation is non-negative,
which the activation-quantization chapter relies on (Caffe's has none there;
the parameter count is unchanged). The row-LSTM reads a 28×28 image as 28
time steps of 28 pixels, the RNN of the pruning chapter.

Every model takes ``x`` of shape (batch, 1, 28, 28) and returns logits (batch, 10).
Weightless specs of the big ImageNet networks live in ``effdl.architectures``.
"""
from __future__ import annotations

import torch
from torch import nn

from .validation import Interval, ListOf, Module, Options, PositiveInt, check_part, validate_params


class LeNet300(nn.Module):
    """784-300-100-10 fully connected net (Deep Compression's LeNet-300-100).

    Behind chapter 11, "Parallelization".
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

    Behind chapter 11, "Parallelization".
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

    Behind chapter 11, "Parallelization".
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


MODELS = {"lenet300": LeNet300, "lenet5": LeNet5, "lstm": RowLSTM}


@validate_params(name=Options(MODELS), seed=Interval(int, 0, None, optional=True))
def build_model(name: str, *, seed: int | None = None) -> nn.Module:
    """A freshly initialised model by name (``"lenet300"``, ``"lenet5"``, ``"lstm"``).

    ``seed`` makes the initial weights reproducible without touching the
    global RNG (the weights are drawn under a forked RNG state).

    Taught in chapter 11, "Parallelization".
    """
    if seed is None:
        return MODELS[name]()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name]()


@validate_params(model=Module())
def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights and biases).

    Behind chapter 11, "Parallelization".
    """
    return sum(p.numel() for p in model.parameters())
