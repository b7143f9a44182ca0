"""Winograd convolution — chapter 8, "Winograd convolution".

Implements Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
CVPR 2016: the minimal filtering algorithms F(2×2, 3×3) and F(4×4, 3×3) for a
stride-1 3×3 convolution (cross-correlation, as in every deep-learning
framework). One ``m × m`` output tile comes from an ``α × α`` input tile,
``α = m + 2`` (``m + r − 1`` for an ``r × r`` kernel), as

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

Why it is fast with a BLAS — the Kronecker form. With row-major ``vec``,
``vec(Bᵀ d B) = (Bᵀ ⊗ Bᵀ) vec(d)``, so the input transform of every tile of
every channel is one GEMM ``(α² × α²)·(α² × C·P)`` (``P`` = tiles × batch);
summed over the ``C`` input channels, the element-wise products become ``α²``
independent GEMMs ``(K × C)·(C × P)``, one batched call; the output transform
is one GEMM ``(m² × α²)·(α² × K·P)``. Filters are transformed once
(:func:`transform_filters`). :func:`winograd_conv2d` runs that fast path;
:func:`winograd_conv2d_reference` is the readable tile-by-tile version it is
tested against, and :func:`direct_conv2d` (im2col + one GEMM on the same BLAS)
the direct baseline. The fast path and im2col work through the batch in blocks
(bands of rows, or groups of small images) so that their expanded copies of
the input — α²/m² times the input for Winograd, 9 times for im2col — stay a few
MiB instead of hundreds. The transforms also work for any F(m×m, r×r) that
:func:`cook_toom`'s default points cover (``m + r <= 9``); the chapter uses
F(2×2, 3×3) and F(4×4, 3×3). :func:`time_conv3x3` and :func:`time_breakdown`
measure the methods and where their time goes.

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

Longer than 600 lines because the transforms (Cook–Toom and the paper's), the Kronecker-form
fast path, the tile-by-tile reference it is tested against, the im2col baseline, the operation
counts and the timing of all three are one algorithm, checked against each other.
"""
from __future__ import annotations

import functools
import math
import numbers
import statistics
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
    "BREAKDOWN_METHODS", "cook_toom", "transforms", "transform_filters", "winograd_conv2d",
    "winograd_conv2d_reference", "direct_conv2d", "mults_per_tile", "layer_counts", "error_vs_direct",
    "time_conv3x3", "time_breakdown", "winograd_report",
]

TILES = (2, 4)                       # output tile m of F(m×m, 3×3)
ERROR_DTYPES = ("fp32", "fp16", "bf16", "int8")
TIMED_METHODS = ("im2col", "winograd", "winograd_4x4", "filter_transform", "torch")
BREAKDOWN_METHODS = ("im2col", "winograd", "winograd_4x4")
VGG16_TIMED_LAYERS = ("conv2_2", "conv3_2", "conv4_2", "conv5_2")  # 3×3 layers with C >= 128

_R = 3                               # filter size: this module is about 3×3 kernels
_BLOCK = 16384                       # transformed values per input channel in one block (64 KiB in fp32)
_DEFAULT_POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))
_MAX_M_PLUS_R = len(_DEFAULT_POINTS) + 2    # F(m, r) needs m + r − 2 finite points
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
TILE_ANY = Interval(int, 1, 8)           # output tile m of F(m×m, r×r); m + r <= 9 is checked with r
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


def _check_weight(func: str, wt: torch.Tensor, channels: int | None = None) -> int:
    """Square kernels (K, C, r, r), as many channels as x; returns r."""
    _check_4d(func, "w", wt, "(K, C, r, r)")
    if wt.shape[2] != wt.shape[3]:
        raise ValueError(f"{func}: w must hold square kernels, shape (K, C, r, r); got shape {tuple(wt.shape)!r}.")
    if channels is not None and wt.shape[1] != channels:
        raise ValueError(f"{func}: w must have as many input channels as x (C = {channels}); "
                         f"got shape {tuple(wt.shape)!r}.")
    return wt.shape[2]


def _check_tile(func: str, tile: int, r: int) -> None:
    """cook_toom's default points cover F(m, r) up to m + r = 9."""
    if tile + r > _MAX_M_PLUS_R:
        raise ValueError(f"{func}: tile must be at most {_MAX_M_PLUS_R - r} for {r}×{r} kernels "
                         f"(tile + r <= {_MAX_M_PLUS_R}); got {tile!r}.")


def _out_size(func: str, xt: torch.Tensor, padding: int, r: int = 3) -> tuple[int, int]:
    h, w = xt.shape[2] + 2 * padding - (r - 1), xt.shape[3] + 2 * padding - (r - 1)
    if h < 1 or w < 1:
        raise ValueError(f"{func}: x must be at least {r}×{r} after padding ({padding}); "
                         f"got shape {tuple(xt.shape)!r}.")
    return h, w


# --------------------------------------------------------------------------- the algorithm


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """16-bit formats compute each stage in float32 (see the module docstring)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _store(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round a stage's result to the caller's dtype, keep computing in the work dtype."""
    return t if t.dtype == dtype else t.to(dtype).to(t.dtype)


class _Clock:
    """Adds the wall time since the last lap to ``times[stage]``; does nothing when ``times`` is None."""

    def __init__(self, times: dict | None):
        self.times, self.t = times, time.perf_counter()

    def lap(self, stage: str) -> None:
        if self.times is not None:
            now = time.perf_counter()
            self.times[stage] = self.times.get(stage, 0.0) + now - self.t
            self.t = now


@functools.lru_cache(maxsize=None)
def _float_transforms(tile: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Bᵀ, G, Aᵀ)`` of F(tile, r) in float64: the paper's for 3×3 kernels and tile 2 or 4,
    otherwise :func:`cook_toom` with its default points."""
    if r == _R and tile in TILES:
        return _transforms(tile)
    return tuple(np.array(mat, dtype=np.float64) for mat in cook_toom(tile, r))


def _kron(tile: int, r: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``Bᵀ ⊗ Bᵀ`` (α², α²), ``G ⊗ G`` (α², r²) and ``Aᵀ ⊗ Aᵀ`` (m², α²) in ``like``'s dtype.

    With row-major ``vec``, ``vec(M X Nᵀ) = (M ⊗ N) vec(X)``, so each 2-D transform of a
    tile is one matrix–vector product, and the transforms of all tiles one GEMM.
    """
    return tuple(torch.as_tensor(np.kron(mat, mat), dtype=like.dtype, device=like.device)
                 for mat in _float_transforms(tile, r))


def _filter_transform(wt: torch.Tensor, tile: int) -> torch.Tensor:
    """U = G g Gᵀ for every (filter, channel): (K, C, r, r) → (α, α, K, C)."""
    dtype, work = wt.dtype, _work_dtype(wt.dtype)
    k, c, r, _ = wt.shape
    alpha = tile + r - 1
    _, GG, _ = _kron(tile, r, wt.new_empty(0, dtype=work))
    U = GG @ wt.to(work).permute(2, 3, 0, 1).reshape(r * r, k * c)       # vec(G g Gᵀ) = (G ⊗ G) vec(g)
    return _store(U.reshape(alpha, alpha, k, c), dtype)


@validate_params(w=ARRAY, tile=TILE_ANY)
def transform_filters(w: Any, tile: int = 2) -> Any:
    """Winograd-domain filters ``U = G g Gᵀ``, to compute once and reuse.

    Parameters
    ----------
    w : numpy.ndarray or torch.Tensor, shape (K, C, r, r)
        Floating-point filters (3×3 in the chapter).
    tile : int, default 2
        Output tile m; ``m + r <= 9``.

    Returns
    -------
    U : same kind and dtype as ``w``, shape (α, α, K, C), ``α = tile + r − 1``
        Pass it to ``winograd_conv2d(x, U=U, tile=tile)``.

    Behind chapter 08, "Winograd convolution".
    """
    wt, w_np = _as_tensor("transform_filters", "w", w)
    r = _check_weight("transform_filters", wt)
    _check_tile("transform_filters", tile, r)
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


def _winograd_core(xt: torch.Tensor, U: torch.Tensor, tile: int, padding: int,
                   times: dict | None = None) -> torch.Tensor:
    """The fast path. Clean inputs: x (N, C, H, W), U (α, α, K, C) → y (N, K, H_out, W_out).

    Three GEMMs per block of tiles, in Kronecker form:

    - input transform ``V = (Bᵀ ⊗ Bᵀ) D``: ``D`` (α², C·P) holds every input tile of the block,
      gathered from strided views in one copy (tile positions first: that copy and this GEMM
      stream through memory, where a (C·P, α²) layout — the same product transposed — has
      rows of only α² values and copies several times slower);
    - the product ``M[ξν] = U[ξν] V[ξν]``: α² independent (K × C)·(C × P) GEMMs, one batched call;
    - output transform ``Y = (Aᵀ ⊗ Aᵀ) M`` (m², K·P), then the tiles back in place.

    Blocks hold about ``_BLOCK / α²`` tiles (bands of rows, or groups of small images) so that
    ``D``, ``V`` and ``M`` stay a few MiB instead of the whole batch's. ``times``, when given,
    collects the seconds spent in "input_transform", "gemm" and "output_transform".
    """
    clock = _Clock(times)
    dtype, work = xt.dtype, _work_dtype(xt.dtype)
    m, alpha = tile, U.shape[0]
    r = alpha - m + 1                                      # α = m + r − 1
    n, c, h, w = xt.shape
    k = U.shape[2]
    h_out, w_out = h + 2 * padding - r + 1, w + 2 * padding - r + 1
    th, tw = -(-h_out // m), -(-w_out // m)                # tiles per column / row (ceil)
    # Zero-pad: `padding` on every side, plus enough right/bottom for whole tiles.
    x = F.pad(xt.to(work), (padding, tw * m + r - 1 - w - padding, padding, th * m + r - 1 - h - padding))
    KB, _, KA = _kron(tile, r, x)                          # Bᵀ ⊗ Bᵀ (α², α²), Aᵀ ⊗ Aᵀ (m², α²)
    U = U.to(work).reshape(alpha * alpha, k, c)
    y = x.new_empty(n, k, th * m, tw * m)
    clock.lap("input_transform")
    for imgs, t0, t1 in _blocks(n, th, tw, _BLOCK // alpha ** 2):
        xb = x[imgs, :, t0 * m:t1 * m + r - 1]
        nb, rows = xb.shape[0], t1 - t0
        p = nb * rows * tw                                 # tiles in this block
        d = xb.unfold(2, alpha, m).unfold(3, alpha, m)     # (nb, C, rows, tw, α, α): overlapping tiles (view)
        d = d.permute(4, 5, 1, 0, 2, 3).reshape(alpha * alpha, c * p)   # (α², C·P): the one copy
        V = _store(KB @ d, dtype)                          # vec(Bᵀ d B) = (Bᵀ ⊗ Bᵀ) vec(d), every tile
        clock.lap("input_transform")
        M = _store(torch.bmm(U, V.view(alpha * alpha, c, p)), dtype)    # (α², K, P): Σ_c U ⊙ V
        clock.lap("gemm")
        Y = _store(KA @ M.view(alpha * alpha, k * p), dtype)            # vec(Aᵀ M A): (m², K·P)
        y[imgs, :, t0 * m:t1 * m] = Y.view(m, m, k, nb, rows, tw).permute(3, 2, 4, 0, 5, 1).reshape(
            nb, k, rows * m, tw * m)                       # tiles back in place
        clock.lap("output_transform")
    y = y[:, :, :h_out, :w_out].to(dtype).contiguous()
    clock.lap("output_transform")
    return y


@validate_params(x=ARRAY, w=Instance((np.ndarray, torch.Tensor), "a numpy.ndarray or a torch.Tensor", optional=True),
                 tile=TILE_ANY, padding=Interval(int, 0, None), stride=PositiveInt(),
                 U=Instance((np.ndarray, torch.Tensor), "a numpy.ndarray or a torch.Tensor", optional=True))
def winograd_conv2d(x: Any, w: Any = None, *, tile: int = 2, padding: int = 0, stride: int = 1,
                    U: Any = None) -> Any:
    """Stride-1 convolution by Winograd's F(tile×tile, r×r), batched, in Kronecker form.

    ``Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`` for every ``α × α`` input tile ``d``
    (stepping by ``tile``, ``α = tile + r − 1``), computed for all tiles at once
    as three GEMMs: ``(Bᵀ ⊗ Bᵀ)`` times the tiles, α² products ``(K × C)·(C × P)``
    summing over input channels, and ``(Aᵀ ⊗ Aᵀ)`` times the result. Like
    ``torch.nn.functional.conv2d`` without bias (cross-correlation).
    :func:`winograd_conv2d_reference` computes the same one tile at a time.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (N, C, H, W)
        Floating-point input (float16, bfloat16 (torch only), float32, float64).
    w : same kind and dtype as ``x``, shape (K, C, r, r), optional
        Filters (3×3 in the chapter). Give either ``w`` or ``U``.
    tile : int, default 2
        Output tile m: 2 and 4 give F(2×2, 3×3) and F(4×4, 3×3) with Lavin & Gray's
        matrices; other sizes (``m + r <= 9``) use :func:`cook_toom`'s.
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
    y : same kind and dtype as ``x``, shape (N, K, H + 2·padding − r + 1, W + 2·padding − r + 1)

    Taught in chapter 08, "Winograd convolution".
    """
    func = "winograd_conv2d"
    if stride != 1:
        _fail(ValueError, "stride", "1 (Winograd F(m×m, r×r) here is for unit stride)", stride)
    if (w is None) == (U is None):
        state = "neither" if w is None else "both"
        raise ValueError(f"{func}: w must be given, or U instead (exactly one of them); got {state}.")
    if w is not None:
        xt, wt, x_np = _check_pair(func, x, w)
        r = _check_weight(func, wt, xt.shape[1])
        _check_tile(func, tile, r)
        Ut = _filter_transform(wt, tile)                   # U = G g Gᵀ, once per call
    else:
        xt, Ut, x_np = _check_pair(func, x, U, "U")
        alpha = Ut.shape[0] if Ut.ndim == 4 else 0
        if (Ut.ndim != 4 or alpha <= tile or tuple(Ut.shape[:2]) != (alpha, alpha) or Ut.shape[3] != xt.shape[1]
                or Ut.shape[2] < 1):
            raise ValueError(f"{func}: U must have shape (α, α, K, {xt.shape[1]}) with α = tile + r - 1 > {tile} "
                             f"for tile={tile} and C = {xt.shape[1]}; got shape {tuple(Ut.shape)!r}.")
        r = alpha - tile + 1
        _check_tile(func, tile, r)
    _out_size(func, xt, padding, r)
    y = _winograd_core(xt, Ut, tile, padding)
    return y.numpy() if x_np else y


def _reference_core(xt: torch.Tensor, wt: torch.Tensor, tile: int, padding: int) -> torch.Tensor:
    """Clean inputs: the algorithm as the paper writes it, one output tile at a time."""
    dtype, work = xt.dtype, _work_dtype(xt.dtype)
    m, r = tile, wt.shape[-1]
    alpha = m + r - 1
    BT, G, AT = (torch.as_tensor(mat, dtype=work) for mat in _float_transforms(m, r))
    n, _, h, w = xt.shape
    h_out, w_out = h + 2 * padding - r + 1, w + 2 * padding - r + 1
    th, tw = -(-h_out // m), -(-w_out // m)
    x = F.pad(xt.to(work), (padding, tw * m + r - 1 - w - padding, padding, th * m + r - 1 - h - padding))
    U = G @ wt.to(work) @ G.T                              # (K, C, α, α): each filter transformed once
    y = x.new_zeros(n, wt.shape[0], th * m, tw * m)
    for i in range(th):
        for j in range(tw):
            d = x[:, :, i * m:i * m + alpha, j * m:j * m + alpha]          # (N, C, α, α): one tile per channel
            V = BT @ d @ BT.T                                                # Bᵀ d B
            M = (U.unsqueeze(0) * V.unsqueeze(1)).sum(dim=2)                 # (N, K, α, α): Σ_c U ⊙ V
            y[:, :, i * m:(i + 1) * m, j * m:(j + 1) * m] = AT @ M @ AT.T   # Aᵀ M A: the m × m outputs
    return y[:, :, :h_out, :w_out].to(dtype)


@validate_params(x=ARRAY, w=ARRAY, tile=TILE_ANY, padding=Interval(int, 0, None))
def winograd_conv2d_reference(x: Any, w: Any, *, tile: int = 2, padding: int = 0) -> Any:
    """Winograd convolution one output tile at a time: the readable version.

    For each tile position, for every image, filter and channel at once:
    ``V = Bᵀ d B``, ``M = Σ_c U ⊙ V`` with ``U = G g Gᵀ``, ``Y = Aᵀ M A``.
    Slow (a Python loop over tiles); :func:`winograd_conv2d` is the same
    arithmetic for all tiles at once and is tested against it.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (N, C, H, W)
    w : same kind and dtype as ``x``, shape (K, C, r, r)
    tile : int, default 2
        Output tile m, ``m + r <= 9``.
    padding : int, default 0

    Returns
    -------
    y : same kind and dtype as ``x``, shape (N, K, H + 2·padding − r + 1, W + 2·padding − r + 1)

    Taught in chapter 08, "Winograd convolution".
    """
    func = "winograd_conv2d_reference"
    xt, wt, x_np = _check_pair(func, x, w)
    r = _check_weight(func, wt, xt.shape[1])
    _check_tile(func, tile, r)
    _out_size(func, xt, padding, r)
    y = _reference_core(xt, wt, tile, padding)
    return y.numpy() if x_np else y


def _direct_core(xt: torch.Tensor, wt: torch.Tensor, padding: int, times: dict | None = None) -> torch.Tensor:
    """Clean inputs: im2col + GEMM in blocks of about ``_BLOCK / r²`` output pixels. ``times``
    collects seconds in "im2col" (the copy), "gemm" and "output" (results back in place)."""
    clock = _Clock(times)
    dtype, work = xt.dtype, _work_dtype(xt.dtype)
    n, c, h, w = xt.shape
    k, r = wt.shape[0], wt.shape[-1]
    h_out, w_out = h + 2 * padding - r + 1, w + 2 * padding - r + 1
    x = F.pad(xt.to(work), (padding,) * 4)
    w_mat = wt.to(work).reshape(k, c * r * r)              # (K, r²C)
    y = x.new_empty(n, k, h_out, w_out)
    clock.lap("im2col")
    for imgs, r0, r1 in _blocks(n, h_out, w_out, _BLOCK // (r * r)):
        cols = x[imgs, :, r0:r1 + r - 1].unfold(2, r, 1).unfold(3, r, 1)   # (n, C, rows, W_out, r, r) (view)
        nb = cols.shape[0]
        cols = cols.permute(1, 4, 5, 0, 2, 3).reshape(c * r * r, -1)       # im2col: (r²C, n·rows·W_out)
        clock.lap("im2col")
        y_blk = _store(w_mat @ cols, dtype)                 # (K, r²C)·(r²C, P): one GEMM
        clock.lap("gemm")
        y[imgs, :, r0:r1] = y_blk.reshape(k, nb, r1 - r0, w_out).permute(1, 0, 2, 3)
        clock.lap("output")
    y = y.to(dtype)
    clock.lap("output")
    return y


@validate_params(x=ARRAY, w=ARRAY, padding=Interval(int, 0, None))
def direct_conv2d(x: Any, w: Any, padding: int = 0) -> Any:
    """Stride-1 convolution by im2col + one GEMM — the chapter's direct baseline.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (N, C, H, W)
        Floating-point input.
    w : same kind and dtype as ``x``, shape (K, C, r, r)
    padding : int, default 0

    Returns
    -------
    y : same kind and dtype as ``x``, shape (N, K, H + 2·padding − r + 1, W + 2·padding − r + 1)
        For float16/bfloat16 the GEMM accumulates in float32 and the result is
        rounded once.

    Taught in chapter 08, "Winograd convolution".
    """
    xt, wt, x_np = _check_pair("direct_conv2d", x, w)
    r = _check_weight("direct_conv2d", wt, xt.shape[1])
    _out_size("direct_conv2d", xt, padding, r)
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


def _median_ms(runs: dict, repeats: int) -> dict[str, float]:
    """Median milliseconds of each callable over ``repeats`` rounds, the methods interleaved in
    every round so that a burst of load from elsewhere hits them all alike."""
    for fn in runs.values():
        fn()                                               # warm-up (allocations, thread pool)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def _layer_problem(C: int, K: int, H: int, W: int, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, C, H, W, generator=gen)
    w = torch.randn(K, C, _R, _R, generator=gen) / math.sqrt(9 * C)
    return x, w


@validate_params(C=PositiveInt(), K=PositiveInt(), H=PositiveInt(), W=PositiveInt(), batch_size=PositiveInt(),
                 repeats=PositiveInt(), seed=Seed(), methods=ListOf(Options(TIMED_METHODS)))
def time_conv3x3(C: int, K: int, H: int, W: int, *, batch_size: int = 1, repeats: int = 3, seed: int = 0,
                 methods: Sequence[str] = ("im2col", "winograd", "torch")) -> dict[str, float]:
    """Median wall time (ms) of one padded stride-1 3×3 float32 layer.

    The methods take turns in each round (see ``_median_ms``). Methods (all on
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
    repeats : int, default 3
        Timed rounds after one warm-up; the median is reported.
    seed : int, default 0
    methods : sequence of str, default ("im2col", "winograd", "torch")
        Any of :data:`TIMED_METHODS`.

    Returns
    -------
    dict
        ``{method: milliseconds}`` in the order of ``methods``.

    Behind chapter 08, "Winograd convolution".
    """
    x, w = _layer_problem(C, K, H, W, batch_size, seed)
    U2, U4 = _filter_transform(w, 2), _filter_transform(w, 4)
    runs = {
        "im2col": lambda: _direct_core(x, w, 1),
        "winograd": lambda: _winograd_core(x, U2, 2, 1),
        "winograd_4x4": lambda: _winograd_core(x, U4, 4, 1),
        "filter_transform": lambda: _filter_transform(w, 2),
        "torch": lambda: F.conv2d(x, w, padding=1),
    }
    with torch.no_grad():
        return _median_ms({method: runs[method] for method in methods}, repeats)


@validate_params(C=PositiveInt(), K=PositiveInt(), H=PositiveInt(), W=PositiveInt(),
                 method=Options(BREAKDOWN_METHODS), batch_size=PositiveInt(), repeats=PositiveInt(), seed=Seed())
def time_breakdown(C: int, K: int, H: int, W: int, *, method: str = "winograd", batch_size: int = 1,
                   repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Where the time of one padded stride-1 3×3 float32 layer goes (ms, median per stage).

    Parameters
    ----------
    C, K, H, W : int
        Input channels, filters, input height and width (padding 1).
    method : {"im2col", "winograd", "winograd_4x4"}, default "winograd"
    batch_size : int, default 1
    repeats : int, default 3
        Timed runs after one warm-up; each stage's median is reported.
    seed : int, default 0

    Returns
    -------
    dict
        Winograd: ``{"input_transform", "gemm", "output_transform"}`` — the input
        transform includes padding and gathering the tiles, the output transform
        putting the tiles back in place. im2col: ``{"im2col", "gemm", "output"}``.

    Behind chapter 08, "Winograd convolution".
    """
    x, w = _layer_problem(C, K, H, W, batch_size, seed)
    if method == "im2col":
        run = functools.partial(_direct_core, x, w, 1)
    else:
        tile = 2 if method == "winograd" else 4
        run = functools.partial(_winograd_core, x, _filter_transform(w, tile), tile, 1)
    laps: list[dict] = []
    with torch.no_grad():
        for i in range(repeats + 1):                      # the first run warms up
            times: dict = {}
            run(times=times)
            if i:
                laps.append(times)
    return {stage: statistics.median(t[stage] for t in laps) * 1e3 for stage in laps[0]}


def _vgg16_layer(name: str) -> tuple[int, int, int, int]:
    for row in layer_table(get_architecture("vgg16")):
        if row.name == name:
            c, h, w = row.input_shape
            return c, row.output_shape[0], h, w
    raise AssertionError(f"VGG-16 has no layer {name}")


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


@validate_params(seed=Seed())
def winograd_report(seed: int = 0) -> dict:
    """The chapter's headline numbers as a JSON-able dict.

    Multiply counts and max relative errors (:func:`error_vs_direct`, fp32 and
    fp16) of F(2×2, 3×3) and F(4×4, 3×3), and batch-1 float32 timings on one
    thread (ms, median of 3, :func:`time_conv3x3`) of :func:`direct_conv2d`
    ("im2col"), :func:`winograd_conv2d` F(2×2) and F(4×4) with precomputed
    filters ("winograd", "winograd_4x4") and ``torch.nn.functional.conv2d``
    ("torch") on VGG-16's conv2_2, conv3_2, conv4_2 and conv5_2, with the
    geometric-mean speed-ups of F(2×2) ("F2") and F(4×4) ("F4") over im2col and
    over torch. Takes a few seconds on 2 CPU cores. The errors depend only on
    ``seed`` (and the BLAS); the timings depend on the machine and its load.

    Returns
    -------
    dict
        ``{"F(2x2,3x3)": {"mults_direct", "mults_winograd", "reduction",
        "max_rel_err_fp32", "max_rel_err_fp16"}, "F(4x4,3x3)": {…},
        "vgg16_ms": {layer: {"im2col", "winograd", "winograd_4x4", "torch"}},
        "speedup_vs_im2col": {"F2", "F4"}, "speedup_vs_torch": {"F2", "F4"}}``

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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ms = {name: time_conv3x3(*_vgg16_layer(name), seed=seed,
                                 methods=("im2col", "winograd", "winograd_4x4", "torch"))
              for name in VGG16_TIMED_LAYERS}
    finally:
        torch.set_num_threads(threads)
    report["vgg16_ms"] = {name: {method: round(t, 2) for method, t in row.items()} for name, row in ms.items()}
    for base, key in (("im2col", "speedup_vs_im2col"), ("torch", "speedup_vs_torch")):
        report[key] = {f"F{tile}": round(_geomean([row[base] / row[method] for row in ms.values()]), 3)
                       for tile, method in ((2, "winograd"), (4, "winograd_4x4"))}
    return report
