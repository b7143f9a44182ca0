"""Single-kernel measurements on a CUDA GPU: copy bandwidth, matmul per number format, int8 in both
operand layouts, and 2:4 structured sparsity (with :func:`two_four_mask`, which runs anywhere).

Every function validates its arguments, then raises ``RuntimeError("… needs
a CUDA device; none found.")`` without one; inputs are created on the device
by a seeded ``torch.Generator``, and every time comes from
:func:`~effdl.hardware.gpu_bench.device._event_ms` (back-to-back calls between
one pair of CUDA events, median). A multiply-add counts as two operations.

int8 (``torch._int_mm``, int8 × int8 → int32) runs on cuBLASLt, whose int8
Tensor Core kernels take A row-major and B column-major (the "TN" layout);
a row-major B is either transposed on the fly or sent to a slower kernel, so
:func:`int8_matmul` measures both layouts of the same B and names them.

2:4 sparsity (NVIDIA Ampere and later, compute capability ≥ 8.0; Mishra et
al., "Accelerating Sparse Deep Neural Networks", 2021) runs on cuSPARSELt
when this torch build has it, else on PyTorch's CUTLASS kernels;
:func:`sparse_matmul` chooses the backend explicitly, says which, and for
cuSPARSELt asks ``torch._cslt_sparse_mm_search`` for the fastest algorithm.
"""
from __future__ import annotations

import contextlib

import torch
from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

from ...validation import Interval, Options, PositiveInt, Seed, Tensor, validate_params
from . import device as dev
from .device import _event_ms, _require_cuda, _tf32


MATMUL_DTYPES = ("fp32", "tf32", "bf16", "fp16")
TORCH_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
INT8_LAYOUTS = {"b_col_major": "B column-major, (n, k).t()", "b_row_major": "B row-major (k, n)"}
SPARSE_BACKENDS = ("cusparselt", "cutlass")
CALLS = PositiveInt()                      # back-to-back calls between one pair of CUDA events
REPEATS = PositiveInt()                    # event pairs; the median is reported
WARMUP = Interval(int, 0, None)
SIDE = PositiveInt(optional=True)          # k or n of a product; None: the same as m


def _shape(m: int, k: int | None, n: int | None) -> tuple[int, int, int]:
    return m, m if k is None else k, m if n is None else n


# ----------------------------------------------------------- memory and matmul
@validate_params(n_bytes=Interval(int, 1 << 10, None), calls=CALLS, repeats=REPEATS, warmup=WARMUP)
def copy_bandwidth(*, n_bytes: int = 1 << 30, calls: int = 5, repeats: int = 5, warmup: int = 2) -> dict:
    """Device-to-device copy of ``n_bytes``: GB/s counting the bytes read *and* written (2 × n_bytes).

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("copy_bandwidth")
    src = torch.empty(n_bytes, dtype=torch.uint8, device=dev.DEVICE)
    dst = torch.empty_like(src)
    ms = _event_ms(lambda: dst.copy_(src), calls=calls, repeats=repeats, warmup=warmup)
    return {"n_bytes": n_bytes, "ms": ms, "gbs": 2 * n_bytes / (ms * 1e-3) / 1e9}


@validate_params(dtype=Options(MATMUL_DTYPES), n=PositiveInt(), calls=CALLS, repeats=REPEATS, warmup=WARMUP,
                 seed=Seed())
def matmul_throughput(dtype: str = "bf16", *, n: int = 8192, calls: int = 10, repeats: int = 5, warmup: int = 3,
                      seed: int = 0) -> dict:
    """TFLOP/s of an ``n × n × n`` CUDA matmul in ``dtype`` (fp32, tf32, bf16 or fp16).

    "tf32" is an fp32 matmul with TF32 Tensor Cores allowed, "fp32" one with
    them forbidden (the switch is restored afterwards). The operands are
    drawn on the device; the product is written into one preallocated output.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("matmul_throughput")
    g = torch.Generator(device=dev.DEVICE).manual_seed(seed)
    a = torch.randn(n, n, generator=g, device=dev.DEVICE, dtype=TORCH_DTYPES[dtype])   # (n, n)
    b = torch.randn(n, n, generator=g, device=dev.DEVICE, dtype=TORCH_DTYPES[dtype])
    out = torch.empty_like(a)
    with _tf32(dtype == "tf32"):
        ms = _event_ms(lambda: torch.mm(a, b, out=out), calls=calls, repeats=repeats, warmup=warmup)
    return {"dtype": dtype, "n": n, "ms": ms, "tflops": 2 * n ** 3 / (ms * 1e-3) / 1e12}


@validate_params(m=PositiveInt(), k=SIDE, n=SIDE, calls=CALLS, repeats=REPEATS, warmup=WARMUP, seed=Seed())
def int8_matmul(*, m: int = 8192, k: int | None = None, n: int | None = None, calls: int = 10, repeats: int = 5,
                warmup: int = 3, seed: int = 0) -> dict:
    """``torch._int_mm`` (int8 × int8 → int32) with B in both layouts, against an fp16 matmul of the same shape.

    The same values of B (k × n) are stored row-major (``b_row_major``:
    a contiguous (k, n) tensor) and column-major (``b_col_major``: a
    contiguous (n, k) tensor seen through ``.t()``, the layout cuBLASLt's
    int8 Tensor Core kernels take). Returns per layout ``int8_ms``,
    ``int8_tops`` and ``exact`` (the int32 product equals float64's on a
    64×64 corner, and both layouts give the same product), plus
    ``fp16_ms`` / ``fp16_tflops``. ``torch._int_mm`` needs m > 16 and k, n
    multiples of 8.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    m, k, n = _shape(m, k, n)
    if m <= 16 or k % 8 or n % 8:
        raise ValueError(f"int8_matmul: m must be > 16 and k, n multiples of 8 for torch._int_mm; "
                         f"got m={m}, k={k}, n={n}.")
    _require_cuda("int8_matmul")
    g = torch.Generator(device=dev.DEVICE).manual_seed(seed)
    a = torch.randint(-128, 128, (m, k), generator=g, device=dev.DEVICE, dtype=torch.int8)   # (m, k) row-major
    b = {"b_row_major": torch.randint(-128, 128, (k, n), generator=g, device=dev.DEVICE, dtype=torch.int8)}
    b["b_col_major"] = b["b_row_major"].t().contiguous().t()      # (k, n) view of an (n, k) tensor: strides (1, k)
    corner = a[:64].double() @ b["b_row_major"][:, :64].double()  # exact: |sum| < 2^53
    out = {"m": m, "k": k, "n": n, "int8_ms": {}, "int8_tops": {}, "exact": {}}
    reference = torch._int_mm(a, b["b_row_major"])
    for layout in INT8_LAYOUTS:
        c = torch._int_mm(a, b[layout])
        out["exact"][layout] = bool(torch.equal(c[:64, :64].double(), corner) and torch.equal(c, reference))
        ms = _event_ms(lambda: torch._int_mm(a, b[layout]), calls=calls, repeats=repeats, warmup=warmup)
        out["int8_ms"][layout], out["int8_tops"][layout] = ms, 2.0 * m * k * n / (ms * 1e-3) / 1e12
    ah = torch.randn(m, k, generator=g, device=dev.DEVICE, dtype=torch.float16)   # fp16 operands of the same shape
    bh = torch.randn(k, n, generator=g, device=dev.DEVICE, dtype=torch.float16)
    out["fp16_ms"] = _event_ms(lambda: ah @ bh, calls=calls, repeats=repeats, warmup=warmup)
    out["fp16_tflops"] = 2.0 * m * k * n / (out["fp16_ms"] * 1e-3) / 1e12
    return out


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


@validate_params()
def sparse_backend() -> str:
    """The 2:4 backend this machine runs: "cusparselt" when this torch build has cuSPARSELt, else "cutlass".

    Raises ``RuntimeError`` without a CUDA device, or on a GPU below compute
    capability 8.0 (2:4 sparse Tensor Cores arrived with Ampere).

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("sparse_backend")
    major, minor = torch.cuda.get_device_capability(0)
    if (major, minor) < (8, 0):
        raise RuntimeError(f"sparse_backend: 2:4 semi-structured sparsity needs compute capability >= 8.0 "
                           f"(Ampere or later); this GPU is sm_{major}{minor}.")
    return "cusparselt" if torch.backends.cusparselt.is_available() else "cutlass"


@contextlib.contextmanager
def _forced_backend(backend: str):
    """Make ``to_sparse_semi_structured`` build ``backend``'s tensor subclass; restore the class flag on exit."""
    before = SparseSemiStructuredTensor._FORCE_CUTLASS
    SparseSemiStructuredTensor._FORCE_CUTLASS = backend == "cutlass"
    try:
        yield
    finally:
        SparseSemiStructuredTensor._FORCE_CUTLASS = before


def _search_alg_id(a_sparse, b: torch.Tensor) -> int:
    """cuSPARSELt's fastest algorithm for ``a_sparse @ b`` (the same call ``torch.mm`` makes: no transposes)."""
    found = torch._cslt_sparse_mm_search(a_sparse.packed, b)
    return int(found[0] if isinstance(found, (tuple, list)) else found)   # an int; a tuple on some versions


@validate_params(m=PositiveInt(), k=SIDE, n=SIDE, calls=CALLS, repeats=REPEATS, warmup=WARMUP, seed=Seed(),
                 backend=Options(SPARSE_BACKENDS, optional=True))
def sparse_matmul(*, m: int = 8192, k: int | None = None, n: int | None = None, calls: int = 10, repeats: int = 5,
                  warmup: int = 3, seed: int = 0, backend: str | None = None) -> dict:
    """2:4 semi-structured sparse ``A (m×k) @ B (k×n)`` in fp16 against the dense matmul of the same A.

    A is pruned with :func:`two_four_mask` and compressed with
    ``torch.sparse.to_sparse_semi_structured`` on ``backend`` (None: the
    one :func:`sparse_backend` picks; the choice is forced through
    ``SparseSemiStructuredTensor._FORCE_CUTLASS`` and restored). With
    cuSPARSELt, ``alg_id`` is the algorithm ``torch._cslt_sparse_mm_search``
    found fastest (``alg_search_error`` says why the default 0 was kept
    instead). ``speedup`` = dense time ÷ sparse time, so > 1 means sparse
    is faster; ``max_abs_error`` compares the two products of the same
    pruned A. Sizes must be multiples of 64.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    m, k, n = _shape(m, k, n)
    if m % 64 or k % 64 or n % 64:
        raise ValueError(f"sparse_matmul: m, k and n must be multiples of 64 for 2:4 sparse fp16; "
                         f"got m={m}, k={k}, n={n}.")
    available = sparse_backend()                            # CUDA and compute capability >= 8.0, or RuntimeError
    backend = available if backend is None else backend
    if backend == "cusparselt" and available != "cusparselt":
        raise RuntimeError("sparse_matmul: backend='cusparselt' needs a torch build with cuSPARSELt; "
                           "this one has none (use backend='cutlass').")
    g = torch.Generator(device=dev.DEVICE).manual_seed(seed)
    a = torch.randn(m, k, generator=g, device=dev.DEVICE, dtype=torch.float16)
    a = a * two_four_mask(a)                                          # exactly 2 of every 4 kept
    b = torch.randn(k, n, generator=g, device=dev.DEVICE, dtype=torch.float16)
    with _forced_backend(backend):
        a_sparse = to_sparse_semi_structured(a)
    out = {"m": m, "k": k, "n": n, "backend": backend, "subclass": type(a_sparse).__name__, "alg_id": None}
    if backend == "cusparselt":
        try:
            a_sparse.alg_id_cusparselt = out["alg_id"] = _search_alg_id(a_sparse, b)
            torch.mm(a_sparse, b)                                   # the found algorithm must also run
        except (RuntimeError, AttributeError) as err:              # an older torch or cuSPARSELt: keep alg 0
            a_sparse.alg_id_cusparselt = out["alg_id"] = 0
            out["alg_search_error"] = f"{type(err).__name__}: {err}"[:300]
    out["max_abs_error"] = float((torch.mm(a_sparse, b).float() - (a @ b).float()).abs().max())
    out["dense_ms"] = _event_ms(lambda: a @ b, calls=calls, repeats=repeats, warmup=warmup)
    out["sparse_ms"] = _event_ms(lambda: torch.mm(a_sparse, b), calls=calls, repeats=repeats, warmup=warmup)
    out["speedup"] = out["dense_ms"] / out["sparse_ms"]
    return out
