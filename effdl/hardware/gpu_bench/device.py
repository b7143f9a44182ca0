"""The CUDA device, the TF32 switches, and the one timing method every GPU measurement uses.

Timing (:func:`_event_ms`): ``calls`` back-to-back calls of a function are
enqueued between one pair of CUDA events, and the elapsed time ÷ ``calls`` is
one sample; the result is the median of ``repeats`` samples, after ``warmup``
calls. Timing each call alone on an empty queue would add the host's launch
and set-up cost to every sample (cuSPARSELt, for one, builds its descriptors
and plan on the host per call); back to back, the host prepares call i+1
while the GPU runs call i, so a kernel long enough to keep the queue full is
timed by the GPU alone.

TF32 (:func:`_tf32`): PyTorch ≥ 2.9 sets fp32 matmuls and cuDNN convolutions
through ``torch.backends.cuda.matmul.fp32_precision`` and
``torch.backends.cudnn.conv.fp32_precision`` ("tf32" or "ieee"); the older
``allow_tf32`` flags warn there, and reading an old flag after setting a new
one raises, so only the new switches are touched where they exist, and the
old ones on an older torch.
"""
from __future__ import annotations

import contextlib
import statistics

import torch

from ...validation import validate_params


DEVICE = "cuda"        # where the measurements put their tensors (the CPU tests point it at "cpu", with mocks)

@validate_params()
def cuda_available() -> bool:
    """True when torch sees a CUDA device.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    return torch.cuda.is_available()


def _require_cuda(what: str) -> None:
    if not torch.cuda.is_available():
        raise RuntimeError(f"{what} needs a CUDA device; none found.")


@validate_params()
def device_name() -> str:
    """The CUDA device's name (``RuntimeError`` without one).

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("device_name")
    return torch.cuda.get_device_name(0)


@validate_params()
def device_info() -> dict:
    """What a measurement report records about the machine: the device's name, compute capability,
    memory and multiprocessor count, and the versions of torch, CUDA, cuDNN and cuSPARSELt (None where
    this build has none).

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("device_info")
    props = torch.cuda.get_device_properties(0)
    major, minor = torch.cuda.get_device_capability(0)
    return {"name": props.name, "capability": [major, minor], "memory_gib": round(props.total_memory / 2 ** 30, 1),
            "multiprocessors": props.multi_processor_count, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cusparselt": torch.backends.cusparselt.version() if torch.backends.cusparselt.is_available() else None}


# ------------------------------------------------------------------- TF32
def _tf32_switches() -> list[tuple[object, str, object, object]]:
    """(object, attribute, value for TF32 on, value for off) of each switch this torch has."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and conv is not None and hasattr(conv, "fp32_precision"):
        return [(matmul, "fp32_precision", "tf32", "ieee"), (conv, "fp32_precision", "tf32", "ieee")]
    return [(matmul, "allow_tf32", True, False), (cudnn, "allow_tf32", True, False)]   # torch < 2.9


@contextlib.contextmanager
def _tf32(enabled: bool):
    """Allow (or forbid) TF32 Tensor Cores for fp32 matmuls and cuDNN convolutions; restore on exit."""
    switches = _tf32_switches()
    before = [getattr(obj, attr) for obj, attr, _, _ in switches]
    for obj, attr, on, off in switches:
        setattr(obj, attr, on if enabled else off)
    try:
        yield
    finally:
        for (obj, attr, _, _), value in zip(switches, before):
            setattr(obj, attr, value)


# ------------------------------------------------------------------- timing
def _event_ms(fn, *, calls: int, repeats: int, warmup: int) -> float:
    """Milliseconds per call of ``fn()``: the median over ``repeats`` of (one CUDA-event pair around
    ``calls`` back-to-back calls) ÷ ``calls``, after ``warmup`` calls and a synchronise."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    per_call = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        stop.record()
        stop.synchronize()
        per_call.append(start.elapsed_time(stop) / calls)
    return statistics.median(per_call)
