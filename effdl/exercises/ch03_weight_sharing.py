"""Chapter 3, Weight sharing and trained quantization: the checks of its graded exercises.

In ``chapters/03_weight_sharing.ipynb``:

- ``check_centroid_gradient`` tests the reader's ``my_centroid_gradient``;
- ``check_nearest_centroid`` tests the reader's ``my_nearest_centroid``.
"""
from __future__ import annotations

import numpy as np

from .. import sharing
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_centroid_gradient(fn, seed: int = 33) -> str:
    """Chapter 3: ``fn(grad, index, n_clusters) -> (n_clusters,)`` gradients summed per cluster.

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    rng = np.random.default_rng(seed)
    for shape, k in [((4, 4), 4), ((30, 20), 16), ((500,), 3)]:
        grad = rng.normal(size=shape)
        index = rng.integers(0, k, size=shape)
        out = np.asarray(fn(grad, index, k), dtype=float)
        if out.shape != (k,):
            fail(f"return one value per cluster: shape ({k},); got {out.shape}.")
        if not np.isclose(out.sum(), grad.sum()):
            fail("every weight's gradient belongs to exactly one cluster: the sums must add up to the total.")
        if not np.allclose(out, sharing.centroid_gradient(grad, index, k)):
            fail("on fresh random inputs your sums differ from effdl.sharing: group by index, then add.")
    empty = np.asarray(fn(np.ones(3), np.array([0, 0, 2]), 4), dtype=float)
    if empty.shape != (4,) or empty[1] != 0 or empty[3] != 0:
        fail("a cluster with no weights must get a zero gradient (and still appear in the output).")
    return "centroid gradient: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_nearest_centroid(fn, seed: int = 0) -> str:
    """Chapter 3: ``fn(weight, codebook) -> index`` of the nearest centroid for every weight
    (``codebook`` ascending; a weight half-way between two centroids goes to the lower one).

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    rng = np.random.default_rng(seed)
    for shape, k in [((4, 4), 4), ((30, 20), 16), ((500,), 3), ((6, 5, 3, 3), 32), ((7,), 1)]:
        codebook = np.sort(rng.normal(size=k))
        weight = rng.normal(size=shape) * 1.3
        if k > 1:                                                         # exact half-way ties
            mids = (codebook[:-1] + codebook[1:]) / 2
            flat = weight.reshape(-1)
            flat[:min(flat.size, mids.size)] = mids[:flat.size]
        got = np.asarray(fn(weight.copy(), codebook.copy()))
        if got.shape != weight.shape or not np.issubdtype(got.dtype, np.integer):
            fail(f"return an integer array of the weight's shape {shape}.")
        if got.min() < 0 or got.max() >= k:
            fail(f"indexes must lie in 0 … {k - 1} for a codebook of {k} centroids.")
        dist = np.abs(weight[..., None] - codebook)                      # (..., k)
        chosen = np.take_along_axis(dist, got[..., None], axis=-1)[..., 0]
        if np.any(chosen > dist.min(axis=-1)):
            fail("a weight is assigned to a centroid that is not its nearest: compare |w − c| over the codebook.")
        if not np.array_equal(got, dist.argmin(axis=-1)):
            fail("a weight exactly half-way between two centroids must go to the lower one (the first index).")
        if not np.array_equal(np.asarray(fn(weight * 4.0, codebook * 4.0)), got):
            fail("scaling weights and codebook together must not change the assignment.")
    return "nearest centroid: all checks passed"
