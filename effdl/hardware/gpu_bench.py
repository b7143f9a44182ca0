"""Measurements on a CUDA GPU for the book's appendix: matmul throughput per format, mixed-precision
training steps, 2:4 structured sparsity and int8.

Chapter 16 (Appendix: measured on a GPU) runs :func:`gpu_report` when a CUDA
device is present and shows the measurements next to :data:`DATASHEET`,
NVIDIA's published peaks for the H100 and H200 (dense rates, without 2:4
sparsity); without a GPU it shows the peaks alone. The methods follow the
papers of the training chapters: Micikevicius et al., *Mixed Precision
Training* (ICLR 2018) for ``torch.autocast`` + ``GradScaler``; NVIDIA's
Ampere 2:4 fine-grained structured sparsity (two non-zeros in every group of
four, run by cuSPARSELt) for :func:`sparse_matmul`.

Every measuring function validates its arguments, then raises
``RuntimeError("… needs a CUDA device; none found.")`` when there is none,
so a CPU-only machine fails loudly instead of timing the CPU. Timings use
CUDA events after warm-up runs and report the median; a multiply-add counts
as two operations. :func:`two_four_mask` is pure and runs anywhere.
"""
from __future__ import annotations

import contextlib
import statistics
import time

import torch
from torch import nn
from torch.sparse import to_sparse_semi_structured

from .. import __version__ as effdl_version
from ..train import seeded
from ..training.mixed_precision import matmul_gflops
from ..validation import Bool, Instance, Interval, ListOf, Module, Options, PositiveInt, Seed, Tensor, validate_params


MATMUL_DTYPES = ("fp32", "tf32", "bf16", "fp16")
STEP_MODES = ("fp32", "tf32", "amp_bf16", "amp_fp16")
# NVIDIA's datasheet peaks (SXM boards), dense: the datasheets list Tensor Core rates "with
# sparsity", twice these. H100: NVIDIA H100 Tensor Core GPU datasheet (2022); H200: NVIDIA H200
# Tensor Core GPU datasheet (2023): the same compute as the H100, faster HBM3e.
DATASHEET = {
    "H100 SXM": {"source": "NVIDIA H100 Tensor Core GPU datasheet (2022)", "bib": "nvidia2022h100",
                 "bandwidth_tbs": 3.35, "int8_tops": 1979.0,
                 "tflops": {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5}},
    "H200 SXM": {"source": "NVIDIA H200 Tensor Core GPU datasheet (2023)", "bib": "nvidia2023h200",
                 "bandwidth_tbs": 4.8, "int8_tops": 1979.0,
                 "tflops": {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5}},
}
REPEATS = PositiveInt()
WARMUP = Interval(int, 0, None)
SIDE = PositiveInt(optional=True)          # k or n of a product; None: the same as m


# ------------------------------------------------------------------ helpers
@validate_params()
def cuda_available() -> bool:
    """True when torch sees a CUDA device.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    return torch.cuda.is_available()


def _require_cuda(what: str) -> None:
    if not torch.cuda.is_available():
        raise RuntimeError(f"{what} needs a CUDA device; none found.")


@contextlib.contextmanager
def _tf32(enabled: bool):
    """Allow (or forbid) TF32 Tensor Cores for fp32 matmuls and convolutions; restore on exit."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _cuda_ms(fn, *, warmup: int, repeats: int) -> float:
    """Median milliseconds of ``fn()`` on the current CUDA stream, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def _shape(m: int, k: int | None, n: int | None) -> tuple[int, int, int]:
    return m, m if k is None else k, m if n is None else n


@validate_params()
def device_name() -> str:
    """The CUDA device's name (``RuntimeError`` without one).

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("device_name")
    return torch.cuda.get_device_name(0)


# ----------------------------------------------------------- memory and matmul
@validate_params(n_bytes=Interval(int, 1 << 10, None), repeats=REPEATS, warmup=WARMUP)
def copy_bandwidth(*, n_bytes: int = 1 << 30, repeats: int = 10, warmup: int = 3) -> dict:
    """Device-to-device copy of ``n_bytes``: GB/s counting the bytes read *and* written (2 × n_bytes).

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("copy_bandwidth")
    src = torch.empty(n_bytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = _cuda_ms(lambda: dst.copy_(src), warmup=warmup, repeats=repeats)
    return {"n_bytes": n_bytes, "ms": ms, "gbs": 2 * n_bytes / (ms * 1e-3) / 1e9}


@validate_params(dtype=Options(MATMUL_DTYPES), n=PositiveInt(), repeats=REPEATS)
def matmul_throughput(dtype: str = "bf16", *, n: int = 8192, repeats: int = 10) -> dict:
    """TFLOP/s of an ``n × n × n`` CUDA matmul in ``dtype`` (fp32, tf32, bf16 or fp16).

    Measured by :func:`effdl.training.mixed_precision.matmul_gflops` (best of
    ``repeats`` after a warm-up, synchronised), the same function chapter 12
    uses on the CPU; "tf32" is an fp32 matmul with TF32 Tensor Cores
    allowed, "fp32" one with them forbidden.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("matmul_throughput")
    with _tf32(dtype == "tf32"):
        gflops = matmul_gflops("fp32" if dtype == "tf32" else dtype, n=n, repeats=repeats, device="cuda",
                               threads=None)
    return {"dtype": dtype, "n": n, "tflops": gflops / 1e3, "ms": 2 * n ** 3 / (gflops * 1e9) * 1e3}


@validate_params(m=PositiveInt(), k=SIDE, n=SIDE, repeats=REPEATS, warmup=WARMUP)
def int8_matmul(*, m: int = 8192, k: int | None = None, n: int | None = None, repeats: int = 10,
                warmup: int = 3) -> dict:
    """``torch._int_mm`` (int8 × int8 → int32) against an fp16 matmul of the same shape: TOPS of both.

    ``exact`` checks a 64×64 corner of the int32 result against the same
    product computed in float64 (exact for these sizes). ``torch._int_mm``
    needs m > 16 and k, n multiples of 8.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    m, k, n = _shape(m, k, n)
    if m <= 16 or k % 8 or n % 8:
        raise ValueError(f"int8_matmul: m must be > 16 and k, n multiples of 8 for torch._int_mm; "
                         f"got m={m}, k={k}, n={n}.")
    _require_cuda("int8_matmul")
    g = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randint(-128, 128, (m, k), generator=g, device="cuda", dtype=torch.int8)
    b = torch.randint(-128, 128, (k, n), generator=g, device="cuda", dtype=torch.int8)
    c = torch._int_mm(a, b)
    corner = a[:64].double() @ b[:, :64].double()
    exact = bool(torch.equal(c[:64, :64].double(), corner))
    int8_ms = _cuda_ms(lambda: torch._int_mm(a, b), warmup=warmup, repeats=repeats)
    ah = torch.randn(m, k, generator=g, device="cuda", dtype=torch.float16)   # fp16 operands of the same shape
    bh = torch.randn(k, n, generator=g, device="cuda", dtype=torch.float16)
    fp16_ms = _cuda_ms(lambda: ah @ bh, warmup=warmup, repeats=repeats)
    ops = 2.0 * m * k * n
    return {"m": m, "k": k, "n": n, "int8_ms": int8_ms, "fp16_ms": fp16_ms, "int8_tops": ops / int8_ms / 1e9,
            "fp16_tflops": ops / fp16_ms / 1e9, "exact": exact}


# ------------------------------------------------------------- 2:4 sparsity
@validate_params(weight=Tensor(dtype=None, convert=False))
def two_four_mask(weight: torch.Tensor) -> torch.Tensor:
    """Bool mask keeping the 2 largest magnitudes of every group of 4 consecutive weights along a row.

    ``weight`` (..., k) with k a multiple of 4; ties are broken towards the
    lower index (a stable sort of the magnitudes). The mask has exactly 50 %
    density — the 2:4 pattern Ampere-and-later Tensor Cores skip in hardware.

    >>> w = torch.tensor([[0.1, -3.0, 2.0, 0.5, 4.0, 0.0, -0.2, 1.0]])
    >>> two_four_mask(w).int().tolist()
    [[0, 1, 1, 0, 1, 0, 0, 1]]

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    if weight.dim() < 1 or weight.shape[-1] % 4:
        raise ValueError(f"two_four_mask: weight must have a non-empty last dimension that is a multiple of 4; "
                         f"got shape {tuple(weight.shape)}.")
    groups = weight.detach().abs().reshape(-1, 4)                  # (groups, 4)
    keep = torch.argsort(groups, dim=1, descending=True, stable=True)[:, :2]   # (groups, 2)
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, keep, True)
    return mask.reshape(weight.shape)


@validate_params(m=PositiveInt(), k=SIDE, n=SIDE, repeats=REPEATS, warmup=WARMUP, seed=Seed())
def sparse_matmul(*, m: int = 8192, k: int | None = None, n: int | None = None, repeats: int = 10,
                  warmup: int = 3, seed: int = 0) -> dict:
    """2:4 semi-structured sparse ``A (m×k) @ B (k×n)`` in fp16 against the dense matmul of the same A.

    A is pruned with :func:`two_four_mask` and compressed with
    ``torch.sparse.to_sparse_semi_structured`` (cuSPARSELt where available);
    ``speedup`` = dense time ÷ sparse time, so > 1 means sparse is faster.
    ``max_abs_error`` compares the two results (both multiply the same
    pruned A). Sizes must be multiples of 64.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    m, k, n = _shape(m, k, n)
    if m % 64 or k % 64 or n % 64:
        raise ValueError(f"sparse_matmul: m, k and n must be multiples of 64 for 2:4 sparse fp16; "
                         f"got m={m}, k={k}, n={n}.")
    _require_cuda("sparse_matmul")

    g = torch.Generator(device="cuda").manual_seed(seed)
    a = torch.randn(m, k, generator=g, device="cuda", dtype=torch.float16)
    a = a * two_four_mask(a)                                          # exactly 2 of every 4 kept
    b = torch.randn(k, n, generator=g, device="cuda", dtype=torch.float16)
    a_sparse = to_sparse_semi_structured(a)
    err = float((torch.mm(a_sparse, b).float() - (a @ b).float()).abs().max())
    dense_ms = _cuda_ms(lambda: a @ b, warmup=warmup, repeats=repeats)
    sparse_ms = _cuda_ms(lambda: torch.mm(a_sparse, b), warmup=warmup, repeats=repeats)
    return {"m": m, "k": k, "n": n, "dense_ms": dense_ms, "sparse_ms": sparse_ms, "speedup": dense_ms / sparse_ms,
            "backend": type(a_sparse).__name__, "max_abs_error": err}


# ------------------------------------------------------------- training step
@validate_params(n_classes=Interval(int, 2, None))
def small_cnn(n_classes: int = 10) -> nn.Module:
    """A small CIFAR-sized CNN (3×32×32 input): three conv-BN-ReLU-pool stages and a linear layer.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    layers, c_in = [], 3
    for c_out in (64, 128, 256):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                   nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, n_classes))


@validate_params(model=Module(), x=Tensor(convert=False), y=Tensor(dtype=None, convert=False),
                 mode=Options(STEP_MODES))
def make_train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str = "fp32"):
    """A closure doing one SGD step (lr 0.01, momentum 0.9) of ``model`` on ``(x, y)`` in precision ``mode``.

    ``amp_bf16`` / ``amp_fp16`` run the forward pass under ``torch.autocast``
    on ``x``'s device type; ``amp_fp16`` scales the loss with
    ``torch.amp.GradScaler`` (skipping the step on inf/NaN gradients, as
    Micikevicius et al. prescribe). ``tf32`` differs from ``fp32`` only by
    the TF32 switch the caller sets. The closure returns the loss.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    device = x.device.type
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    amp_dtype = {"amp_bf16": torch.bfloat16, "amp_fp16": torch.float16}.get(mode)
    scaler = torch.amp.GradScaler(device, enabled=mode == "amp_fp16")

    def step():
        autocast = contextlib.nullcontext() if amp_dtype is None else torch.autocast(device, dtype=amp_dtype)
        with autocast:
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.detach()

    step.scaler = scaler
    return step


@validate_params(batch_size=PositiveInt(), image_size=Interval(int, 8, None), steps=PositiveInt(), warmup=WARMUP,
                 modes=ListOf(Options(STEP_MODES)), seed=Seed())
def training_step_times(*, batch_size: int = 256, image_size: int = 32, steps: int = 20, warmup: int = 5,
                        modes=STEP_MODES, seed: int = 0) -> dict:
    """Milliseconds per SGD training step of :func:`small_cnn` on random images, per precision mode.

    ``fp32`` (TF32 forbidden), ``tf32`` (fp32 with TF32 Tensor Cores),
    ``amp_bf16`` (``torch.autocast`` bf16, no scaler needed) and ``amp_fp16``
    (``torch.autocast`` fp16 with ``torch.amp.GradScaler``). Every mode
    starts from the same weights and data. Returns ``{"step_ms": {mode: ms},
    "speedup": {mode: fp32 ms ÷ mode ms}, ...}``.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("training_step_times")
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(batch_size, 3, image_size, image_size, generator=g, device="cuda")
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,), generator=g, device="cuda")
    with seeded(seed):                                   # the same initial weights for every mode
        initial = small_cnn().state_dict()
    out = {"batch_size": batch_size, "image_size": image_size, "steps": steps, "step_ms": {}}
    for mode in modes:
        model = small_cnn().cuda()
        model.load_state_dict(initial)
        step = make_train_step(model.to(memory_format=torch.channels_last), x, y, mode)
        with _tf32(mode == "tf32"):
            out["step_ms"][mode] = _cuda_ms(step, warmup=warmup, repeats=steps)
    if "fp32" in out["step_ms"]:
        out["speedup"] = {m: out["step_ms"]["fp32"] / t for m, t in out["step_ms"].items()}
    return out


# ------------------------------------------------------------------ the report
@validate_params(quick=Bool())
def gpu_report(*, quick: bool = False) -> dict:
    """Every measurement of the appendix on this machine's GPU, as a JSON-able dict.

    ``quick=True`` uses smaller sizes (4096³ matmuls, 256 MiB copies, 4096³
    sparse) for a smoke test of a minute or less; the default: 8192³ matmuls
    and 2:4 sparse products at 16384³, 8192³ and 16384×4096×4096.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """

    _require_cuda("gpu_report")
    n = 4096 if quick else 8192
    started = time.perf_counter()
    sparse_shapes = [(4096, 4096, 4096)] if quick else [(16384, 16384, 16384), (8192, 8192, 8192),
                                                         (16384, 4096, 4096)]
    report = {
        "device": device_name(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "effdl": effdl_version, "quick": quick,
        "copy": copy_bandwidth(n_bytes=(1 << 28) if quick else (1 << 30)),
        "matmul": {d: matmul_throughput(d, n=n) for d in MATMUL_DTYPES},
        "int8": int8_matmul(m=n),
        "sparse": [sparse_matmul(m=m, k=k, n=nn_) for m, k, nn_ in sparse_shapes],
        "training_step": training_step_times(steps=10 if quick else 20),
    }
    report["seconds"] = time.perf_counter() - started
    return report


@validate_params(report=Instance(dict, "a dict from gpu_report()", optional=True), chip=Options(tuple(DATASHEET)))
def report_rows(report: dict | None = None, chip: str = "H200 SXM") -> list[dict]:
    """A measurement report (from :func:`gpu_report`) as table rows ``{"measurement", "value", "unit",
    "peak"}``, ``peak`` being ``chip``'s datasheet figure where the datasheet has one (None otherwise).

    With ``report=None`` (no GPU here): the datasheet's rows alone, ``value`` None.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    peaks = _peak_rows(chip)
    if report is None:
        return [{"measurement": r["measurement"], "value": None, "unit": r["unit"], "peak": r["peak"]} for r in peaks]
    missing = {"copy", "matmul", "int8", "sparse", "training_step"} - set(report)
    if missing:
        raise ValueError(f"report_rows: report must hold the sections of gpu_report(); "
                         f"got one without {sorted(missing)}.")
    by_kind = {r["kind"]: r["peak"] for r in peaks}
    rows = [{"measurement": "device-to-device copy", "kind": "bandwidth", "value": report["copy"]["gbs"] / 1e3,
             "unit": "TB/s"}]
    for d, r in report["matmul"].items():
        rows.append({"measurement": f"matmul {r['n']}³ {d}", "kind": d, "value": r["tflops"], "unit": "TFLOP/s"})
    i8 = report["int8"]
    rows.append({"measurement": f"matmul {i8['m']}³ int8 (torch._int_mm)", "kind": "int8", "value": i8["int8_tops"],
                 "unit": "TOPS"})
    for s in report["sparse"]:
        rows.append({"measurement": f"2:4 sparse fp16 {s['m']}×{s['k']}×{s['n']} speed-up", "kind": None,
                     "value": s["speedup"], "unit": "× dense"})
    step = report["training_step"]
    for mode, ms in step["step_ms"].items():
        rows.append({"measurement": f"CNN training step, batch {step['batch_size']}, {mode}", "kind": None,
                     "value": ms, "unit": "ms"})
    for row in rows:
        row["peak"] = by_kind.get(row.pop("kind"))
    return rows


def _peak_rows(chip: str) -> list[dict]:
    sheet = DATASHEET[chip]
    rows = [{"measurement": "memory bandwidth", "kind": "bandwidth", "peak": sheet["bandwidth_tbs"], "unit": "TB/s"}]
    rows += [{"measurement": f"matmul {d}", "kind": d, "peak": v, "unit": "TFLOP/s"}
             for d, v in sheet["tflops"].items()]
    rows.append({"measurement": "matmul int8", "kind": "int8", "peak": sheet["int8_tops"], "unit": "TOPS"})
    return rows
