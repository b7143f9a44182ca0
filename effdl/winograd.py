"""Winograd convolution — chapter 8, "Winograd convolution".

Implements Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
CVPR 2016: the minimal filtering algorithms F(2×2, 3×3) and F(4×4, 3×3) for a
stride-1 3×3 convolution (cross-correlation, as in every deep-learning
framework). One ``m × m`` output tile comes from an ``α × α`` input tile,
``α = m + 2``, as

    Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A

with ``α²`` element-wise multiplies instead of the ``9 m²`` of the direct
method: 16 instead of 36 (2.25×) for ``m = 2``, 36 instead of 144 (4×) for
``m = 4``.

Where the matrices come from: :func:`cook_toom` derives ``Bᵀ, G, Aᵀ`` in
exact fractions from interpolation points (Toom–Cook: evaluate, multiply
point-wise, interpolate; the filtering algorithm is the transpose of the
linear-convolution algorithm). With points ``0, ±1, ±2, ∞`` it gives Lavin &
Gray's F(4×4, 3×3) matrices exactly; with ``0, ±1, ∞`` it gives their
F(2×2, 3×3) matrices up to the signs of two rows, a diagonal rescaling that
cancels between the transforms (the paper's F(2, 3) follows Winograd's
original formulas). :func:`transforms` returns the paper's matrices.

Why it is fast with a BLAS: summed over the ``C`` input channels, the
element-wise products of all tiles become ``α²`` independent matrix products
``(K × C) · (C × P)``, one per position ``(ξ, ν)`` of the transformed tile
(``P`` = tiles × batch). :func:`winograd_conv2d` is written that way; its
direct baseline :func:`direct_conv2d` is im2col + one GEMM on the same BLAS.
Both work through the batch in blocks (bands of rows, or groups of small
images) so that their expanded copies of the input — α²/m² times the input
for Winograd, 9 times for im2col — stay a few MiB instead of hundreds.

Precision: everything is computed in the input's dtype, except that for
float16 and bfloat16 each stage (filter transform ``U``, data transform
``V``, the channel sums ``M``, the output transform ``Y``) is computed in
float32 and its result rounded to the input's dtype: 16-bit storage between
stages with float32 accumulation inside them, as fp16 GPU kernels that
accumulate in float32 do. The transform matrices are then float32 (F(4×4)'s
``1/6`` and ``1/24`` rounded to it). F(4×4, 3×3) is less accurate than
F(2×2, 3×3) because its transforms have larger entries (``Bᵀ`` up to 5,
``Aᵀ`` up to 8): :func:`error_vs_direct` measures it.

>>> mults_per_tile(2), mults_per_tile(4)
((36, 16), (144, 36))
>>> rng = np.random.default_rng(0)
>>> x, w = rng.standard_normal((2, 3, 7, 9)), rng.standard_normal((4, 3, 3, 3))
>>> y = winograd_conv2d(x, w, tile=2, padding=1)
>>> y.shape, bool(np.allclose(y, direct_conv2d(x, w, padding=1)))
((2, 4, 7, 9), True)

Longer than 600 lines because the transforms of F(2×2,3×3) and F(4×4,3×3), the tiled
convolution and its operation counts are one algorithm, checked against each other.
"""
from __future__ import annotations

import math
import numbers
import time
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from effdl._validate import _fail
from effdl.architectures import get_architecture, layer_table
from effdl.validation import Instance, Interval, ListOf, Options, PositiveInt, Seed, validate_params


__all__ = [
    "TILES", "ERROR_DTYPES", "TIMED_METHODS", "VGG16_TIMED_LAYERS",
    "cook_toom", "transforms", "transform_filters", "winograd_conv2d", "direct_conv2d",
    "mults_per_tile", "layer_counts", "error_vs_direct", "time_conv3x3", "winograd_report",
]

TILES = (2, 4)                       # output tile m of F(m×m, 3×3)
ERROR_DTYPES = ("fp32", "fp16", "bf16", "int8")
TIMED_METHODS = ("im2col", "winograd", "winograd_4x4", "filter_transform", "torch")
VGG16_TIMED_LAYERS = ("conv2_2", "conv3_2", "conv4_2", "conv5_2")  # 3×3 layers with C >= 128

_R = 3                               # filter size: this module is about 3×3 kernels
_BLOCK = 16384                       # transformed values per input channel in one block (64 KiB in fp32)
_DEFAULT_POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_NUMPY_FLOATS = (np.float16, np.float32, np.float64)

# Lavin & Gray (2016), eq. (7)–(8): F(2, 3) in Winograd's original form.
_LAVIN_F2 = (
    [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],            # Bᵀ (4×4)
    [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],              # G  (4×3)
    [[1, 1, 1, 0], [0, 1, -1, -1]],                                          # Aᵀ (2×4)
)


# --------------------------------------------------------------------------- transforms


def _poly_from_roots(roots: Sequence[Fraction], n: int) -> list[Fraction]:
    """Coefficients c_0 … c_{n-1} (lowest power first) of ∏ (x − root), padded with zeros."""
    coeffs = [Fraction(1)]
    for root in roots:                                   # multiply by (x − root)
        shifted = [Fraction(0)] + coeffs                 # x · p(x)
        coeffs = [s - root * c for s, c in zip(shifted, coeffs + [Fraction(0)])]
    return coeffs + [Fraction(0)] * (n - len(coeffs))


@validate_params(m=PositiveInt(), r=PositiveInt(),
                 points=ListOf(Instance(numbers.Rational, "an integer or a fractions.Fraction"), nonempty=False,
                               optional=True))
def cook_toom(m: int, r: int = 3, points: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Derive the transforms of F(m, r) in exact fractions (Toom–Cook construction).

    With ``n = m + r − 1`` and finite points ``p_0 … p_{n−2}`` plus the point at
    infinity, the 1-D minimal filtering algorithm is ``y = Aᵀ[(G g) ⊙ (Bᵀ d)]``:

    - ``Aᵀ`` (m × n): column i is ``(1, p_i, …, p_i^{m−1})``; the ∞ column is ``(0, …, 0, 1)``.
    - ``G`` (n × r): row i is ``(1, p_i, …, p_i^{r−1}) / N_i`` with
      ``N_i = ∏_{k≠i} (p_i − p_k)``; the ∞ row is ``(0, …, 0, 1)``.
    - ``Bᵀ`` (n × n): row i holds the coefficients of ``∏_{k≠i} (x − p_k)``
      (Lagrange's basis polynomial times ``N_i``); the ∞ row those of ``∏_k (x − p_k)``.

    The 2-D algorithm nests it: ``Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A``.

    Parameters
    ----------
    m : int
        Outputs per tile, >= 1.
    r : int, default 3
        Filter taps, >= 1.
    points : sequence of int or Fraction, optional
        ``m + r − 2`` distinct finite interpolation points. Default: the first
        ``m + r − 2`` of ``0, 1, −1, 2, −2, 1/2, −1/2`` (so ``m + r <= 9``).

    Returns
    -------
    BT, G, AT : numpy.ndarray of Fraction (dtype object)
        Shapes ``(n, n)``, ``(n, r)`` and ``(m, n)``.

    Examples
    --------
    >>> BT, G, AT = cook_toom(4, 3)          # points 0, ±1, ±2, ∞: Lavin & Gray's F(4, 3)
    >>> [str(v) for v in G[1]], [int(v) for v in BT[0]]
    (['-1/6', '-1/6', '-1/6'], [4, 0, -5, 0, 1, 0])

    Behind chapter 08, "Winograd convolution".
    """
    n = m + r - 1
    if points is None:
        if n - 1 > len(_DEFAULT_POINTS):
            _fail(ValueError, "points", f"given when m + r > {len(_DEFAULT_POINTS) + 2}", points)
        points = _DEFAULT_POINTS[: n - 1]
    pts = [Fraction(p) for p in points]
    if len(pts) != n - 1 or len(set(pts)) != len(pts):
        _fail(ValueError, "points", f"a sequence of {n - 1} distinct integers or fractions.Fraction "
                                               "(m + r - 2 finite points)", points)

    def vandermonde(cols: int) -> np.ndarray:            # (n, cols): evaluation at each point, ∞ last
        rows = [[p ** j for j in range(cols)] for p in pts] + [[Fraction(0)] * (cols - 1) + [Fraction(1)]]
        return np.array(rows, dtype=object)

    norms = [math.prod(pi - pk for pk in pts if pk != pi) for pi in pts]         # N_i
    AT = vandermonde(m).T                                                          # (m, n)
    G = vandermonde(r)
    G[:-1] = G[:-1] / np.array(norms, dtype=object)[:, None]                       # (n, r)
    BT = np.array([_poly_from_roots([pk for pk in pts if pk != pi], n) for pi in pts]
                  + [_poly_from_roots(pts, n)], dtype=object)                      # (n, n)
    return BT, G, AT


TILE = Options(TILES)
ARRAY = Instance((np.ndarray, torch.Tensor), "a numpy.ndarray or a torch.Tensor")   # the result has its kind


@validate_params(tile=TILE)
def transforms(tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lavin & Gray's transform matrices ``(Bᵀ, G, Aᵀ)`` of F(tile×tile, 3×3).

    Parameters
    ----------
    tile : {2, 4}
        Output tile size m; the input tile is ``α = m + 2``.

    Returns
    -------
    BT, G, AT : numpy.ndarray of float64
        Shapes ``(α, α)``, ``(α, 3)`` and ``(m, α)``. F(2×2, 3×3) is the
        paper's (Winograd's original signs); F(4×4, 3×3) is
        ``cook_toom(4, 3, (0, 1, -1, 2, -2))``, which equals the paper's.

    Examples
    --------
    >>> BT, G, AT = transforms(2)
    >>> AT
    array([[ 1.,  1.,  1.,  0.],
           [ 0.,  1., -1., -1.]])

    Taught in chapter 08, "Winograd convolution".
    """
    return _transforms(tile)


def _transforms(tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`transforms` on a clean tile (the inner loops call it)."""
    mats = _LAVIN_F2 if tile == 2 else cook_toom(4, _R, (0, 1, -1, 2, -2))
    return tuple(np.array(mat, dtype=np.float64) for mat in mats)


# --------------------------------------------------------------------------- argument checks


def _as_tensor(func: str, name: str, a: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
    """A declared ARRAY as a finite floating-point tensor (sharing memory where possible), and whether it
    was numpy."""
    if isinstance(a, np.ndarray):
        if a.dtype not in _NUMPY_FLOATS:
            raise TypeError(f"{func}: {name} must be a floating-point array (float16, float32 or float64); "
                            f"got dtype {a.dtype!r}.")
        if not (a.flags.writeable and a.flags.c_contiguous):
            a = np.array(a, order="C")                   # torch.from_numpy wants a writable array
        t, was_numpy = torch.from_numpy(a), True
    else:
        if a.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{func}: {name} must be a floating-point tensor (float16, bfloat16, float32 or "
                            f"float64); got dtype {a.dtype!r}.")
        t, was_numpy = a, False
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{func}: {name} must be finite (no NaN or inf); got {float(t[where])!r} at index {where}.")
    return t, was_numpy


def _check_4d(func: str, name: str, t: torch.Tensor, layout: str) -> None:
    if t.ndim != 4 or any(d < 1 for d in t.shape):
        raise ValueError(f"{func}: {name} must be a non-empty 4-D array of shape {layout}; "
                         f"got shape {tuple(t.shape)!r}.")


def _check_pair(func: str, x: Any, w: Any, w_name: str = "w") -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate x (N, C, H, W) and w (K, C, 3, 3): same kind, same dtype, matching channels, finite."""
    if isinstance(x, np.ndarray) != isinstance(w, np.ndarray):
        _fail(TypeError, w_name, "the same kind of array as x "
              f"({'numpy.ndarray' if isinstance(x, np.ndarray) else 'torch.Tensor'})", type(w).__name__)
    xt, x_np = _as_tensor(func, "x", x)
    wt, _ = _as_tensor(func, w_name, w)
    if wt.dtype != xt.dtype:
        raise TypeError(f"{func}: {w_name} must have the same dtype as x ({xt.dtype}); got dtype {wt.dtype}.")
    if wt.device != xt.device:
        raise ValueError(f"{func}: {w_name} must be on the same device as x ({xt.device}); got {wt.device}.")
    _check_4d(func, "x", xt, "(N, C, H, W)")
    return xt, wt, x_np


def _check_weight(func: str, wt: torch.Tensor, channels: int | None = None) -> None:
    _check_4d(func, "w", wt, "(K, C, 3, 3)")
    if tuple(wt.shape[2:]) != (_R, _R):
        raise ValueError(f"{func}: w must hold 3×3 kernels, shape (K, C, 3, 3); got shape {tuple(wt.shape)!r}.")
    if channels is not None and wt.shape[1] != channels:
        raise ValueError(f"{func}: w must have as many input channels as x (C = {channels}); "
                         f"got shape {tuple(wt.shape)!r}.")


def _out_size(func: str, xt: torch.Tensor, padding: int) -> tuple[int, int]:
    h, w = xt.shape[2] + 2 * padding - (_R - 1), xt.shape[3] + 2 * padding - (_R - 1)
    if h < 1 or w < 1:
        raise ValueError(f"{func}: x must be at least 3×3 after padding ({padding}); got shape {tuple(xt.shape)!r}.")
    return h, w


# --------------------------------------------------------------------------- the algorithm


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """16-bit formats compute each stage in float32 (see the module docstring)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _store(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round a stage's result to the caller's dtype, keep computing in the work dtype."""
    return t if t.dtype == dtype else t.to(dtype).to(t.dtype)


def _sandwich(M: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``M X Mᵀ`` over the two leading axes of ``X``, for every trailing index, as one GEMM.

    ``M`` is (a, b); ``X`` is (b, b, *rest); the result is (a, a, *rest). With
    row-major ``vec``, ``vec(M X Mᵀ) = (M ⊗ M) vec(X)``: one ``(a², b²)·(b², R)``
    product keeps the BLAS busy, where two products with inner size ``b`` (4 or 6)
    would not. It does more multiplies than the sparse two-step transform that
    :func:`layer_counts` counts; the transforms are memory-bound either way.
    """
    a, b = M.shape
    return (torch.kron(M, M) @ X.reshape(b * b, -1)).reshape(a, a, *X.shape[2:])


def _matrices(tile: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return tuple(torch.as_tensor(mat, dtype=like.dtype, device=like.device) for mat in _transforms(tile))


def _filter_transform(wt: torch.Tensor, tile: int) -> torch.Tensor:
    """U = G g Gᵀ for every (filter, channel): (K, C, 3, 3) → (α, α, K, C)."""
    dtype, work = wt.dtype, _work_dtype(wt.dtype)
    g = wt.to(work)
    _, G, _ = _matrices(tile, g)
    U = _sandwich(G, g.permute(2, 3, 0, 1))                # (α, α, K, C): U = G g Gᵀ
    return _store(U, dtype)


@validate_params(w=ARRAY, tile=TILE)
def transform_filters(w: Any, tile: int = 2) -> Any:
    """Winograd-domain filters ``U = G g Gᵀ``, to compute once and reuse.

    Parameters
    ----------
    w : numpy.ndarray or torch.Tensor, shape (K, C, 3, 3)
        Floating-point filters.
    tile : {2, 4}, default 2

    Returns
    -------
    U : same kind and dtype as ``w``, shape (α, α, K, C), ``α = tile + 2``
        Pass it to ``winograd_conv2d(x, U=U, tile=tile)``.

    Behind chapter 08, "Winograd convolution".
    """
    wt, w_np = _as_tensor("transform_filters", "w", w)
    _check_weight("transform_filters", wt)
    U = _filter_transform(wt, tile)
    return U.numpy() if w_np else U


def _blocks(n: int, rows: int, per_row: int, target: int):
    """Split a batch of ``n`` images of ``rows × per_row`` units (tiles or pixels) into blocks
    of about ``target`` units: ``(images, first_row, end_row)``. Row bands of one image when an
    image is larger than ``target``, else groups of whole images."""
    per_image = rows * per_row
    if per_image >= target:
        step = max(1, target // per_row)
        for i in range(n):
            for r0 in range(0, rows, step):
                yield slice(i, i + 1), r0, min(rows, r0 + step)
    else:
        step = target // per_image
        for i0 in range(0, n, step):
            yield slice(i0, min(n, i0 + step)), 0, rows


def _winograd_tiles(d: torch.Tensor, U: torch.Tensor, tile: int, dtype: torch.dtype) -> torch.Tensor:
    """One block, exactly tiled: padded input (n, C, th·m + 2, tw·m + 2) → (n, K, th·m, tw·m)."""
    m, alpha = tile, tile + 2
    n, c = d.shape[:2]
    k = U.shape[2]
    BT, _, AT = _matrices(tile, d)
    d = d.unfold(2, alpha, m).unfold(3, alpha, m)          # (n, C, th, tw, α, α), overlapping tiles (view)
    th, tw = d.shape[2:4]
    d = d.permute(4, 5, 1, 0, 2, 3)                        # (α, α, C, n, th, tw)
    V = _store(_sandwich(BT, d), dtype)                    # (α, α, C, n, th, tw): V = Bᵀ d B
    # Σ_c U ⊙ V becomes α² GEMMs: M[ξν] = U[ξν] (K×C) · V[ξν] (C×P), P = n·th·tw tiles
    M = torch.matmul(U.reshape(alpha * alpha, k, c), V.reshape(alpha * alpha, c, n * th * tw))
    M = _store(M, dtype).reshape(alpha, alpha, k, n, th, tw)
    Y = _store(_sandwich(AT, M), dtype)                    # (m, m, K, n, th, tw): Y = Aᵀ M A
    return Y.permute(3, 2, 4, 0, 5, 1).reshape(n, k, th * m, tw * m)   # tiles back in place


def _winograd_core(xt: torch.Tensor, U: torch.Tensor, tile: int, padding: int) -> torch.Tensor:
    """Clean inputs: x (N, C, H, W), U (α, α, K, C) in x's dtype → y (N, K, H_out, W_out).

    Works through the batch in blocks of about ``_BLOCK / α²`` tiles so that the
    transformed tiles (α² values per tile and channel) stay a few MiB, rather than
    the whole batch's: fewer cache misses and page faults, same arithmetic.
    """
    dtype, work = xt.dtype, _work_dtype(xt.dtype)
    m = tile
    n, _, h, w = xt.shape
    h_out, w_out = h + 2 * padding - 2, w + 2 * padding - 2
    th, tw = -(-h_out // m), -(-w_out // m)                # tiles per column / row (ceil)
    # Zero-pad: `padding` on every side, plus enough right/bottom for whole tiles.
    x = F.pad(xt.to(work), (padding, tw * m + 2 - w - padding, padding, th * m + 2 - h - padding))
    U = U.to(work)
    y = x.new_empty(n, U.shape[2], th * m, tw * m)
    for imgs, t0, t1 in _blocks(n, th, tw, _BLOCK // (m + 2) ** 2):
        y[imgs, :, t0 * m:t1 * m] = _winograd_tiles(x[imgs, :, t0 * m:t1 * m + 2], U, tile, dtype)
    return y[:, :, :h_out, :w_out].to(dtype).contiguous()


@validate_params(x=ARRAY, w=Instance((np.ndarray, torch.Tensor), "a numpy.ndarray or a torch.Tensor", optional=True),
                 tile=TILE, padding=Interval(int, 0, None), stride=PositiveInt(),
                 U=Instance((np.ndarray, torch.Tensor), "a numpy.ndarray or a torch.Tensor", optional=True))
def winograd_conv2d(x: Any, w: Any = None, *, tile: int = 2, padding: int = 0, stride: int = 1,
                    U: Any = None) -> Any:
    """Stride-1 3×3 convolution by Winograd's F(tile×tile, 3×3), batched.

    ``Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`` for every ``α × α`` input tile ``d``
    (stepping by ``tile``), with the products summed over input channels as
    ``α²`` matrix products ``(K × C)·(C × P)``. Like ``torch.nn.functional.conv2d``
    without bias (cross-correlation).

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (N, C, H, W)
        Floating-point input (float16, bfloat16 (torch only), float32, float64).
    w : same kind and dtype as ``x``, shape (K, C, 3, 3), optional
        Filters. Give either ``w`` or ``U``.
    tile : {2, 4}, default 2
        Output tile m: F(2×2, 3×3) or F(4×4, 3×3).
    padding : int, default 0
        Zeros added on every side, as in ``conv2d``. Any ``H × W`` works: the
        input is also zero-padded on the right and bottom so that whole tiles
        cover the output, and the extra outputs are cropped.
    stride : int, default 1
        Only 1: the algorithm here is for unit stride.
    U : same kind and dtype as ``x``, shape (α, α, K, C), optional
        Filters already transformed by :func:`transform_filters` with the same ``tile``.

    Returns
    -------
    y : same kind and dtype as ``x``, shape (N, K, H + 2·padding − 2, W + 2·padding − 2)

    Taught in chapter 08, "Winograd convolution".
    """
    func = "winograd_conv2d"
    if stride != 1:
        _fail(ValueError, "stride", "1 (Winograd F(m×m, 3×3) here is for unit stride)", stride)
    if (w is None) == (U is None):
        state = "neither" if w is None else "both"
        raise ValueError(f"{func}: w must be given, or U instead (exactly one of them); got {state}.")
    if w is not None:
        xt, wt, x_np = _check_pair(func, x, w)
        _check_weight(func, wt, xt.shape[1])
        Ut = _filter_transform(wt, tile)                   # U = G g Gᵀ, once per call
    else:
        xt, Ut, x_np = _check_pair(func, x, U, "U")
        alpha = tile + 2
        if Ut.ndim != 4 or tuple(Ut.shape[:2]) != (alpha, alpha) or Ut.shape[3] != xt.shape[1] or Ut.shape[2] < 1:
            raise ValueError(f"{func}: U must have shape ({alpha}, {alpha}, K, {xt.shape[1]}) for tile={tile} and "
                             f"C = {xt.shape[1]}; got shape {tuple(Ut.shape)!r}.")
    _out_size(func, xt, padding)
    y = _winograd_core(xt, Ut, tile, padding)
    return y.numpy() if x_np else y


def _direct_core(xt: torch.Tensor, wt: torch.Tensor, padding: int) -> torch.Tensor:
    """Clean inputs: im2col + GEMM in blocks of about ``_BLOCK / 9`` output pixels."""
    dtype, work = xt.dtype, _work_dtype(xt.dtype)
    n, c, h, w = xt.shape
    k = wt.shape[0]
    h_out, w_out = h + 2 * padding - 2, w + 2 * padding - 2
    x = F.pad(xt.to(work), (padding,) * 4)
    w_mat = wt.to(work).reshape(k, c * _R * _R)            # (K, 9C)
    y = x.new_empty(n, k, h_out, w_out)
    for imgs, r0, r1 in _blocks(n, h_out, w_out, _BLOCK // (_R * _R)):
        cols = x[imgs, :, r0:r1 + 2].unfold(2, _R, 1).unfold(3, _R, 1)   # (n, C, rows, W_out, 3, 3) (view)
        nb = cols.shape[0]
        cols = cols.permute(1, 4, 5, 0, 2, 3).reshape(c * _R * _R, -1)   # im2col: (9C, n·rows·W_out)
        y_blk = _store(w_mat @ cols, dtype)                 # (K, 9C)·(9C, P): one GEMM
        y[imgs, :, r0:r1] = y_blk.reshape(k, nb, r1 - r0, w_out).permute(1, 0, 2, 3)
    return y.to(dtype)


@validate_params(x=ARRAY, w=ARRAY, padding=Interval(int, 0, None))
def direct_conv2d(x: Any, w: Any, padding: int = 0) -> Any:
    """Stride-1 3×3 convolution by im2col + one GEMM — the chapter's direct baseline.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (N, C, H, W)
        Floating-point input.
    w : same kind and dtype as ``x``, shape (K, C, 3, 3)
    padding : int, default 0

    Returns
    -------
    y : same kind and dtype as ``x``, shape (N, K, H + 2·padding − 2, W + 2·padding − 2)
        For float16/bfloat16 the GEMM accumulates in float32 and the result is
        rounded once.

    Behind chapter 08, "Winograd convolution".
    """
    xt, wt, x_np = _check_pair("direct_conv2d", x, w)
    _check_weight("direct_conv2d", wt, xt.shape[1])
    _out_size("direct_conv2d", xt, padding)
    y = _direct_core(xt, wt, padding)
    return y.numpy() if x_np else y


# --------------------------------------------------------------------------- counting


@validate_params(tile=TILE)
def mults_per_tile(tile: int) -> tuple[int, int]:
    """Multiplies per output tile and input channel: ``(direct, winograd) = (9 m², (m + 2)²)``.

    >>> mults_per_tile(2)
    (36, 16)

    Taught in chapter 08, "Winograd convolution".
    """
    m = tile
    return _R * _R * m * m, (m + _R - 1) ** 2


def _sandwich_cost(M: np.ndarray) -> tuple[int, int]:
    """(additions, constant multiplies) of ``M X Mᵀ``, X square, as two plain matrix products.

    Each output of ``M X`` adds the ``nnz(row) − 1`` non-zero terms of its row of M;
    ``M`` (a × b) is applied to b columns, then to a rows: (a + b) · Σ_rows (nnz − 1).
    Entries other than 0 and ±1 cost one constant multiply each time. No common
    subexpressions are shared, so these are upper bounds on hand-optimised code.
    """
    a, b = M.shape
    nnz = (M != 0).sum(axis=1)
    adds = int(np.maximum(nnz - 1, 0).sum())
    consts = int(((M != 0) & (np.abs(M) != 1)).sum())
    return (a + b) * adds, (a + b) * consts


@validate_params(C=PositiveInt(), K=PositiveInt(), H_out=PositiveInt(), W_out=PositiveInt(), tile=TILE,
                 batch_size=PositiveInt())
def layer_counts(C: int, K: int, H_out: int, W_out: int, tile: int, *, batch_size: int = 1) -> dict:
    """Exact operation counts of one stride-1 3×3 layer, direct vs Winograd.

    Parameters
    ----------
    C, K : int
        Input and output channels.
    H_out, W_out : int
        Output height and width.
    tile : {2, 4}
    batch_size : int, default 1

    Returns
    -------
    dict
        - ``tiles``: output tiles, ``⌈H_out/m⌉·⌈W_out/m⌉·batch_size`` (edge tiles are
          computed whole, so ``reduction`` is below ``9m²/α²`` unless m divides the size);
        - ``mults_direct``: ``9·C·K·H_out·W_out·batch_size``;
        - ``mults_winograd``: element-wise multiplies, ``α²·C·K·tiles``;
        - ``reduction``: ``mults_direct / mults_winograd``;
        - ``data_transform_adds`` (``Bᵀ d B``, once per tile and input channel),
          ``filter_transform_adds`` (``G g Gᵀ``, **once per layer**, i.e. per (K, C)
          pair — filters are transformed once and reused for every tile and image),
          ``output_transform_adds`` (``Aᵀ M A``, once per tile and output channel),
          and their sum ``transform_adds``;
        - ``transform_const_mults``: multiplies by matrix entries other than 0 and ±1
          in the same three transforms (e.g. ½ in G, 4 and 5 in F(4×4)'s Bᵀ).

        Transform counts follow the non-zero pattern of the matrices, each
        transform computed as two matrix products with no shared subexpressions
        (F(2×2, 3×3): 32, 28 and 24 additions per tile, as in Lavin & Gray).
        The accumulation over channels is not counted on either side.

    Examples
    --------
    >>> c = layer_counts(128, 128, 112, 112, tile=2)
    >>> c["reduction"], c["data_transform_adds"] // c["tiles"] // 128
    (2.25, 32)

    Taught in chapter 08, "Winograd convolution".
    """
    m = tile
    alpha = m + _R - 1
    tiles = -(-H_out // m) * -(-W_out // m) * batch_size
    BT, G, AT = _transforms(m)
    (d_add, d_mul), (f_add, f_mul), (o_add, o_mul) = (_sandwich_cost(M) for M in (BT, G, AT))
    direct = _R * _R * C * K * H_out * W_out * batch_size
    winograd = alpha * alpha * C * K * tiles
    counts = {
        "tiles": tiles,
        "mults_direct": direct,
        "mults_winograd": winograd,
        "reduction": direct / winograd,
        "data_transform_adds": d_add * C * tiles,
        "filter_transform_adds": f_add * C * K,
        "output_transform_adds": o_add * K * tiles,
    }
    counts["transform_adds"] = (counts["data_transform_adds"] + counts["filter_transform_adds"]
                                + counts["output_transform_adds"])
    counts["transform_const_mults"] = d_mul * C * tiles + f_mul * C * K + o_mul * K * tiles
    return counts


# --------------------------------------------------------------------------- accuracy


@validate_params(tile=TILE, dtype=Options(ERROR_DTYPES), seed=Seed())
def error_vs_direct(tile: int, dtype: str, seed: int = 0) -> float:
    """Max relative error of Winograd F(tile×tile, 3×3) in ``dtype`` against float64.

    ``max |y_w − y_ref| / max |y_ref|``, ``y_ref`` the direct convolution of the
    same (already representable) inputs in float64. Problem: x (2, 64, 18, 18)
    ~ N(0, 1), w (64, 64, 3, 3) ~ N(0, 1/(9·64)), padding 1 (so F(4×4) crops
    partial edge tiles).

    Parameters
    ----------
    tile : {2, 4}
    dtype : {"fp32", "fp16", "bf16", "int8"}
        ``"int8"``: integer inputs and weights uniform in [−128, 127], computed in
        float32 — 0.0 means Winograd reproduced the exact integer result.
    seed : int, default 0

    Returns
    -------
    float

    Taught in chapter 08, "Winograd convolution".
    """
    gen = torch.Generator().manual_seed(seed)
    shape_x, shape_w = (2, 64, 18, 18), (64, 64, _R, _R)
    if dtype == "int8":
        x = torch.randint(-128, 128, shape_x, generator=gen).to(torch.float32)
        w = torch.randint(-128, 128, shape_w, generator=gen).to(torch.float32)
    else:
        torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        x = torch.randn(shape_x, generator=gen, dtype=torch.float64).to(torch_dtype)
        w = (torch.randn(shape_w, generator=gen, dtype=torch.float64) / math.sqrt(9 * 64)).to(torch_dtype)
    y_ref = _direct_core(x.double(), w.double(), 1)
    y = _winograd_core(x, _filter_transform(w, tile), tile, 1).double()
    return float((y - y_ref).abs().max() / y_ref.abs().max())


# --------------------------------------------------------------------------- timing and report


def _best_ms(runs: dict, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` milliseconds of each callable, the methods interleaved in every
    round so that a burst of load from elsewhere hits them all alike."""
    for fn in runs.values():
        fn()                                               # warm-up (allocations, thread pool)
    best = dict.fromkeys(runs, math.inf)
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: t * 1e3 for name, t in best.items()}


@validate_params(C=PositiveInt(), K=PositiveInt(), H=PositiveInt(), W=PositiveInt(), batch_size=PositiveInt(),
                 repeats=PositiveInt(), seed=Seed(), methods=ListOf(Options(TIMED_METHODS)))
def time_conv3x3(C: int, K: int, H: int, W: int, *, batch_size: int = 1, repeats: int = 2, seed: int = 0,
                 methods: Sequence[str] = ("im2col", "winograd", "torch")) -> dict[str, float]:
    """Best-of-``repeats`` wall time (ms) of one padded stride-1 3×3 float32 layer.

    The methods take turns in each round (see ``_best_ms``). Methods (all on
    torch's BLAS and threads, as set by the caller):
    ``"im2col"`` :func:`direct_conv2d`; ``"winograd"`` / ``"winograd_4x4"``
    :func:`winograd_conv2d` F(2×2) / F(4×4) with filters transformed beforehand
    (inference: done once per layer); ``"filter_transform"``
    :func:`transform_filters` F(2×2) alone; ``"torch"``
    ``torch.nn.functional.conv2d`` (oneDNN or torch's own kernels).

    Parameters
    ----------
    C, K, H, W : int
        Input channels, filters, input height and width (padding 1 keeps H × W).
    batch_size : int, default 1
    repeats : int, default 2
        Timed runs after one warm-up; the minimum is reported.
    seed : int, default 0
    methods : sequence of str, default ("im2col", "winograd", "torch")
        Any of :data:`TIMED_METHODS`.

    Returns
    -------
    dict
        ``{method: milliseconds}`` in the order of ``methods``.

    Taught in chapter 08, "Winograd convolution".
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, C, H, W, generator=gen)
    w = torch.randn(K, C, _R, _R, generator=gen) / math.sqrt(9 * C)
    U2, U4 = _filter_transform(w, 2), _filter_transform(w, 4)
    runs = {
        "im2col": lambda: _direct_core(x, w, 1),
        "winograd": lambda: _winograd_core(x, U2, 2, 1),
        "winograd_4x4": lambda: _winograd_core(x, U4, 4, 1),
        "filter_transform": lambda: _filter_transform(w, 2),
        "torch": lambda: F.conv2d(x, w, padding=1),
    }
    with torch.no_grad():
        return _best_ms({method: runs[method] for method in methods}, repeats)


def _vgg16_layer(name: str) -> tuple[int, int, int, int]:
    for row in layer_table(get_architecture("vgg16")):
        if row.name == name:
            c, h, w = row.input_shape
            return c, row.output_shape[0], h, w
    raise AssertionError(f"VGG-16 has no layer {name}")


@validate_params(seed=Seed())
def winograd_report(seed: int = 0) -> dict:
    """The chapter's headline numbers as a JSON-able dict.

    Multiply counts and max relative errors (:func:`error_vs_direct`, fp32 and
    fp16) of F(2×2, 3×3) and F(4×4, 3×3), and batch-1 float32 timings (ms,
    best of 2) of :func:`direct_conv2d` ("im2col"), :func:`winograd_conv2d`
    F(2×2) with precomputed filters ("winograd") and
    ``torch.nn.functional.conv2d`` ("torch") on VGG-16's conv2_2, conv3_2,
    conv4_2 and conv5_2. Takes a few seconds on 2 CPU cores. The errors
    depend only on ``seed`` (and the BLAS); the timings depend on the machine.

    Returns
    -------
    dict
        ``{"F(2x2,3x3)": {"mults_direct", "mults_winograd", "reduction",
        "max_rel_err_fp32", "max_rel_err_fp16"}, "F(4x4,3x3)": {…},
        "vgg16_ms": {layer: {"im2col", "winograd", "torch"}}}``

    Behind chapter 08, "Winograd convolution".
    """
    report: dict = {}
    for tile in TILES:
        direct, winograd = mults_per_tile(tile)
        report[f"F({tile}x{tile},3x3)"] = {
            "mults_direct": direct,
            "mults_winograd": winograd,
            "reduction": direct / winograd,
            "max_rel_err_fp32": float(f"{error_vs_direct(tile, 'fp32', seed):.3g}"),
            "max_rel_err_fp16": float(f"{error_vs_direct(tile, 'fp16', seed):.3g}"),
        }
    report["vgg16_ms"] = {
        name: {method: round(ms, 2) for method, ms in
               time_conv3x3(*_vgg16_layer(name), seed=seed, methods=("im2col", "winograd", "torch")).items()}
        for name in VGG16_TIMED_LAYERS
    }
    return report
