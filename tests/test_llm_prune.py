"""effdl.llm.prune: N:M and per-row masks, Wanda's score, SparseGPT's reconstruction against least squares."""
from __future__ import annotations

import pytest
import torch

from effdl.llm import calibration as cal
from effdl.llm import prune as P
from effdl.llm.quantize import layer_error
from effdl.precompute.lm import load_lm, split_ids


def _inputs(tokens=256, width=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, width, generator=g) * (1 + 3 * torch.rand(width, generator=g))   # uneven channels
    return x + 0.5 * x[:, :1]                                                               # and correlated


@pytest.fixture(scope="module")
def real_layers():
    """Two layers of the shipped model with their inputs on 8 calibration windows of the train split."""
    model = load_lm("lm")
    windows = cal.calibration_windows(split_ids("train"), 8, 256, seed=0)
    names = ["blocks.1.attn.q", "blocks.1.mlp.2"]
    xs = cal.capture_inputs(model, windows, names)
    return model, windows, {n: (model.get_submodule(n).weight.detach(), xs[n]) for n in names}


def _all_methods(w, x, **target):
    return {"magnitude": P.magnitude(w, **target), "wanda": P.wanda(w, P.input_norms(x), **target),
            "sparsegpt": P.sparsegpt(w, cal.hessian(x), **target, block_size=8, mask_block=8)}


@pytest.mark.parametrize("pattern", ["2:4", "1:4", "3:8", "4:8"])
def test_nm_masks_keep_exactly_n_of_every_m(pattern):
    n, m = map(int, pattern.split(":"))
    w = torch.randn(12, 32, generator=torch.Generator().manual_seed(1))
    for name, (pruned, mask) in _all_methods(w, _inputs(width=32), pattern=pattern).items():
        assert mask.dtype == torch.bool and mask.shape == w.shape
        assert torch.all(mask.reshape(12, -1, m).sum(-1) == n), name
        assert torch.all(pruned[~mask] == 0), name


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.3, 0.5, 0.77])
def test_unstructured_masks_hit_the_sparsity_per_row_exactly(sparsity):
    w = torch.randn(9, 20, generator=torch.Generator().manual_seed(2))
    want = int(sparsity * 20 + 1e-9)
    for name, (pruned, mask) in _all_methods(w, _inputs(width=20), sparsity=sparsity).items():
        assert torch.all((~mask).sum(1) == want), name
        assert torch.all(pruned[~mask] == 0), name
    assert torch.equal(P.magnitude(w, sparsity=0.0)[0], w)


def test_magnitude_keeps_the_largest_of_each_row():
    w = torch.tensor([[0.1, -3.0, 2.0, 0.5], [4.0, 0.0, -0.2, 1.0]])
    assert P.magnitude(w, 0.5)[1].int().tolist() == [[0, 1, 1, 0], [1, 0, 0, 1]]
    assert P.magnitude(w, pattern="2:4")[1].int().tolist() == [[0, 1, 1, 0], [1, 0, 0, 1]]


def test_wanda_equals_magnitude_when_all_input_norms_are_equal():
    w = torch.randn(16, 24, generator=torch.Generator().manual_seed(3))
    for target in ({"sparsity": 0.5}, {"pattern": "2:4"}):
        a, b = P.wanda(w, torch.full((24,), 3.7), **target), P.magnitude(w, **target)
        assert torch.equal(a[1], b[1]) and torch.equal(a[0], b[0])


def test_wanda_prefers_weights_on_loud_channels():
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert P.wanda(w, torch.tensor([10.0, 10.0, 1.0, 1.0]), pattern="2:4")[1].int().tolist() == [[1, 1, 0, 0]]
    x = torch.randn(50, 4) * torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert torch.allclose(P.input_norms(x), x.norm(dim=0))


def test_sparsegpt_is_exact_obs_when_only_the_first_column_is_pruned():
    """Pruning column 0 alone, the OBS update of all later columns is the least-squares optimum."""
    x = _inputs(tokens=300, width=6, seed=4).double()
    w = torch.randn(5, 6, generator=torch.Generator().manual_seed(5)).double()
    w[:, 0] *= 1e-3                                                      # column 0 is the least salient
    pruned, mask = P.sparsegpt(w, cal.hessian(x), sparsity=1 / 6, damp=0.0)
    assert torch.all(~mask[:, 0]) and mask[:, 1:].all()
    assert torch.allclose(pruned, P.least_squares_reconstruction(w, x, mask), atol=1e-9)


def test_sparsegpt_lazy_blocks_do_not_change_the_result():
    w, x = torch.randn(8, 48, generator=torch.Generator().manual_seed(6)), _inputs(width=48, seed=6)
    h = cal.hessian(x)
    for target in ({"sparsity": 0.5}, {"pattern": "2:4"}):
        a = P.sparsegpt(w, h, **target, block_size=48, mask_block=16)
        b = P.sparsegpt(w, h, **target, block_size=5, mask_block=16)      # mask blocks across lazy blocks
        assert torch.equal(a[1], b[1]) and torch.allclose(a[0], b[0], atol=1e-5)


@pytest.mark.parametrize("target", [{"sparsity": 0.5}, {"pattern": "2:4"}], ids=["50%", "2:4"])
def test_on_real_layers_sparsegpt_beats_wanda_beats_magnitude(real_layers, target):
    for name, (w, x) in real_layers[2].items():
        errors = {m: layer_error(w, x, p) for m, (p, _) in _all_methods(w, x, **target).items()}
        assert errors["sparsegpt"] <= errors["wanda"] <= errors["magnitude"], (name, errors)


def test_least_squares_bounds_sparsegpt_from_below_within_a_factor_of_8(real_layers):
    for name, (w, x) in real_layers[2].items():
        pruned, mask = P.sparsegpt(w, cal.hessian(x), 0.5)
        best = P.least_squares_reconstruction(w, x, mask)
        assert torch.all(best[~mask] == 0)
        e_sg, e_ls = layer_error(w, x, pruned), layer_error(w, x, best)
        assert e_ls <= e_sg <= 8 * e_ls, (name, e_sg, e_ls)
        assert e_sg < layer_error(w, x, w * mask)                         # the reconstruction helps


def test_prune_model_returns_a_pruned_copy_block_by_block(real_layers):
    model, windows, _ = real_layers
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned = P.prune_model(model, "sparsegpt", pattern="2:4", windows=windows[:2, :64])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())          # original untouched
    assert P.model_sparsity(pruned) == 0.5 and P.model_sparsity(model) < 0.01
    assert set(pruned.prune_masks) == set(cal.linear_names(model))
    mag = P.prune_model(model, "magnitude", sparsity=0.25)
    assert abs(P.model_sparsity(mag) - 0.25) < 1e-9
    assert torch.equal(mag.blocks[0].attn.q.bias, model.blocks[0].attn.q.bias)


def test_inputs_block_by_block_sees_earlier_changes(real_layers):
    model, windows, _ = real_layers
    import copy
    m = copy.deepcopy(model)
    stages = cal.inputs_block_by_block(m, windows[:1, :32])
    first = next(stages)
    assert set(first) == {n for n in cal.linear_names(m) if n.startswith("blocks.0.")}
    dense_next = cal.capture_inputs(model, windows[:1, :32], ["blocks.1.attn.q"])["blocks.1.attn.q"]
    with torch.no_grad():
        m.blocks[0].mlp[2].weight.zero_()
    assert not torch.allclose(next(stages)["blocks.1.attn.q"], dense_next)


def test_nm_storage_and_pack_round_trip():
    s = P.nm_storage_bytes(160, 640, "2:4", 16)
    assert s["dense"] == 160 * 640 * 2 and s["values"] == s["dense"] // 2 and s["indices"] == 160 * 320 * 2 // 8
    assert s["ratio"] == pytest.approx(0.5625)
    assert P.nm_storage_bytes(4, 8, "1:8", 32)["indices"] == 2             # 4 values × 3 bits, rounded up
    w, _ = P.magnitude(torch.randn(6, 16, generator=torch.Generator().manual_seed(7)), pattern="2:4")
    w[0, :4] = torch.tensor([0.0, 0.0, 1.5, 0.0])                          # fewer than N nonzeros is fine
    packed = P.pack_nm(w, "2:4")
    assert packed["values"].shape == (6, 8) and packed["indices"].nbytes == 6 * 8 * 2 // 8
    assert torch.equal(P.unpack_nm(packed), w)


@pytest.mark.parametrize("call,message", [
    (lambda w, h: P.magnitude(w, 1.0), "sparsity"),
    (lambda w, h: P.magnitude(w, -0.1), "sparsity"),
    (lambda w, h: P.wanda(w, torch.ones(8), sparsity=1.5), "sparsity"),
    (lambda w, h: P.magnitude(w, pattern="4:4"), "pattern"),
    (lambda w, h: P.magnitude(w, pattern="0:4"), "pattern"),
    (lambda w, h: P.magnitude(w, pattern="3:2"), "pattern"),
    (lambda w, h: P.magnitude(w, pattern="2:3"), "pattern"),              # 3 does not divide 8
    (lambda w, h: P.sparsegpt(w, h, pattern="50%"), "pattern"),
    (lambda w, h: P.magnitude(w), "exactly one of sparsity and pattern"),
    (lambda w, h: P.magnitude(w, 0.5, "2:4"), "exactly one of sparsity and pattern"),
    (lambda w, h: P.sparsegpt(w, h[:4, :4], 0.5), "h must be"),
    (lambda w, h: P.wanda(w, torch.ones(7), 0.5), "x_norm"),
    (lambda w, h: P.pack_nm(w, "2:4"), "at most 2 nonzeros"),
    (lambda w, h: P.prune_model(torch.nn.Linear(8, 4), "wanda", sparsity=0.5), "windows"),
    (lambda w, h: P.prune_model(torch.nn.Linear(8, 4), "magnitude", pattern="2:3"), "pattern"),
])
def test_bad_input(call, message):
    w = torch.randn(4, 8)
    with pytest.raises(ValueError, match=message):
        call(w, cal.hessian(torch.randn(20, 8)))


def test_obs_sweep_is_the_identity_when_nothing_changes_and_refuses_half_a_chooser():
    w, x = torch.randn(3, 12, generator=torch.Generator().manual_seed(8)), _inputs(width=12, seed=8)
    h = cal.hessian(x)
    assert torch.equal(cal.obs_sweep(w, h, lambda col, w_col: w_col, block_size=5), w.double())
    seen = []
    cal.obs_sweep(w, h, lambda col, w_col: w_col, choose=lambda col, ahead, u: seen.append((col, ahead.shape[1])),
                  step=5, block_size=4)
    assert seen == [(0, 5), (5, 5), (10, 2)]                              # chosen for 5 columns at a time
    with pytest.raises(ValueError, match="choose and step"):
        cal.obs_sweep(w, h, lambda col, w_col: w_col, step=4)
