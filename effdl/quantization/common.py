"""Constants and argument checks shared by the quantization modules (bit-width ranges, tensors)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._validate import _fail, check_bool, check_int

PRIMITIVE_BITS = (2, 32)  # quantize / dequantize / fake_quantize / choose_scale (int32 biases included)
MODEL_BITS = (2, 16)      # weights and activations of a quantized model
DEFAULT_PERCENTILES = (0.01, 0.1, 99.9, 99.99)
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
QUANT_TYPES = (nn.Linear, nn.Conv2d)


# ---------------------------------------------------------------------------
# Checks shared by the public functions
# ---------------------------------------------------------------------------

def _check_bits(name: str, value: Any, bounds: tuple[int, int] = PRIMITIVE_BITS, *, optional: bool = False):
    if optional and value is None:
        return None
    return check_int(name, value, min=bounds[0], max=bounds[1])


def _check_tensor(name: str, x: Any, *, allow_inf: bool = False) -> torch.Tensor:
    """``x`` as a floating-point tensor (arrays and lists are converted); non-empty, no NaN."""
    if not isinstance(x, torch.Tensor):
        try:
            arr = np.asarray(x)
        except Exception:
            arr = None
        if arr is None or arr.dtype.kind not in "iuf" or isinstance(x, bool):
            _fail(TypeError, name, "a torch.Tensor or an array of real numbers", x)
        x = torch.as_tensor(arr, dtype=torch.float64)
    if x.dtype == torch.bool or x.is_complex():
        _fail(TypeError, name, "a real-valued tensor", x)
    if not x.is_floating_point():
        x = x.to(torch.float64)
    if x.numel() == 0:
        _fail(ValueError, name, "non-empty", x)
    bad = torch.isnan(x) if allow_inf else ~torch.isfinite(x)
    if bool(bad.any()):
        what = "free of NaN" if allow_inf else "finite (no NaN or inf)"
        _fail(ValueError, name, what, float(x.detach()[bad].flatten()[0]))
    return x


def qrange(n_bits: int, signed: bool) -> tuple[int, int]:
    """The integer range of an ``n_bits`` word: two's complement if ``signed``.

    >>> qrange(8, True), qrange(8, False), qrange(2, True)
    ((-128, 127), (0, 255), (-2, 1))
    """
    n_bits = _check_bits("n_bits", n_bits)
    check_bool("signed", signed)
    return (-(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1) if signed else (0, 2 ** n_bits - 1)


def _int_dtype(qmin: int, qmax: int) -> torch.dtype:
    """The smallest torch integer dtype holding [qmin, qmax]."""
    for dt in (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64):
        info = torch.iinfo(dt)
        if info.min <= qmin and qmax <= info.max:
            return dt
    raise AssertionError(f"no integer dtype holds [{qmin}, {qmax}]")
