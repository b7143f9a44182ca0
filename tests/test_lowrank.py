"""Tests for effdl.lowrank: Eckart–Young bounds against numpy's SVD, torch conv2d
and nn.Linear as oracles for exact (full-rank) factorizations, torch's
FlopCounterMode as the oracle for MAC counts, TT contraction vs the dense
matrix, the data-driven conv fit vs the weight-only one, and bad inputs."""
import copy
import doctest
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import effdl.lowrank as lr
from effdl import zoo
from effdl.data import load_mnist
from effdl.models import LeNet5, count_parameters
from effdl.train import evaluate
from effdl.lowrank import (TTLinear, conv_costs, factorize_conv, factorize_conv_data, factorize_linear,
                           layer_inputs, linear_costs, replace_conv, replace_linear, response_spectrum,
                           select_ranks, svd_rank_for_energy, svd_rank_sweep, tt_macs, tt_max_ranks,
                           tt_params)
from bounds import assert_within


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _linear(in_f=40, out_f=30, seed=0, bias=True):
    torch.manual_seed(seed)
    return nn.Linear(in_f, out_f, bias=bias)


def _conv(c=3, d=8, k=3, seed=0, **kw):
    torch.manual_seed(seed)
    return nn.Conv2d(c, d, k, **kw)


EPS32 = torch.finfo(torch.float32).eps


def _abs_model(module):
    """A float64 copy of ``module`` with every parameter replaced by its absolute value."""
    m = copy.deepcopy(module).double()
    with torch.no_grad():
        for p in m.parameters():
            p.abs_()
    return m


@torch.no_grad()
def _rounding_bound(module, x):
    """Elementwise bound on the rounding error of ``module(x)`` run in x's dtype (Higham, first order).

    A Linear/Conv2d output sums n = fan-in products and a bias: it errs by ≤ (n + 1)·u·(|W||h| + |b|),
    u = eps/2, and by u·|W||h| more if W was rounded from float64 factors. ReLU and max-pool never
    enlarge an error and later layers carry it at most as |W| carries |h|, so at the output
    |error| ≤ u·Σ_layers(n + 2)·|net|(|x|), |net| being the net with |W|, |b| run on |x|. Using eps
    rather than u covers the second-order terms.
    """
    n = sum(m.weight[0].numel() + 2 for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    return torch.finfo(x.dtype).eps * n * _abs_model(module)(x.detach().double().abs())


def _macs(module, x):
    """MACs of module(x) per example, from torch's flop counter (2 flops per MAC)."""
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // (2 * len(x))


def test_docstring_examples():
    assert doctest.testmod(lr).failed == 0


# ------------------------------------------------------------------- FC / SVD
@pytest.mark.parametrize("rank", [1, 5, 17, 30])
def test_factorize_linear_meets_eckart_young_bound(rank):
    linear = _linear()
    w = linear.weight.detach().double().numpy()
    u, s, vh = np.linalg.svd(w, full_matrices=False)
    first, second = factorize_linear(linear, rank)
    w_r = (second.weight @ first.weight).detach().double().numpy()
    bound = math.sqrt(float((s[rank:] ** 2).sum()))
    # w_r is a float32 sum of r products of float32-rounded factors: Higham, each entry within
    # (r + 2)·eps32·(|U√S||√S Vᵀ|) of U_r S_r V_rᵀ (the float64 SVDs' errors are ~1e-16 relative)
    err = (rank + 2) * EPS32 * (second.weight.detach().double().abs() @ first.weight.detach().double().abs()).numpy()
    assert abs(np.linalg.norm(w - w_r) - bound) <= np.linalg.norm(err)   # ‖w − w_r‖ moves by ≤ ‖err‖_F
    # the same matrix as numpy's U_r S_r V_rᵀ (sign choices cancel in the product)
    assert np.all(np.abs(w_r - (u[:, :rank] * s[:rank]) @ vh[:rank]) <= err)   # the same entrywise bound
    assert torch.equal(second.bias, linear.bias) and first.bias is None


def test_factorize_linear_full_rank_reproduces_outputs():
    linear = _linear(50, 20)
    x = torch.randn(64, 50, generator=_gen())
    layer = factorize_linear(linear, 20)
    # both float32: each within Higham's bound of its exact output, which are the same up to the factors' rounding
    assert_within(layer(x), linear(x), _rounding_bound(layer, x) + _rounding_bound(linear, x))


def test_factorize_linear_splits_singular_values_evenly_and_keeps_no_bias():
    linear = _linear(bias=False)
    first, second = factorize_linear(linear, 6)
    s = torch.linalg.svdvals(linear.weight.detach().double())[:6]                        # float64 reference
    # a float32 norm of n float32-rounded entries: u per entry, n·u for the sum of squares, halved by the √, + u:
    # relative error ≤ (n/2 + 2)·u ≤ (n + 2)·eps32, with n = 40 entries per row, 30 per column
    torch.testing.assert_close(first.weight.norm(dim=1).double(), s.sqrt(), rtol=42 * EPS32, atol=0)   # rows √σ
    torch.testing.assert_close(second.weight.norm(dim=0).double(), s.sqrt(), rtol=32 * EPS32, atol=0)  # columns √σ
    assert second.bias is None


def test_replace_linear_is_a_copy_and_reaches_nested_names():
    model = nn.Sequential(nn.Sequential(nn.Linear(12, 9), nn.ReLU()), nn.Linear(9, 4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = replace_linear(model, "0.0", 9)
    assert isinstance(new[0][0], nn.Sequential) and isinstance(model[0][0], nn.Linear)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.randn(5, 12, generator=_gen())
    assert_within(new(x), model(x), _rounding_bound(new, x) + _rounding_bound(model, x))   # Higham, both float32
    assert isinstance(replace_linear(model, "1", 2)[1], nn.Sequential)


def test_svd_rank_for_energy_on_known_spectrum():
    # σ = 4, 3, 2, 1 → σ² = 16, 9, 4, 1 (total 30), hidden behind two rotations
    q1, _ = torch.linalg.qr(torch.randn(6, 6, generator=_gen(1), dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(5, 5, generator=_gen(2), dtype=torch.float64))
    w = q1[:, :4] @ torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64)) @ q2[:, :4].T
    cases = {0.1: 1, 16 / 30: 1, 0.54: 2, 25 / 30: 2, 0.9: 3, 29 / 30: 3, 0.97: 4, 1.0: 4}
    assert {e: svd_rank_for_energy(w, e) for e in cases} == cases
    assert svd_rank_for_energy(w.numpy(), 0.9) == 3


def test_svd_rank_for_energy_reads_conv_weight_as_filter_matrix():
    conv = _conv(c=4, d=6, k=3)
    flat = conv.weight.detach().reshape(6, -1)
    for e in (0.3, 0.7, 0.99, 1.0):
        assert svd_rank_for_energy(conv.weight, e) == svd_rank_for_energy(flat, e)


@pytest.mark.parametrize("in_f, out_f, rank", [(784, 300, 20), (300, 100, 1), (10, 10, 10)])
def test_linear_costs_match_modules_and_flop_counter(in_f, out_f, rank):
    costs = linear_costs(in_f, out_f, rank)
    dense = nn.Linear(in_f, out_f)
    low = factorize_linear(dense, rank)
    x = torch.randn(3, in_f)
    assert costs["dense_params"] == count_parameters(dense)
    assert costs["lowrank_params"] == count_parameters(low)
    assert costs["dense_macs"] == _macs(dense, x)
    assert costs["lowrank_macs"] == _macs(low, x)
    # factorizing saves MACs exactly when r < in·out / (in + out)
    assert (costs["lowrank_macs"] < costs["dense_macs"]) == (rank < in_f * out_f / (in_f + out_f))


def test_svd_rank_sweep_on_pretrained_lenet300():
    model = zoo.load("lenet300")
    test = load_mnist("test")
    before = model.fc1.weight.clone()
    rows = svd_rank_sweep(model, "fc1", [1, 10, 300], test)
    assert [r["rank"] for r in rows] == [1, 10, 300]
    assert rows[0]["layer_params"] == linear_costs(784, 300, 1)["lowrank_params"]
    assert rows[2]["params"] == count_parameters(model) - 235_500 + 325_500
    assert rows[2]["acc"] == pytest.approx(evaluate(model, test), abs=0.2)   # full rank = dense
    assert rows[0]["acc"] < rows[1]["acc"] - 30                               # rank 1 loses badly
    assert torch.equal(model.fc1.weight, before)


# ---------------------------------------------------------------------- conv
@pytest.mark.parametrize("c, d, k, kw", [
    (3, 8, 3, {"stride": 2, "padding": 1}),           # d < c·k²: full rank d
    (2, 30, 3, {"padding": 2, "dilation": 2}),       # d > c·k²: full rank c·k² = 18
    (4, 5, (3, 1), {"padding": (1, 0), "bias": False}),
])
def test_factorize_conv_full_rank_reproduces_conv2d(c, d, k, kw):
    conv = _conv(c, d, k, **kw)
    full = min(d, conv.weight[0].numel())
    pair = factorize_conv(conv, full)
    x = torch.randn(2, c, 11, 9, generator=_gen())
    oracle = nn.functional.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation)
    assert_within(pair(x), oracle, _rounding_bound(pair, x) + _rounding_bound(conv, x))   # Higham, both float32
    assert pair[0].stride == conv.stride and pair[0].padding == conv.padding
    assert pair[1].kernel_size == (1, 1) and (pair[1].bias is None) == (conv.bias is None)


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_factorize_conv_low_rank_meets_svd_bound(rank):
    conv = _conv(c=4, d=10, k=3, padding=1)
    pair = factorize_conv(conv, rank)
    w = conv.weight.detach().double().reshape(10, -1).numpy()
    s = np.linalg.svd(w, compute_uv=False)
    w_r = (pair[1].weight[:, :, 0, 0] @ pair[0].weight.reshape(rank, -1)).detach()   # (d, c·k·k)
    # float32 sum of `rank` products of float32-rounded factors: Higham, within err of U_r S_r V_rᵀ entrywise
    err = (rank + 2) * EPS32 * (pair[1].weight[:, :, 0, 0].detach().double().abs()
                                @ pair[0].weight.detach().double().abs().reshape(rank, -1))
    eckart_young = math.sqrt(float((s[rank:] ** 2).sum()))
    assert abs(np.linalg.norm(w - w_r.double().numpy()) - eckart_young) <= float(err.norm())
    x = torch.randn(2, 4, 8, 8, generator=_gen())
    oracle_conv = copy.deepcopy(conv)
    with torch.no_grad():
        oracle_conv.weight.copy_(w_r.reshape(conv.weight.shape))
    oracle = nn.functional.conv2d(x, w_r.reshape(conv.weight.shape), conv.bias, padding=1)
    # Higham for both float32 convs, plus w_r's own rounding (err) carried by |x|
    bound = (_rounding_bound(pair, x) + _rounding_bound(oracle_conv, x)
             + nn.functional.conv2d(x.double().abs(), err.reshape(conv.weight.shape), padding=1))
    assert_within(pair(x), oracle, bound)


def _structured_images(n, seed):
    """Images spanned by 3 fixed smooth patterns plus a constant offset and a little noise."""
    g = torch.Generator().manual_seed(123)                  # the patterns: same for every call
    grid = torch.linspace(0, 1, 12)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    patterns = torch.stack([torch.sin(6 * xx), torch.cos(5 * yy), torch.sin(4 * (xx + yy))])
    mixing = torch.randn(3, 3, generator=g)                  # patterns → 3 channels
    coef = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    imgs = torch.einsum("nk,kc,khw->nchw", coef, mixing, patterns) + 0.5
    return imgs + 0.01 * torch.randn(imgs.shape, generator=torch.Generator().manual_seed(seed + 1))


def _rel_err(approx, exact):
    return float((approx - exact).detach().norm() / exact.detach().norm())


def test_factorize_conv_data_beats_weights_alone_on_structured_inputs():
    conv = _conv(c=3, d=16, k=3, padding=1)
    fit_x, held_out = _structured_images(64, seed=0), _structured_images(32, seed=7)
    exact = conv(held_out)
    for rank in (2, 4, 8):
        err_w = _rel_err(factorize_conv(conv, rank)(held_out), exact)
        err_d = _rel_err(factorize_conv_data(conv, fit_x, rank, n_samples=None)(held_out), exact)
        assert err_d < 0.6 * err_w, (rank, err_d, err_w)


def test_factorize_conv_data_never_worse_on_its_own_samples_and_exact_at_full_rank():
    conv = _conv(c=2, d=6, k=3)
    x = torch.randn(8, 2, 9, 9, generator=_gen()) * 2 + 1   # non-zero mean: the bias correction matters
    exact = conv(x)
    for rank in range(1, 6):
        err_w = _rel_err(factorize_conv(conv, rank)(x), exact)
        err_d = _rel_err(factorize_conv_data(conv, x, rank, n_samples=None)(x), exact)
        assert err_d <= err_w + 1e-6
    pair = factorize_conv_data(conv, x, 6)
    assert_within(pair(x), exact, _rounding_bound(pair, x) + _rounding_bound(conv, x))   # Higham, both float32


def test_factorize_conv_data_on_pretrained_lenet5_conv2():
    model = zoo.load("lenet5")
    test = load_mnist("test")
    fit_in = layer_inputs(model, "conv2", load_mnist("train").x[:200])
    held_in = layer_inputs(model, "conv2", test.x[:200])
    exact = model.conv2(held_in)
    for rank in (5, 10, 20):
        err_w = _rel_err(factorize_conv(model.conv2, rank)(held_in), exact)
        err_d = _rel_err(factorize_conv_data(model.conv2, fit_in, rank)(held_in), exact)
        assert err_d < err_w
    spectrum = response_spectrum(model.conv2, fit_in)
    assert spectrum.shape == (50,) and bool((spectrum[:-1] >= spectrum[1:]).all())


def test_factorize_conv_data_sampling_is_seeded():
    conv = _conv()
    x = torch.randn(4, 3, 10, 10, generator=_gen())
    a, b, c = (factorize_conv_data(conv, x, 3, n_samples=50, seed=s) for s in (1, 1, 2))
    assert torch.equal(a[0].weight, b[0].weight) and not torch.equal(a[0].weight, c[0].weight)


def test_layer_inputs_and_replace_conv_on_lenet5():
    torch.manual_seed(0)
    model = LeNet5().eval()
    x = torch.randn(4, 1, 28, 28, generator=_gen())
    captured = layer_inputs(model, "conv2", x)
    torch.testing.assert_close(captured, torch.relu(nn.functional.max_pool2d(model.conv1(x), 2)))
    model64, x64 = copy.deepcopy(model).double(), x.double()
    for data in (None, x):
        new = replace_conv(model, "conv2", 20, x=data)       # full rank of conv2: min(50, 500) = 50 > 20
        assert isinstance(new.conv2, nn.Sequential) and isinstance(model.conv2, nn.Conv2d)
        # conv1: min(20, 25) = 20, exact. Compared in float64, where Higham's bound through the whole net is
        # ~1e-8 (in float32 it would exceed the logits); rank 19 instead of 20 is off by ~6e-3
        full = replace_conv(model64, "conv1", 20, x=None if data is None else x64)
        assert_within(full(x64), model64(x64), _rounding_bound(full, x64) + _rounding_bound(model64, x64))


@pytest.mark.parametrize("c, d, k, rank, hw", [(20, 50, 5, 10, 8), (1, 20, 5, 3, 24), (3, 8, (3, 1), 2, (5, 7))])
def test_conv_costs_match_modules_and_flop_counter(c, d, k, rank, hw):
    costs = conv_costs(c, d, k, rank, hw)
    conv = nn.Conv2d(c, d, k)
    kh, kw = (k, k) if isinstance(k, int) else k
    h, w = (hw, hw) if isinstance(hw, int) else hw
    x = torch.randn(2, c, h + kh - 1, w + kw - 1)             # valid conv → output h × w
    pair = factorize_conv(conv, rank)
    assert costs["dense_params"] == count_parameters(conv)
    assert costs["lowrank_params"] == count_parameters(pair)
    assert costs["dense_macs"] == _macs(conv, x)
    assert costs["lowrank_macs"] == _macs(pair, x)


def _lenet5_like_convs():
    torch.manual_seed(0)
    return [nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)], [24, 8]


@pytest.mark.parametrize("method", ["uniform", "energy"])
@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5, 1.0])
def test_select_ranks_respects_budget(method, ratio):
    convs, hws = _lenet5_like_convs()
    ranks = select_ranks(convs, ratio, hws, method=method)
    costs = [conv_costs(cv.in_channels, cv.out_channels, 5, r, hw) for cv, r, hw in zip(convs, ranks, hws)]
    assert sum(c["lowrank_macs"] for c in costs) <= ratio * sum(c["dense_macs"] for c in costs)
    assert all(1 <= r <= min(cv.out_channels, cv.weight[0].numel()) for cv, r in zip(convs, ranks))
    # the greedy stops as soon as the budget is met: undoing its last step would break it
    if method == "energy" and ranks != [min(cv.out_channels, cv.weight[0].numel()) for cv in convs]:
        spare = ratio * sum(c["dense_macs"] for c in costs) - sum(c["lowrank_macs"] for c in costs)
        units = [(cv.weight[0].numel() + cv.out_channels) * hw * hw for cv, hw in zip(convs, hws)]
        assert spare < max(units)


def test_select_ranks_uniform_keeps_the_same_fraction():
    convs, hws = _lenet5_like_convs()
    ranks = select_ranks(convs, 0.5, hws, method="uniform")
    assert ranks == [8, 20]                                  # 40 % of 20 and of 50


def _conv_with_spectrum(c, d, sigmas, seed):
    """A 1×1 conv whose (d × c) weight has the given singular values."""
    g = torch.Generator().manual_seed(seed)
    q1, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    q2, _ = torch.linalg.qr(torch.randn(c, c, generator=g))
    n = len(sigmas)
    conv = nn.Conv2d(c, d, 1)
    with torch.no_grad():
        conv.weight.copy_(((q1[:, :n] * torch.tensor(sigmas)) @ q2[:, :n].T)[:, :, None, None])
    return conv


def test_select_ranks_energy_beats_uniform_on_unequal_spectra():
    # layer A: energy in 2 directions; layer B: flat spectrum. Same shapes and costs.
    a = _conv_with_spectrum(16, 16, [10.0, 8.0] + [0.1] * 14, seed=0)
    b = _conv_with_spectrum(16, 16, [1.0] * 16, seed=1)

    def log_energy(ranks):
        return sum(math.log(float((torch.linalg.svdvals(cv.weight.detach().reshape(16, -1))[:r] ** 2).sum()))
                   for cv, r in zip((a, b), ranks))

    uniform = select_ranks([a, b], 0.5, [4, 4], method="uniform")
    energy = select_ranks([a, b], 0.5, [4, 4], method="energy")
    assert uniform[0] == uniform[1]
    assert energy[0] < energy[1] and log_energy(energy) > log_energy(uniform) + 0.3
    # here the greedy choice is the optimum: both layers cost the same per rank, budget = 8 ranks
    best = max(((ra, rb) for ra in range(1, 17) for rb in range(1, 17) if ra + rb <= 8), key=log_energy)
    assert tuple(energy) == best


def test_select_ranks_follows_given_spectra():
    convs, hws = _lenet5_like_convs()
    spectra = [torch.tensor([1.0] + [0.0] * 19), torch.ones(50)]   # conv1 "needs" one direction
    assert select_ranks(convs, 0.5, hws, spectra=spectra)[0] == 1


# --------------------------------------------------------------- tensor train
TT_CASES = [((784,), (300,), 1), ((4, 7), (5, 6), 3), ((4, 7, 7, 4), (3, 5, 5, 4), 8),
            ((2, 3, 2), (3, 1, 4), [1, 2, 5, 1])]


@torch.no_grad()
def _tt_bounds(layer, x=None):
    """Higham's bounds on a TTLinear's rounding errors in its dtype: (to_dense's, forward's on x), elementwise.

    Along each path G_1[i_1, j_1]⋯G_d[i_d, j_d] of W, core k's contraction sums r_{k−1} terms in to_dense
    and r_{k−1}·n_k in forward (which also sums over the input); each adds u = eps/2 per term to the
    relative error of the sum of |paths|, the cores may be rounded from float64 (u each, d in all) and the
    bias adds one rounding. So |error| ≤ u·(Σ_k sums_k + d + 1)·(the same contraction of |G_k|, |x|, |b|);
    eps for u covers the second order.
    """
    eps = torch.finfo(layer.cores[0].dtype).eps
    r, ins, d = layer.ranks, layer.in_factors, len(layer.in_factors)
    dense_abs = _abs_model(layer).to_dense()                            # Σ over paths of Π|G_k|
    dense = eps * (sum(r[:-1]) + d + 1) * dense_abs
    if x is None:
        return dense
    bias = 0 if layer.bias is None else layer.bias.detach().double().abs()
    forward = eps * (sum(r[k] * n for k, n in enumerate(ins)) + d + 1) * (x.double().abs() @ dense_abs.T + bias)
    return dense, forward


def _linear_bound(x, weight, bias):
    """Higham: F.linear in x's dtype errs by ≤ (in + 1)·u·(|x||W|ᵀ + |b|), u = eps/2 (eps for u: second order)."""
    return torch.finfo(x.dtype).eps * (weight.shape[1] + 1) * (x.double().abs() @ weight.detach().double().abs().T
                                                               + bias.detach().double().abs())


@pytest.mark.parametrize("ins, outs, ranks", TT_CASES)
def test_tt_forward_matches_dense_matrix(ins, outs, ranks):
    layer = TTLinear(ins, outs, ranks, generator=_gen())
    with torch.no_grad():
        layer.bias.normal_(generator=_gen(1))
    w = layer.to_dense()
    assert w.shape == (math.prod(outs), math.prod(ins))
    x = torch.randn(5, math.prod(ins), generator=_gen(2))
    # Higham: TT forward's error, plus to_dense's error carried by |x|, plus the dense product's error
    dense_err, forward_err = _tt_bounds(layer, x)
    bound = forward_err + x.double().abs() @ dense_err.T + _linear_bound(x, _abs_model(layer).to_dense(), layer.bias)
    assert_within(layer(x), nn.functional.linear(x, w, layer.bias), bound)
    torch.testing.assert_close(layer(x.reshape(5, 1, -1)), layer(x).reshape(5, 1, -1))   # leading dims


def test_tt_to_dense_entry_is_the_product_of_core_slices():
    layer = TTLinear((2, 3, 2), (3, 2, 2), [1, 3, 2, 1], generator=_gen())
    w = layer.to_dense()
    i, j = (1, 2, 0), (2, 1, 1)                              # multi-indices, row-major
    entry = torch.eye(1)
    for core, ik, jk in zip(layer.cores, i, j):
        entry = entry @ core[:, ik, jk, :]
    flat_i, flat_j = (i[0] * 3 + i[1]) * 2 + i[2], (j[0] * 2 + j[1]) * 2 + j[2]
    # the same float32 chain of core slices summed in maybe another order: twice to_dense's Higham bound
    assert_within(w[flat_j, flat_i], entry[0, 0], 2 * _tt_bounds(layer)[flat_j, flat_i])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ins, outs", [((4, 7), (5, 6)), ((2, 3, 2, 2), (3, 1, 2, 2)), ((4, 7, 7, 4), (3, 5, 5, 4))])
def test_tt_from_dense_with_max_ranks_is_exact(ins, outs, dtype):
    weight = torch.randn(math.prod(outs), math.prod(ins), generator=_gen()).to(dtype)
    bias = torch.randn(math.prod(outs), generator=_gen(1)).to(dtype)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)                           # from_dense makes its cores in the default dtype
    try:
        layer = TTLinear.from_dense(weight, ins, outs, tt_max_ranks(ins, outs), bias=bias)
    finally:
        torch.set_default_dtype(default)
    assert layer.cores[0].dtype == dtype
    # The float64 SVDs: step k's backward error is ≤ p_k·eps64·‖W‖₂ entrywise (LAPACK, p_k = the larger side of
    # the k-th unfolding), carried unchanged by the orthonormal factors that follow.
    r, sizes = layer.ranks, [n * m for n, m in zip(ins, outs)]
    sides = [max(r[k] * sizes[k], math.prod(sizes[k + 1:])) for k in range(len(sizes) - 1)]
    svd_err = torch.finfo(torch.float64).eps * sum(sides) * float(torch.linalg.matrix_norm(weight.double(), 2))
    # Then Higham for the cores' rounding and contractions, relative to Σ|paths| (which the TT-SVD's orthogonal
    # cores make ≫ |W| at the largest ranks): float32 is the shipped dtype; float64 pins the algorithm to ~1e-12
    assert_within(layer.to_dense(), weight, _tt_bounds(layer) + svd_err)
    x = torch.randn(3, math.prod(ins), generator=_gen(2)).to(dtype)
    _, forward_err = _tt_bounds(layer, x)
    bound = forward_err + _linear_bound(x, weight, bias) + svd_err * x.double().abs().sum(1, keepdim=True)
    assert_within(layer(x), nn.functional.linear(x, weight, bias), bound)


@pytest.mark.parametrize("rank", [1, 4, 7])
def test_tt_from_dense_two_cores_is_truncated_svd_of_the_unfolding(rank):
    # with d = 2, TT-SVD is the SVD of the (n1·m1) × (n2·m2) unfolding: Eckart–Young again
    ins, outs = (4, 3), (2, 5)
    weight = torch.randn(10, 12, generator=_gen(), dtype=torch.float64)
    unfold = weight.reshape(2, 5, 4, 3).permute(2, 0, 3, 1).reshape(8, 15)   # (i1 j1), (i2 j2)
    s = torch.linalg.svdvals(unfold)
    layer = TTLinear.from_dense(weight, ins, outs, [1, rank, 1])
    err = float((layer.to_dense().detach().double() - weight).norm())
    # the float32 cores and to_dense move the Frobenius error by at most the norm of their Higham bound
    assert abs(err - float(s[rank:].norm())) <= float(_tt_bounds(layer).norm())


def test_tt_from_dense_pads_ranks_above_what_a_step_provides():
    ins, outs = (2, 2, 2), (1, 1, 4)                          # core sizes 2, 2, 8
    assert tt_max_ranks(ins, outs) == (1, 2, 4, 1)
    weight = torch.randn(4, 8, generator=_gen())
    layer = TTLinear.from_dense(weight, ins, outs, [1, 1, 4, 1])   # step 2 has only r_1·2 = 2 directions
    assert tuple(layer.cores[1].shape) == (1, 2, 1, 4)
    exact = TTLinear.from_dense(weight, ins, outs, [1, 2, 4, 1])
    assert_within(exact.to_dense(), weight, _tt_bounds(exact))   # float64 TT-SVD, float32 cores: Higham
    assert float((layer.to_dense().detach() - weight).norm()) > 1e-3   # r_1 = 1 truncates; padding adds nothing


def test_tt_params_and_max_ranks():
    layer = TTLinear((4, 7, 7, 4), (3, 5, 5, 4), 8)
    assert count_parameters(layer) == tt_params((4, 7, 7, 4), (3, 5, 5, 4), 8) + 300 == 4704 + 300
    assert tt_params((784,), (300,), 1) == 784 * 300
    assert tt_max_ranks((4, 7), (5, 6)) == (1, 20, 1)
    assert TTLinear((4, 7), (5, 6), 100).ranks == (1, 20, 1)            # an int is capped
    assert tt_params((4, 7, 7, 4), (3, 5, 5, 4), tt_max_ranks((4, 7, 7, 4), (3, 5, 5, 4))) > 784 * 300


@pytest.mark.parametrize("ins, outs, ranks", TT_CASES)
def test_tt_macs_match_flop_counter(ins, outs, ranks):
    layer = TTLinear(ins, outs, ranks, bias=False)
    assert tt_macs(ins, outs, ranks) == _macs(layer, torch.randn(3, math.prod(ins)))


def test_tt_init_has_he_variance_and_respects_generator():
    x = torch.randn(2048, 784, generator=_gen())
    with torch.no_grad():
        stds = [float(TTLinear((4, 7, 7, 4), (3, 5, 5, 4), 8, generator=_gen(s))(x).std()) for s in range(3)]
    assert 0.6 * math.sqrt(2) < np.mean(stds) < 1.5 * math.sqrt(2)      # He: Var y = 2·Var x
    state = torch.get_rng_state()
    a = TTLinear((4, 7), (5, 6), 3, generator=_gen(5))
    b = TTLinear((4, 7), (5, 6), 3, generator=_gen(5))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.cores, b.cores))


def test_tt_gradients_flow_and_one_step_reduces_loss():
    layer = TTLinear((4, 7), (5, 6), 4, generator=_gen())
    x = torch.randn(64, 28, generator=_gen(1))
    target = torch.randn(64, 30, generator=_gen(2))
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    loss = nn.functional.mse_loss(layer(x), target)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())
    opt.step()
    assert nn.functional.mse_loss(layer(x), target) < loss


# ------------------------------------------------------------------ bad input
_lin = nn.Linear(6, 4)
_cv = nn.Conv2d(3, 8, 3)
_w = torch.randn(4, 6)
_x = torch.randn(2, 3, 6, 6)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: svd_rank_for_energy(_w, 0.0), ValueError, "energy must be"),
    (lambda: svd_rank_for_energy(_w, 1.5), ValueError, "energy must be"),
    (lambda: svd_rank_for_energy(_w, True), TypeError, "energy must be"),
    (lambda: svd_rank_for_energy(_w, "0.9"), TypeError, "energy must be"),
    (lambda: svd_rank_for_energy(torch.zeros(3, 3), 0.5), ValueError, "weight must not be all zeros"),
    (lambda: svd_rank_for_energy(torch.ones(3), 0.5), ValueError, "weight must be a tensor with 2 or 3 or 4 dimensions"),
    (lambda: svd_rank_for_energy("w", 0.5), TypeError, "weight must be a tensor"),
    (lambda: svd_rank_for_energy(torch.ones(2, 2, dtype=torch.bool), 0.5), TypeError, "weight must be a tensor"),
    (lambda: svd_rank_for_energy(torch.tensor([[1.0, float("nan")]]), 0.5), ValueError, "finite"),
    (lambda: factorize_linear(_lin, 0), ValueError, r"rank must be an integer in \[1, inf\]"),
    (lambda: factorize_linear(_lin, 5), ValueError, r"rank must be an integer in \[1, 4\]"),
    (lambda: factorize_linear(_lin, 2.0), TypeError, "rank must be an integer"),
    (lambda: factorize_linear(_lin, True), TypeError, "rank must be an integer"),
    (lambda: factorize_linear(_cv, 2), TypeError, "linear must be a torch.nn.Linear"),
    (lambda: replace_linear(nn.Sequential(_lin), "fc9", 2), ValueError, "name must be the name of a"),
    (lambda: replace_linear(nn.Sequential(_lin), "", 2), ValueError, "name must be the name of a"),
    (lambda: replace_linear(nn.Sequential(_cv), "0", 2), TypeError, r"model\.0 must be a torch.nn.Linear"),
    (lambda: replace_linear(nn.Sequential(_lin), 0, 2), TypeError, "name must be a string"),
    (lambda: replace_linear("model", "fc1", 2), TypeError, "model must be a torch.nn.Module"),
    (lambda: linear_costs(784, 300, 301), ValueError, "rank must be"),
    (lambda: linear_costs(0, 300, 1), ValueError, "in_features must be"),
    (lambda: linear_costs(784.0, 300, 1), TypeError, "in_features must be"),
    (lambda: factorize_conv(_lin, 2), TypeError, "conv must be a torch.nn.Conv2d"),
    (lambda: factorize_conv(_cv, 9), ValueError, r"rank must be an integer in \[1, 8\]"),
    (lambda: factorize_conv(nn.Conv2d(4, 8, 3, groups=2), 2), ValueError, "groups=1"),
    (lambda: factorize_conv_data(_cv, torch.randn(2, 4, 6, 6), 2), ValueError, "inputs must have 3 channels"),
    (lambda: factorize_conv_data(_cv, torch.randn(3, 6, 6), 2), ValueError, "inputs must be a tensor with 4 dimensions"),
    (lambda: factorize_conv_data(_cv, _x, 0), ValueError, "rank must be"),
    (lambda: factorize_conv_data(_cv, _x, 2, n_samples=0), ValueError, "n_samples must be"),
    (lambda: factorize_conv_data(_cv, _x, 2, seed=-1), ValueError, "seed must be"),
    (lambda: replace_conv(nn.Sequential(_lin), "0", 2), TypeError, r"model\.0 must be a torch.nn.Conv2d"),
    (lambda: layer_inputs(nn.Sequential(_cv), "conv9", _x), ValueError, "name must be the name of a"),
    (lambda: conv_costs(20, 50, 5, 51, 8), ValueError, "rank must be"),
    (lambda: conv_costs(20, 50, (5, 5, 5), 5, 8), ValueError, "k must be an int or a pair"),
    (lambda: conv_costs(20, 50, 5, 5, 0), ValueError, "out_hw must be"),
    (lambda: select_ranks([_cv], 0.0, [4]), ValueError, "target_macs_ratio must be"),
    (lambda: select_ranks([_cv], 1e-4, [4]), ValueError, "target_macs_ratio must be at least"),
    (lambda: select_ranks([_cv], 0.5, [4, 4]), ValueError, "out_hw must be a sequence of 1"),
    (lambda: select_ranks([_cv], 0.5, [4], method="greedy"), ValueError, "method must be one of"),
    (lambda: select_ranks([_lin], 0.5, [4]), TypeError, r"convs\[0\] must be a torch.nn.Conv2d"),
    (lambda: select_ranks(_cv, 0.5, [4]), TypeError, "convs must be a list of a torch.nn.Conv2d"),
    (lambda: select_ranks([_cv], 0.5, [4], spectra=[torch.ones(3)]), ValueError, "spectra must hold"),
    (lambda: select_ranks([_cv], 0.5, [4], spectra=[]), ValueError, "spectra must be a sequence of 1"),
    (lambda: TTLinear((4, 7), (5,), 2), ValueError, "out_factors must have as many factors"),
    (lambda: TTLinear((4, 0), (5, 6), 2), ValueError, r"in_factors\[1\] must be an integer in \[1, inf\]"),
    (lambda: TTLinear(28, (5, 6), 2), TypeError, "in_factors must be a list"),
    (lambda: TTLinear((4, 7), (5, 6), [1, 2]), ValueError, r"ranks must have 3 entries"),
    (lambda: TTLinear((4, 7), (5, 6), [2, 2, 1]), ValueError, "ranks must start and end with 1"),
    (lambda: TTLinear((4, 7), (5, 6), [1, 21, 1]), ValueError, "ranks must lie between 1 and"),
    (lambda: TTLinear((4, 7), (5, 6), 0), ValueError, "ranks must be"),
    (lambda: TTLinear((4, 7), (5, 6), [1, 2.0, 1]), TypeError, r"ranks must be an integer in \[1, inf\] or a list"),
    (lambda: TTLinear((4, 7), (5, 6), 2, bias=1), TypeError, "bias must be True or False"),
    (lambda: TTLinear((4, 7), (5, 6), 2)(torch.randn(3, 27)), ValueError, "x must have 28 features"),
    (lambda: TTLinear.from_dense(torch.randn(30, 28), (4, 7), (5, 5), 2), ValueError,
     "in_factors and out_factors must multiply to the weight's shape"),
    (lambda: TTLinear.from_dense(torch.randn(30, 28), (4, 7), (5, 6), 2, bias=torch.ones(29)), ValueError,
     "bias must have 30 entries"),
    (lambda: tt_params((4, 7), (5, 6), [1, 2, 2, 1]), ValueError, "ranks must have 3 entries"),
    (lambda: svd_rank_sweep(nn.Sequential(_lin), "0", [5], None), TypeError, "test_split must be"),
])
def test_bad_inputs_raise_clear_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_svd_rank_sweep_rejects_bad_ranks():
    test = load_mnist("test")
    model = zoo.load("lenet300")
    with pytest.raises(ValueError, match=r"ranks must be an integer in \[1, 10\]"):
        svd_rank_sweep(model, "fc3", [5, 20], test)
    with pytest.raises(TypeError, match="ranks must be a list"):
        svd_rank_sweep(model, "fc3", 5, test)
