"""Tests for effdl.winograd: the paper's matrices, exact 1-D identities in
fractions, oracles (torch.nn.functional.conv2d, scipy.signal.correlate2d),
exact operation counts, precision ordering and bad inputs."""
import doctest
import itertools
import math
from fractions import Fraction
from unittest import mock

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F

import effdl.winograd as wg
from effdl.winograd import (cook_toom, direct_conv2d, error_vs_direct, layer_counts, mults_per_tile,
                            time_breakdown, time_conv3x3, transform_filters, transforms, winograd_conv2d,
                            winograd_conv2d_reference, winograd_report)
from bounds import assert_within

# Lavin & Gray, CVPR 2016: F(2, 3) (eq. 7–8, also /work/shared/FACTS.md) and F(4, 3) (section 4.2).
LAVIN_F2 = (
    [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
    [[1, 1, 1, 0], [0, 1, -1, -1]],
)
LAVIN_F4 = (
    [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
     [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    [[Fraction(1, 4), 0, 0], [Fraction(-1, 6), Fraction(-1, 6), Fraction(-1, 6)],
     [Fraction(-1, 6), Fraction(1, 6), Fraction(-1, 6)], [Fraction(1, 24), Fraction(1, 12), Fraction(1, 6)],
     [Fraction(1, 24), Fraction(-1, 12), Fraction(1, 6)], [0, 0, 1]],
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
)


def test_docstring_examples():
    assert doctest.testmod(wg).failed == 0


# ---------------------------------------------------------------- transform matrices


def test_f2_transforms_are_lavin_grays_exactly():
    for ours, paper in zip(transforms(2), LAVIN_F2):
        assert ours.dtype == np.float64
        np.testing.assert_array_equal(ours, np.array(paper, dtype=np.float64))


def test_f4_cook_toom_is_lavin_grays_exactly():
    exact = cook_toom(4, 3, (0, 1, -1, 2, -2))
    for ours, paper in zip(exact, LAVIN_F4):
        assert ours.shape == np.array(paper, dtype=object).shape
        assert all(Fraction(a) == Fraction(b) for a, b in zip(ours.ravel(), np.array(paper, dtype=object).ravel()))
    for ours, paper in zip(transforms(4), LAVIN_F4):
        np.testing.assert_array_equal(ours, np.array(paper, dtype=np.float64))


def test_f2_cook_toom_differs_from_the_paper_only_by_cancelling_signs():
    BT, G, AT = (np.array(m, dtype=np.float64) for m in cook_toom(2, 3, (0, 1, -1)))
    d_b, d_g = np.diag([-1.0, 1, 1, -1]), np.diag([-1.0, 1, 1, 1])    # row signs of Bᵀ and of G
    paper = transforms(2)
    np.testing.assert_array_equal(d_b @ BT, paper[0])
    np.testing.assert_array_equal(d_g @ G, paper[1])
    np.testing.assert_array_equal(AT @ np.linalg.inv(d_b @ d_g), paper[2])   # Aᵀ absorbs the product


def _correlate_1d(d, g):
    m = len(d) - len(g) + 1
    return [sum(d[i + j] * g[j] for j in range(len(g))) for i in range(m)]


@pytest.mark.parametrize("m, r, points", [(2, 3, None), (4, 3, None), (2, 3, (0, 1, -1)), (3, 2, None),
                                          (6, 3, None), (2, 5, (0, 1, -1, 2, Fraction(1, 3))), (1, 1, ())])
def test_1d_identity_is_exact_on_every_basis_pair(m, r, points):
    # y = Aᵀ[(G g) ⊙ (Bᵀ d)] is bilinear in (d, g): exact on all basis pairs ⇒ exact everywhere.
    BT, G, AT = cook_toom(m, r, points)
    n = m + r - 1
    assert (BT.shape, G.shape, AT.shape) == ((n, n), (n, r), (m, n))
    for i, j in itertools.product(range(n), range(r)):
        d = [Fraction(int(k == i)) for k in range(n)]
        g = [Fraction(int(k == j)) for k in range(r)]
        y = AT @ ((G @ np.array(g, dtype=object)) * (BT @ np.array(d, dtype=object)))
        assert list(y) == _correlate_1d(d, g)


@pytest.mark.parametrize("tile", [2, 4])
def test_1d_identity_with_float_matrices(tile):
    BT, G, AT = transforms(tile)
    rng = np.random.default_rng(tile)
    d, g = rng.standard_normal(tile + 2), rng.standard_normal(3)
    np.testing.assert_allclose(AT @ ((G @ g) * (BT @ d)), np.correlate(d, g, "valid"), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("tile", [2, 4])
def test_2d_single_tile_identity_against_scipy(tile):
    BT, G, AT = transforms(tile)
    rng = np.random.default_rng(10 + tile)
    d, g = rng.standard_normal((tile + 2, tile + 2)), rng.standard_normal((3, 3))
    y = AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T          # Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A
    np.testing.assert_allclose(y, scipy.signal.correlate2d(d, g, "valid"), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- convolution vs oracles


def _rel_err(y, ref):
    y, ref = torch.as_tensor(y).double(), torch.as_tensor(ref).double()
    return float((y - ref).abs().max() / ref.abs().max())


EPS32 = torch.finfo(torch.float32).eps


def _abs64(a):
    return torch.as_tensor(np.array(a, dtype=np.float64) if isinstance(a, np.ndarray) else a).double().abs()


def _direct_bound(x, w, padding=0, eps=EPS32):
    """Higham: a float32 (or eps's dtype) 3×3 convolution sums 9C products per output, in any order: its
    error is ≤ 9C·u·conv(|x|, |w|), u = eps/2. (eps for u covers the second order.)"""
    return 9 * x.shape[1] * eps * F.conv2d(_abs64(x), _abs64(w), padding=padding)


def _winograd_bound(x, w, tile, padding=0, eps=EPS32):
    """Higham for Winograd in float32 (or the dtype of ``eps``), relative to the same algorithm on |x|, |w|
    with |Bᵀ|, |G|, |Aᵀ| (in float64).

    With u = eps/2 and α = tile + 2: kron(G, G) of float32-rounded G errs by ≤ 3u, U = (G⊗G)·g sums 9 terms
    (≤ 12u in all); V = (Bᵀ⊗Bᵀ)·d sums α² (+ 3u if Bᵀ is not exact); M sums C products of U and V (C u plus
    theirs); Y = (Aᵀ⊗Aᵀ)·M sums α² (+ 3u): |error| ≤ (2α² + C + 18)·u·|Y|(|x|, |w|); eps for u covers the
    second order."""
    original = wg._float_transforms
    with mock.patch.object(wg, "_float_transforms", lambda t, r: tuple(np.abs(m) for m in original(t, r))):
        y_abs = torch.as_tensor(winograd_conv2d(_abs64(x), _abs64(w), tile=tile, padding=padding))
    return (2 * (tile + 2) ** 2 + x.shape[1] + 18) * eps * y_abs


@pytest.mark.parametrize("n, c, k, h, w, padding", [
    (1, 1, 1, 3, 3, 0),        # a single output
    (1, 3, 4, 7, 9, 0),        # odd sizes: partial edge tiles for both tiles
    (2, 5, 3, 8, 8, 1),
    (3, 16, 8, 11, 6, 1),
    (2, 32, 24, 10, 13, 0),
    (1, 2, 2, 1, 1, 1),        # 1×1 input, padding 1 → 1×1 output
])
@pytest.mark.parametrize("tile", [2, 4])
def test_winograd_matches_direct_and_torch_in_fp32(n, c, k, h, w, padding, tile):
    gen = torch.Generator().manual_seed(n * 1000 + c * 10 + h)
    x, wt = torch.randn(n, c, h, w, generator=gen), torch.randn(k, c, 3, 3, generator=gen)
    ref = F.conv2d(x.double(), wt.double(), padding=padding)
    y = winograd_conv2d(x, wt, tile=tile, padding=padding)
    assert y.dtype == torch.float32 and y.shape == ref.shape
    # float64 reference; float32 results within their Higham bounds, whatever order the GEMMs sum in
    winograd, direct = _winograd_bound(x, wt, tile, padding), _direct_bound(x, wt, padding)
    assert_within(y, ref, winograd)
    assert_within(direct_conv2d(x, wt, padding=padding), ref, direct)
    assert_within(y, F.conv2d(x, wt, padding=padding), winograd + direct)   # torch's conv2d: a direct sum too
    # F(4×4)'s transforms make that bound ~1 % of |y|; in float64 the same bounds (the reference's included)
    # pin the algorithm down to ~1e-10
    eps64 = torch.finfo(torch.float64).eps
    y64 = winograd_conv2d(x.double(), wt.double(), tile=tile, padding=padding)
    assert_within(y64, ref, _winograd_bound(x, wt, tile, padding, eps64) + _direct_bound(x, wt, padding, eps64))


def _random_case(seed):
    """A random small problem: odd and even sizes, padding 0–2, batch 1–3, tile and kernel with m + r <= 9."""
    rng = np.random.default_rng(seed)
    r = int(rng.choice([1, 2, 3, 3, 3, 5]))
    tile = int(rng.choice([t for t in (1, 2, 3, 4, 6) if t + r <= 9]))
    padding = int(rng.integers(0, 3))
    n, c, k = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 7))
    h, w = (int(v) for v in rng.integers(max(1, r - 2 * padding), 14, size=2))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    wt = torch.randn(k, c, r, r, generator=gen, dtype=torch.float64)
    return x, wt, tile, padding


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_equals_the_tile_by_tile_reference_and_conv2d(seed):
    # float64: the two algorithms do the same arithmetic in different orders, so they agree to
    # rounding; conv2d is the independent oracle (F(6×6)'s transforms hold entries up to ~100).
    x, wt, tile, padding = _random_case(seed)
    ref = F.conv2d(x, wt, padding=padding)
    fast = winograd_conv2d(x, wt, tile=tile, padding=padding)
    slow = winograd_conv2d_reference(x, wt, tile=tile, padding=padding)
    assert fast.shape == slow.shape == ref.shape and fast.dtype == slow.dtype == torch.float64
    scale = float(ref.abs().max()) or 1.0
    assert float((fast - slow).abs().max()) <= 1e-9 * scale
    assert float((fast - ref).abs().max()) <= 1e-9 * scale


@pytest.mark.parametrize("tile", [2, 4])
def test_fast_path_matches_the_reference_in_fp32_and_numpy(tile):
    rng = np.random.default_rng(tile)
    x, w = rng.standard_normal((2, 7, 9, 11)).astype(np.float32), rng.standard_normal((5, 7, 3, 3)).astype(np.float32)
    fast, slow = winograd_conv2d(x, w, tile=tile, padding=1), winograd_conv2d_reference(x, w, tile=tile, padding=1)
    assert isinstance(slow, np.ndarray) and slow.dtype == np.float32
    ref = F.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), padding=1)
    bound = _winograd_bound(x, w, tile, padding=1)       # Higham, for either summation order
    assert_within(fast, ref, bound)
    assert_within(slow, ref, bound)


def test_winograd_conv2d_runs_the_fast_path(monkeypatch):
    calls = []
    core = wg._winograd_core
    monkeypatch.setattr(wg, "_winograd_core", lambda *a, **k: calls.append(a[2]) or core(*a, **k))
    monkeypatch.setattr(wg, "_reference_core", lambda *a, **k: pytest.fail("the reference is not the fast path"))
    winograd_conv2d(torch.randn(1, 2, 6, 6), torch.randn(3, 2, 3, 3), tile=4)
    assert calls == [4]


def test_kronecker_form_is_the_sandwich():
    # vec(Bᵀ d B) = (Bᵀ ⊗ Bᵀ) vec(d) with row-major vec, as the fast path uses it, for every F(m, r) it runs
    rng = np.random.default_rng(0)
    for tile, r in [(2, 3), (4, 3), (3, 2), (2, 5)]:
        BT, G, AT = wg._float_transforms(tile, r)
        KB, KG, KA = (k.numpy() for k in wg._kron(tile, r, torch.zeros(0, dtype=torch.float64)))
        d, g, M = rng.standard_normal((tile + r - 1,) * 2), rng.standard_normal((r, r)), rng.standard_normal(
            (tile + r - 1,) * 2)
        np.testing.assert_allclose(KB @ d.ravel(), (BT @ d @ BT.T).ravel(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(KG @ g.ravel(), (G @ g @ G.T).ravel(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(KA @ M.ravel(), (AT @ M @ AT.T).ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block", [40, 300, 5000])
@pytest.mark.parametrize("tile", [2, 4])
def test_blocks_of_rows_and_of_images(monkeypatch, tile, block):
    # _BLOCK sets how many tiles (pixels for im2col) one block holds: small values split an
    # image into bands of rows, larger ones group whole images, with a partial last group.
    monkeypatch.setattr(wg, "_BLOCK", block)
    gen = torch.Generator().manual_seed(block + tile)
    x, w = torch.randn(5, 3, 17, 14, generator=gen), torch.randn(4, 3, 3, 3, generator=gen)
    ref = F.conv2d(x.double(), w.double(), padding=1)
    assert_within(winograd_conv2d(x, w, tile=tile, padding=1), ref, _winograd_bound(x, w, tile, padding=1))  # Higham
    assert_within(direct_conv2d(x, w, padding=1), ref, _direct_bound(x, w, padding=1))                      # Higham


def test_block_splitting():
    assert list(wg._blocks(2, 5, 4, 8)) == [(slice(0, 1), 0, 2), (slice(0, 1), 2, 4), (slice(0, 1), 4, 5),
                                           (slice(1, 2), 0, 2), (slice(1, 2), 2, 4), (slice(1, 2), 4, 5)]
    assert list(wg._blocks(5, 2, 3, 12)) == [(slice(0, 2), 0, 2), (slice(2, 4), 0, 2), (slice(4, 5), 0, 2)]
    assert list(wg._blocks(1, 3, 10, 4)) == [(slice(0, 1), 0, 1), (slice(0, 1), 1, 2), (slice(0, 1), 2, 3)]


@pytest.mark.parametrize("tile", [2, 4])
def test_numpy_in_numpy_out_float64(tile):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 4, 9, 7)), rng.standard_normal((5, 4, 3, 3))
    y = winograd_conv2d(x, w, tile=tile, padding=1)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == (2, 5, 9, 7)
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-11, atol=1e-11)
    yd = direct_conv2d(x, w, padding=1)
    assert isinstance(yd, np.ndarray) and yd.dtype == np.float64
    np.testing.assert_allclose(yd, ref, rtol=1e-12, atol=1e-12)


def test_read_only_and_non_contiguous_numpy_inputs():
    rng = np.random.default_rng(4)
    x = np.asfortranarray(rng.standard_normal((1, 3, 6, 6)).astype(np.float32))
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    w.flags.writeable = False
    y = winograd_conv2d(x, w)
    assert y.dtype == np.float32
    assert_within(y, direct_conv2d(x, w), _winograd_bound(x, w, 2) + _direct_bound(x, w))   # both float32: Higham


@pytest.mark.parametrize("tile", [2, 4])
def test_precomputed_filters_give_the_same_result(tile):
    gen = torch.Generator().manual_seed(5)
    x, w = torch.randn(2, 6, 10, 10, generator=gen), torch.randn(4, 6, 3, 3, generator=gen)
    U = transform_filters(w, tile)
    assert U.shape == (tile + 2, tile + 2, 4, 6) and U.dtype == w.dtype
    assert torch.equal(winograd_conv2d(x, U=U, tile=tile, padding=1), winograd_conv2d(x, w, tile=tile, padding=1))
    Un = transform_filters(w.numpy(), tile)
    assert isinstance(Un, np.ndarray)
    np.testing.assert_array_equal(Un, U.numpy())


def test_filter_transform_is_g_g_gt():
    w = np.random.default_rng(6).standard_normal((3, 2, 3, 3))
    _, G, _ = transforms(4)
    U = transform_filters(w, 4)
    for k, c in itertools.product(range(3), range(2)):
        np.testing.assert_allclose(U[:, :, k, c], G @ w[k, c] @ G.T, rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------- precision


@pytest.fixture(scope="module")
def report():
    return winograd_report(seed=0)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_fp16_in_fp16_out(kind):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float16)
    w = (rng.standard_normal((4, 8, 3, 3)) / 8).astype(np.float16)
    if kind == "torch":
        x, w = torch.from_numpy(x), torch.from_numpy(w)
    y = winograd_conv2d(x, w, tile=2, padding=1)
    assert y.dtype == (np.float16 if kind == "numpy" else torch.float16)
    ref = F.conv2d(torch.as_tensor(x).double(), torch.as_tensor(w).double(), padding=1)
    assert 0 < _rel_err(y, ref) < 5e-3


def test_bf16_torch_tensors():
    gen = torch.Generator().manual_seed(9)
    x, w = torch.randn(1, 4, 5, 5, generator=gen).bfloat16(), torch.randn(3, 4, 3, 3, generator=gen).bfloat16()
    y = winograd_conv2d(x, w, tile=4, padding=1)
    assert y.dtype == torch.bfloat16 and y.shape == (1, 3, 5, 5)
    assert _rel_err(y, F.conv2d(x.double(), w.double(), padding=1)) < 0.1


def test_error_ordering_f4_worse_than_f2(report):
    # error_vs_direct(tile, dtype, seed=0), as the report rounds it to 3 significant digits
    e = {(t, d): report[f"F({t}x{t},3x3)"][f"max_rel_err_{d}"] for t in (2, 4) for d in ("fp32", "fp16")}
    assert e[2, "fp32"] < 1e-5 and e[4, "fp32"] < 1e-4
    assert e[2, "fp16"] < 3e-3 and e[4, "fp16"] < 5e-2
    assert e[4, "fp16"] > 3 * e[2, "fp16"]
    assert e[4, "fp32"] > 3 * e[2, "fp32"]
    assert e[2, "fp16"] > 100 * e[2, "fp32"]
    assert error_vs_direct(2, "fp16", seed=0) == pytest.approx(e[2, "fp16"], rel=1e-2)


def test_int8_like_inputs():
    # F(2×2): every intermediate is a multiple of ¼ and, at this size, fits float32's 24-bit
    # significand, so the result is exact; F(4×4)'s 1/6 and 1/24 are not exact in float32.
    assert error_vs_direct(2, "int8", seed=1) == 0.0
    assert 0.0 < error_vs_direct(4, "int8", seed=1) < 1e-4


def test_error_vs_direct_depends_on_seed_only():
    first = error_vs_direct(4, "bf16", seed=3)
    assert error_vs_direct(4, "bf16", seed=3) == first != error_vs_direct(4, "bf16", seed=4)


# ---------------------------------------------------------------- counts


def test_mults_per_tile():
    assert mults_per_tile(2) == (36, 16)
    assert mults_per_tile(4) == (144, 36)


@pytest.mark.parametrize("tile, data, filt, out", [(2, 32, 28, 24), (4, 192, 72, 140)])
def test_transform_additions_per_tile(tile, data, filt, out):
    # F(2×2, 3×3): 32, 28 and 24 additions, as in Lavin & Gray; F(4×4) from the non-zero pattern.
    c = layer_counts(1, 1, tile, tile, tile)
    assert c["tiles"] == 1
    assert (c["data_transform_adds"], c["filter_transform_adds"], c["output_transform_adds"]) == (data, filt, out)
    assert c["transform_adds"] == data + filt + out


def test_layer_counts_vgg_layer():
    c = layer_counts(128, 128, 112, 112, 2)
    assert c["mults_direct"] == 9 * 128 * 128 * 112 * 112
    assert c["mults_winograd"] == 16 * 128 * 128 * 56 * 56
    assert c["reduction"] == 2.25
    assert c["data_transform_adds"] == 32 * 128 * 56 * 56
    assert c["filter_transform_adds"] == 28 * 128 * 128          # once per layer
    assert c["output_transform_adds"] == 24 * 128 * 56 * 56
    # G's six ½ entries, applied over (4 + 3) rows/columns; Bᵀ and Aᵀ hold only 0 and ±1.
    assert c["transform_const_mults"] == 42 * 128 * 128


def test_layer_counts_partial_tiles_and_batch():
    c = layer_counts(512, 512, 14, 14, 4, batch_size=8)
    assert c["tiles"] == 4 * 4 * 8                               # ⌈14/4⌉² per image
    assert c["mults_winograd"] == 36 * 512 * 512 * 128
    assert c["reduction"] == pytest.approx(9 * 14 * 14 / (36 * 16))   # 3.0625, not 4
    c1 = layer_counts(512, 512, 14, 14, 4)
    assert c["filter_transform_adds"] == c1["filter_transform_adds"]  # not per image
    assert c["data_transform_adds"] == 8 * c1["data_transform_adds"]


# ---------------------------------------------------------------- report and timing


def test_report_shape(report):
    assert list(report) == ["F(2x2,3x3)", "F(4x4,3x3)", "vgg16_ms", "speedup_vs_im2col", "speedup_vs_torch"]
    keys = ["mults_direct", "mults_winograd", "reduction", "max_rel_err_fp32", "max_rel_err_fp16"]
    for name, (direct, winograd) in [("F(2x2,3x3)", (36, 16)), ("F(4x4,3x3)", (144, 36))]:
        entry = report[name]
        assert list(entry) == keys
        assert (entry["mults_direct"], entry["mults_winograd"], entry["reduction"]) == (direct, winograd,
                                                                                          direct / winograd)
        assert all(isinstance(entry[k], float) and entry[k] > 0 for k in keys[3:])
    assert report["F(4x4,3x3)"]["max_rel_err_fp16"] > report["F(2x2,3x3)"]["max_rel_err_fp16"]
    assert list(report["vgg16_ms"]) == ["conv2_2", "conv3_2", "conv4_2", "conv5_2"]
    for times in report["vgg16_ms"].values():
        assert list(times) == ["im2col", "winograd", "winograd_4x4", "torch"]
        assert all(isinstance(t, float) and t > 0 for t in times.values())
    for key, base in (("speedup_vs_im2col", "im2col"), ("speedup_vs_torch", "torch")):
        assert list(report[key]) == ["F2", "F4"]
        for tile, method in (("F2", "winograd"), ("F4", "winograd_4x4")):
            # the geometric mean of the per-layer ratios (of times rounded to 0.01 ms)
            ratios = [t[base] / t[method] for t in report["vgg16_ms"].values()]
            assert report[key][tile] == pytest.approx(math.prod(ratios) ** (1 / len(ratios)), rel=2e-2)


def test_report_times_on_one_thread_and_restores_threads(monkeypatch):
    seen = []
    monkeypatch.setattr(wg, "time_conv3x3", lambda *a, **k: seen.append(torch.get_num_threads()) or
                        {"im2col": 4.0, "winograd": 2.0, "winograd_4x4": 1.0, "torch": 3.0})
    before = torch.get_num_threads()
    r = winograd_report()
    assert seen == [1] * 4 and torch.get_num_threads() == before
    assert r["speedup_vs_im2col"] == {"F2": 2.0, "F4": 4.0} and r["speedup_vs_torch"] == {"F2": 1.5, "F4": 3.0}


@pytest.mark.parametrize("method, stages", [("winograd", ["input_transform", "gemm", "output_transform"]),
                                            ("winograd_4x4", ["input_transform", "gemm", "output_transform"]),
                                            ("im2col", ["im2col", "gemm", "output"])])
def test_time_breakdown_stages(method, stages):
    t = time_breakdown(8, 8, 12, 12, method=method, batch_size=2, repeats=2)
    assert list(t) == stages and all(isinstance(v, float) and v > 0 for v in t.values())


def test_clock_adds_laps_and_is_silent_without_a_dict():
    times = {}
    clock = wg._Clock(times)
    clock.lap("a")
    clock.lap("b")
    clock.lap("a")
    assert set(times) == {"a", "b"} and all(v >= 0 for v in times.values())
    wg._Clock(None).lap("a")                  # no dict, nothing recorded, no error


def test_time_conv3x3_small():
    t = time_conv3x3(4, 4, 6, 6, repeats=1, methods=wg.TIMED_METHODS)
    assert list(t) == list(wg.TIMED_METHODS) and all(v > 0 for v in t.values())


# ---------------------------------------------------------------- bad inputs

_X = torch.zeros(1, 2, 5, 5)
_W = torch.zeros(3, 2, 3, 3)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: transforms(3), ValueError, "^transforms: tile must be one of"),
    (lambda: transforms(True), TypeError, "^transforms: tile must be an integer"),
    (lambda: transforms(2.0), TypeError, "^transforms: tile must be an integer"),
    (lambda: transforms("2"), TypeError, "^transforms: tile must be an integer"),
    (lambda: winograd_conv2d([[1.0]], _W), TypeError, "^winograd_conv2d: x must be a numpy.ndarray or a torch.Tensor"),
    (lambda: winograd_conv2d(np.zeros((1, 2, 5, 5), dtype=np.int64), _W.numpy()), TypeError,
     "^winograd_conv2d: x must be a floating-point array"),
    (lambda: winograd_conv2d(np.zeros((1, 2, 5, 5), dtype=bool), _W.numpy()), TypeError, "^winograd_conv2d: x must be a floating"),
    (lambda: winograd_conv2d(np.zeros((1, 2, 5, 5), dtype=object), _W.numpy()), TypeError, "^winograd_conv2d: x must be a floating"),
    (lambda: winograd_conv2d(np.full((1, 2, 5, 5), "a"), _W.numpy()), TypeError, "^winograd_conv2d: x must be a floating"),
    (lambda: winograd_conv2d(np.zeros((1, 2, 5, 5), dtype=np.complex64), _W.numpy()), TypeError,
     "^winograd_conv2d: x must be a floating"),
    (lambda: winograd_conv2d(_X.long(), _W), TypeError, "^winograd_conv2d: x must be a floating-point tensor"),
    (lambda: winograd_conv2d(_X.bool(), _W), TypeError, "^winograd_conv2d: x must be a floating-point tensor"),
    (lambda: winograd_conv2d(_X, _W.int()), TypeError, "^winograd_conv2d: w must be a floating-point tensor"),
    (lambda: winograd_conv2d(_X, _W.numpy()), TypeError, "^winograd_conv2d: w must be the same kind of array as x"),
    (lambda: winograd_conv2d(_X, _W.double()), TypeError, "^winograd_conv2d: w must have the same dtype as x"),
    (lambda: winograd_conv2d(_X, torch.zeros(3, 2, 5, 4)), ValueError, "^winograd_conv2d: w must hold square kernels"),
    (lambda: winograd_conv2d(_X, torch.zeros(3, 2, 1, 3)), ValueError, "^winograd_conv2d: w must hold square kernels"),
    (lambda: winograd_conv2d(_X, torch.zeros(3, 2, 6, 6)), ValueError, r"^winograd_conv2d: x must be at least 6×6 after"),
    (lambda: winograd_conv2d(_X, torch.zeros(3, 4, 3, 3)), ValueError, "^winograd_conv2d: w must have as many input channels"),
    (lambda: winograd_conv2d(_X[0], _W), ValueError, r"^winograd_conv2d: x must be a non-empty 4-D array .*got shape \(2, 5, 5\)"),
    (lambda: winograd_conv2d(_X, _W[0]), ValueError, "^winograd_conv2d: w must be a non-empty 4-D array"),
    (lambda: winograd_conv2d(_X[:0], _W), ValueError, "^winograd_conv2d: x must be a non-empty 4-D array"),
    (lambda: winograd_conv2d(torch.zeros(1, 2, 2, 5), _W), ValueError, r"^winograd_conv2d: x must be at least 3×3 after padding"),
    (lambda: winograd_conv2d(_X, _W, padding=-1), ValueError, r"^winograd_conv2d: padding must be an integer in \[0, inf\]"),
    (lambda: winograd_conv2d(_X, _W, padding=1.0), TypeError, "^winograd_conv2d: padding must be an integer"),
    (lambda: winograd_conv2d(_X, _W, padding=True), TypeError, "^winograd_conv2d: padding must be an integer"),
    (lambda: winograd_conv2d(_X, _W, stride=2), ValueError, "^winograd_conv2d: stride must be 1"),
    (lambda: winograd_conv2d(_X, _W, stride=(1, 1)), TypeError, "^winograd_conv2d: stride must be an integer"),
    (lambda: winograd_conv2d(_X, _W, tile=7), ValueError,
     r"^winograd_conv2d: tile must be at most 6 for 3×3 kernels \(tile \+ r <= 9\); got 7"),
    (lambda: winograd_conv2d(_X, torch.zeros(3, 2, 5, 5), tile=5, padding=2), ValueError,
     "^winograd_conv2d: tile must be at most 4 for 5×5 kernels"),
    (lambda: winograd_conv2d(_X, _W, tile=9), ValueError, r"^winograd_conv2d: tile must be an integer in \[1, 8\]"),
    (lambda: winograd_conv2d(_X, _W, tile=0), ValueError, r"^winograd_conv2d: tile must be an integer in \[1, 8\]"),
    (lambda: winograd_conv2d(_X, _W, tile=None), TypeError, "^winograd_conv2d: tile must be an integer"),
    (lambda: winograd_conv2d(_X), ValueError, "^winograd_conv2d: w must be given, or U instead .*got neither"),
    (lambda: winograd_conv2d(_X, _W, U=torch.zeros(4, 4, 3, 2)), ValueError, "^winograd_conv2d: w must be given.*got both"),
    (lambda: winograd_conv2d(_X, U=torch.zeros(2, 2, 3, 2)), ValueError, r"^winograd_conv2d: U must have shape \(α, α, K, 2\)"),
    (lambda: winograd_conv2d(_X, U=torch.zeros(4, 5, 3, 2)), ValueError, r"^winograd_conv2d: U must have shape"),
    (lambda: winograd_conv2d(_X, U=torch.zeros(12, 12, 3, 2)), ValueError, "^winograd_conv2d: tile must be at most"),
    (lambda: winograd_conv2d(_X, U=torch.zeros(4, 4, 3, 5)), ValueError, r"^winograd_conv2d: U must have shape"),
    (lambda: winograd_conv2d(_X, U=torch.zeros(4, 4, 3, 2).numpy()), TypeError, "^winograd_conv2d: U must be the same kind"),
    (lambda: direct_conv2d(_X, torch.zeros(3, 2, 5, 3)), ValueError, "^direct_conv2d: w must hold square kernels"),
    (lambda: direct_conv2d(_X, torch.zeros(3, 2, 7, 7)), ValueError, r"^direct_conv2d: x must be at least 7×7 after padding"),
    (lambda: direct_conv2d(_X, _W, padding=-2), ValueError, "^direct_conv2d: padding must be"),
    (lambda: direct_conv2d(_X.numpy(), _W), TypeError, "^direct_conv2d: w must be the same kind of array as x"),
    (lambda: direct_conv2d("x", _W), TypeError, "^direct_conv2d: x must be a numpy.ndarray or a torch.Tensor"),
    (lambda: direct_conv2d(_X, torch.zeros(3, 3, 3, 3)), ValueError, "^direct_conv2d: w must have as many input channels"),
    (lambda: transform_filters(torch.zeros(3, 2, 5, 4)), ValueError, "^transform_filters: w must hold square kernels"),
    (lambda: transform_filters(_W, tile=7), ValueError, "^transform_filters: tile must be at most 6"),
    (lambda: transform_filters(_W, tile=2.0), TypeError, "^transform_filters: tile must be an integer"),
    (lambda: winograd_conv2d_reference(_X, _W, tile=7), ValueError, "^winograd_conv2d_reference: tile must be at most 6"),
    (lambda: winograd_conv2d_reference(_X, _W.numpy()), TypeError, "^winograd_conv2d_reference: w must be the same kind"),
    (lambda: winograd_conv2d_reference(_X, _W, padding=-1), ValueError, "^winograd_conv2d_reference: padding must be"),
    (lambda: winograd_conv2d_reference(_X[:, :1], _W), ValueError,
     "^winograd_conv2d_reference: w must have as many input channels"),
    (lambda: time_breakdown(4, 4, 6, 6, method="torch"), ValueError, "^time_breakdown: method must be one of"),
    (lambda: time_breakdown(4, 4, 6, 6, repeats=0), ValueError, "^time_breakdown: repeats must be"),
    (lambda: transform_filters([1.0]), TypeError, "^transform_filters: w must be a numpy.ndarray"),
    (lambda: mults_per_tile(3), ValueError, "^mults_per_tile: tile must be one of"),
    (lambda: layer_counts(0, 1, 1, 1, 2), ValueError, r"^layer_counts: C must be an integer in \[1, inf\]"),
    (lambda: layer_counts(True, 1, 1, 1, 2), TypeError, "^layer_counts: C must be an integer"),
    (lambda: layer_counts(1, 1.5, 1, 1, 2), TypeError, "^layer_counts: K must be an integer"),
    (lambda: layer_counts(1, 1, -3, 1, 2), ValueError, "^layer_counts: H_out must be"),
    (lambda: layer_counts(1, 1, 1, 0, 2), ValueError, "^layer_counts: W_out must be"),
    (lambda: layer_counts(1, 1, 1, 1, 8), ValueError, "^layer_counts: tile must be one of"),
    (lambda: layer_counts(1, 1, 1, 1, 2, batch_size=0), ValueError, "^layer_counts: batch_size must be"),
    (lambda: error_vs_direct(2, "fp8"), ValueError, "^error_vs_direct: dtype must be one of"),
    (lambda: error_vs_direct(2, torch.float16), TypeError, "^error_vs_direct: dtype must be a string"),
    (lambda: error_vs_direct(2, "fp32", seed=-1), ValueError, "^error_vs_direct: seed must be"),
    (lambda: error_vs_direct(3, "fp32"), ValueError, "^error_vs_direct: tile must be one of"),
    (lambda: cook_toom(0), ValueError, r"^cook_toom: m must be an integer in \[1, inf\]"),
    (lambda: cook_toom(2, 0), ValueError, "^cook_toom: r must be"),
    (lambda: cook_toom(2, 3, (0, 1)), ValueError, "^cook_toom: points must be a sequence of 3 distinct"),
    (lambda: cook_toom(2, 3, (0, 1, 1)), ValueError, "^cook_toom: points must be a sequence of 3 distinct"),
    (lambda: cook_toom(2, 3, (0, 1, 0.5)), TypeError, r"^cook_toom: points\[2\] must be an integer or a fractions"),
    (lambda: cook_toom(2, 3, (0, 1, True)), TypeError, r"^cook_toom: points\[2\] must be an integer or a fractions"),
    (lambda: cook_toom(2, 3, "012"), TypeError, "^cook_toom: points must be a list"),
    (lambda: cook_toom(8, 3), ValueError, "^cook_toom: points must be given when m"),
    (lambda: time_conv3x3(4, 4, 6, 6, methods=["fft"]), ValueError, r"^time_conv3x3: methods\[0\] must be one of"),
    (lambda: time_conv3x3(4, 4, 6, 6, methods="im2col"), TypeError, "^time_conv3x3: methods must be a list"),
    (lambda: time_conv3x3(4, 4, 6, 6, methods=()), ValueError, r"^time_conv3x3: methods must be a list .*\(non-empty\)"),
    (lambda: time_conv3x3(4, 4, 6, 6, repeats=0), ValueError, "^time_conv3x3: repeats must be"),
    (lambda: time_conv3x3(4, 0, 6, 6), ValueError, "^time_conv3x3: K must be"),
    (lambda: winograd_report(seed=-1), ValueError, "^winograd_report: seed must be"),
    (lambda: winograd_report(seed="0"), TypeError, "^winograd_report: seed must be an integer"),
])
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
