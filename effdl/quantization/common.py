"""Constants and argument constraints shared by the quantization modules (bit-width ranges, tensors)."""
from __future__ import annotations

import torch
from torch import nn

from ..data import Split
from ..validation import Bool, Instance, Interval, ListOf, Tensor, Unchecked, validate_params

PRIMITIVE_BITS = (2, 32)  # quantize / dequantize / fake_quantize / choose_scale (int32 biases included)
MODEL_BITS = (2, 16)      # weights and activations of a quantized model
DEFAULT_PERCENTILES = (0.01, 0.1, 99.9, 99.99)
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
QUANT_TYPES = (nn.Linear, nn.Conv2d)


# ---------------------------------------------------------------------------
# Constraints shared by the public functions (effdl.validation)
# ---------------------------------------------------------------------------

BITS = Interval(int, *PRIMITIVE_BITS)                       # n_bits of a primitive
MODEL_N_BITS = Interval(int, *MODEL_BITS, optional=True)    # n_bits_weight / n_bits_act of a model; None = float
PERCENTILE = Interval(float, 50, 100, closed="right", optional=True)   # a clipping percentile, P(100 − p)..P(p)
PERCENTILES = ListOf(Interval(float, 0, 100), nonempty=False)
SPLIT = Instance(Split, "an effdl.data.Split")
BATCHES = Unchecked("a Split, a tensor of inputs or an iterable of batches: each batch is checked as it is read")
VALUES = Tensor(dtype=None)                                 # real values, any dtype (integers become float64)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """A checked tensor of real values in floating point (integers → float64, exactly)."""
    return x if x.is_floating_point() else x.to(torch.float64)


def _refuse_nan(func: str, name: str, x: torch.Tensor) -> None:
    """NaN is refused; ±inf saturates (where a function documents it)."""
    bad = torch.isnan(x.detach())
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{func}: {name} must be free of NaN; got nan at index {where}.")


@validate_params(n_bits=BITS, signed=Bool())
def qrange(n_bits: int, signed: bool) -> tuple[int, int]:
    """The integer range of an ``n_bits`` word: two's complement if ``signed``.

    >>> qrange(8, True), qrange(8, False), qrange(2, True)
    ((-128, 127), (0, 255), (-2, 1))

    Taught in chapter 05, "Quantization".
    """
    return _qrange(n_bits, signed)


def _qrange(n_bits: int, signed: bool) -> tuple[int, int]:
    return (-(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1) if signed else (0, 2 ** n_bits - 1)


def _int_dtype(qmin: int, qmax: int) -> torch.dtype:
    """The smallest torch integer dtype holding [qmin, qmax]."""
    for dt in (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64):
        info = torch.iinfo(dt)
        if info.min <= qmin and qmax <= info.max:
            return dt
    raise AssertionError(f"no integer dtype holds [{qmin}, {qmax}]")
