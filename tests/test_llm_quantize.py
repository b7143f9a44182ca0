"""effdl.llm.quantize and effdl.llm.calibration (chapter 19): GPTQ against least squares, AWQ, SmoothQuant, packing."""
import itertools

import pytest
import torch

from effdl.llm import calibration as cal
from effdl.llm import quantize as qz
from effdl.precompute.lm import load_lm, split_ids
from effdl.transformer import TinyGPT, TransformerSpec

SMALL = TransformerSpec("t", n_layer=2, d_model=32, n_head=2, n_kv_head=2, d_ff=64, vocab=128, context=16)


@pytest.fixture(scope="module")
def real_layer():
    model = load_lm("lm")
    windows = cal.calibration_windows(split_ids("val"), 8, 256, seed=0)
    x = cal.capture_inputs(model, windows, ["blocks.1.mlp.0"])["blocks.1.mlp.0"]
    return dict(model.named_modules())["blocks.1.mlp.0"].weight.detach(), x


def _grid_values(w_row, n_bits):
    """The per-row asymmetric grid GPTQ uses when group_size is None (computed from the original row)."""
    scale, zero = qz._grid(w_row[None].double(), n_bits, False)
    return scale[0, 0], zero[0, 0]


def test_gptq_equals_sequential_least_squares_on_a_tiny_layer():
    # GPTQ's OBS step: after fixing column q to its grid value, the columns not yet quantized move to the
    # least-squares optimum of ‖X(w − ŵ)‖² — here solved directly with lstsq, one column at a time.
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(64, 3, generator=gen, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0.6, 0.2], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]], dtype=torch.float64)      # correlated inputs
    w = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    h = cal.hessian(x)
    n_bits = 2
    want = torch.zeros_like(w)
    for r in range(2):
        scale, zero = _grid_values(w[r], n_bits)
        fixed = []
        cur = w[r].clone()
        for c in range(3):
            qv = (torch.clamp(torch.round(cur[c] / scale) + zero, 0, 3) - zero) * scale
            fixed.append(qv)
            if c < 2:                        # move the remaining columns: min ‖X[:, c+1:]·v − X·(w − [fixed, 0])‖
                target = x @ w[r] - x[:, :c + 1] @ torch.stack(fixed)
                cur[c + 1:] = torch.linalg.lstsq(x[:, c + 1:], target[:, None]).solution[:, 0]
        want[r] = torch.stack(fixed)
    for block_size in (1, 2, 3):
        got = qz.gptq(w, h, n_bits, None, block_size=block_size, damp=0.0)
        assert torch.allclose(got, want, atol=1e-9), block_size
    # and GPTQ is never better than the exhaustive optimum over the same grid (4³ candidates per row)
    for r in range(2):
        scale, zero = _grid_values(w[r], n_bits)
        best = min(float((x @ (w[r] - (torch.tensor(c, dtype=torch.float64) - zero) * scale)).pow(2).sum())
                   for c in itertools.product(range(4), repeat=3))
        assert float((x @ (w[r] - want[r])).pow(2).sum()) >= best - 1e-9


def test_gptq_lazy_batches_give_the_same_result_with_groups():
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(200, 16, generator=gen), torch.randn(5, 16, generator=gen)
    h = cal.hessian(x)
    a = qz.gptq(w, h, 3, 4, block_size=1)
    for block_size in (3, 8, 16):
        assert torch.allclose(qz.gptq(w, h, 3, 4, block_size=block_size), a, atol=1e-5)


def test_gptq_and_awq_beat_rtn_on_a_real_layer_of_the_shipped_model(real_layer):
    w, x = real_layer
    for n_bits in (3, 4):
        e_rtn = qz.layer_error(w, x, qz.rtn(w, n_bits, 32))
        e_gptq = qz.layer_error(w, x, qz.gptq(w, cal.hessian(x), n_bits, 32))
        r = qz.awq_scales(w, x, n_bits, 32)
        assert e_gptq < 0.8 * e_rtn
        assert r["errors"][0] == pytest.approx(e_rtn, rel=1e-4)          # α = 0 is RTN
        assert r["error"] == min(r["errors"]) <= e_rtn


def test_rtn_error_shrinks_with_smaller_groups_and_more_bits(real_layer):
    w, _ = real_layer                                                      # in_features 160
    errors = [float((qz.rtn(w, 3, g) - w).pow(2).mean()) for g in (None, 80, 40, 20)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.7 * errors[0]
    by_bits = [float((qz.rtn(w, b, 32) - w).pow(2).mean()) for b in (2, 3, 4, 8)]
    assert by_bits == sorted(by_bits, reverse=True)


def test_rtn_values_lie_on_each_groups_grid():
    w = torch.randn(4, 12, generator=torch.Generator().manual_seed(1))
    for symmetric in (False, True):
        deq, q, scale, zero = qz._rtn(w, 3, 4, symmetric)
        assert torch.equal(qz.rtn(w, 3, 4, symmetric=symmetric), deq)
        lo, hi = (-4, 3) if symmetric else (0, 7)
        assert q.min() >= lo and q.max() <= hi
        assert (deq - w).abs().max() <= scale.max() / 2 + 1e-6 or symmetric   # asymmetric: no clipping
        assert len(torch.unique(deq[0, :4])) <= 8


def test_smoothquant_keeps_the_product_exactly_before_quantization():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 8, generator=gen, dtype=torch.float64) * torch.tensor([1, 1, 30, 1, 1, 1, 5, 1.0],
                                                                               dtype=torch.float64)
    w = torch.randn(6, 8, generator=gen, dtype=torch.float64)
    for alpha in (0.0, 0.5, 0.8, 1.0):
        ws, s = qz.smoothquant(w, x.abs().amax(0), alpha)
        assert torch.allclose((x / s) @ ws.T, x @ w.T, rtol=1e-12, atol=1e-12)
    ws, s = qz.smoothquant(w, x.abs().amax(0), 0.5)
    smoothed = (x / s).abs().amax(0)
    assert smoothed.max() / smoothed.median() < x.abs().amax(0).max() / x.abs().amax(0).median()


def test_quantized_model_packs_and_unpacks_to_the_same_weights(tmp_path):
    torch.manual_seed(0)
    model = TinyGPT(SMALL).eval()
    windows = torch.randint(0, 128, (4, 16))
    fp_bytes = qz.save_packed(model, tmp_path / "fp.npz")
    for method in ("rtn", "gptq", "awq"):
        q = qz.quantize_model(model, method, 4, 16, windows=windows)
        n = qz.save_packed(q, tmp_path / f"{method}.npz")
        assert n < 0.6 * fp_bytes                  # the embeddings (half of this tiny model) stay fp32
        back = qz.load_packed(tmp_path / f"{method}.npz", model)
        for (k, a), b in zip(q.state_dict().items(), back.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-6), (method, k)
    assert not torch.equal(model.blocks[0].attn.q.weight, q.blocks[0].attn.q.weight)   # the original is untouched
    for method in ("w8a8", "smoothquant"):
        q = qz.quantize_model(model, method, 8, windows=windows)
        with torch.no_grad():
            a, b = model(windows)[0], q(windows)[0]
        assert (a - b).abs().max() < 0.05 * a.abs().max()


def test_ragged_groups_cut_like_gptqs_reference_and_pack(tmp_path):
    """group_size=128 on a 160-wide layer with ragged=True: groups start every 128 columns, the last has 32;
    RTN on each piece alone gives the same values; GPTQ and AWQ accept it; the packed file round-trips."""
    torch.manual_seed(1)
    w, x = torch.randn(6, 160), torch.randn(200, 160)
    ragged = qz.rtn(w, 4, 128, ragged=True)
    assert torch.equal(ragged[:, :128], qz.rtn(w[:, :128], 4, 128))
    assert torch.equal(ragged[:, 128:], qz.rtn(w[:, 128:], 4, 32))
    h = cal.hessian(x)
    assert qz.layer_error(w, x, qz.gptq(w, h, 4, 128, ragged=True)) < qz.layer_error(w, x, ragged)
    assert qz.layer_error(w, x, qz.awq(w, x, 4, 128, ragged=True)) <= qz.layer_error(w, x, ragged) * (1 + 1e-6)
    model = TinyGPT(SMALL).eval()                                 # d_model 32, d_ff 64: groups of 24 are ragged
    windows = torch.randint(0, 128, (4, 16))
    for method in ("rtn", "gptq", "awq"):
        q = qz.quantize_model(model, method, 3, 24, windows=windows, ragged=True)
        qz.save_packed(q, tmp_path / f"{method}.npz")
        back = qz.load_packed(tmp_path / f"{method}.npz", model)
        for (k, a), b in zip(q.state_dict().items(), back.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-6), (method, k)
    with pytest.raises(ValueError, match=r"^quantize_model: group_size must divide .* ragged=True"):
        qz.quantize_model(model, "rtn", 3, 24)
    with pytest.raises(ValueError, match=r"^rtn: group_size must divide"):
        qz.rtn(w, 4, 200, ragged=True)                            # a group wider than the row: refused too


def test_calibration_windows_are_seeded_slices_of_the_ids():
    ids = torch.arange(1000) % 128
    a = cal.calibration_windows(ids, 5, 10, seed=2)
    assert a.shape == (5, 10) and torch.equal(a, cal.calibration_windows(ids, 5, 10, seed=2))
    assert ((a[:, 1:] - a[:, :-1]) % 128 == 1).all()


def test_activation_stats_match_captured_inputs():
    torch.manual_seed(0)
    model = TinyGPT(SMALL).eval()
    windows = torch.randint(0, 128, (3, 16))
    xs = cal.capture_inputs(model, windows)
    stats = cal.activation_stats(model, windows)
    assert list(xs) == cal.linear_names(model) == list(stats)
    for n, x in xs.items():
        assert torch.allclose(stats[n]["max_abs"], x.abs().amax(0))
        assert torch.allclose(stats[n]["mean_abs"], x.abs().mean(0), atol=1e-6)
    rows = cal.outlier_summary(stats)
    assert all(r["ratio"] >= 1 for r in rows)


@pytest.mark.parametrize("call,param", [
    (lambda w, h: qz.rtn(w, 1, 32), "n_bits"),
    (lambda w, h: qz.rtn(w, 9, 32), "n_bits"),
    (lambda w, h: qz.rtn(w, 4, 48), "group_size"),
    (lambda w, h: qz.gptq(w, h, 4, 7), "group_size"),
    (lambda w, h: qz.gptq(w, h * float("nan"), 4, 32), "h"),
    (lambda w, h: qz.gptq(w, h[:8, :8], 4, 32), "h"),
    (lambda w, h: qz.gptq(w, -h, 4, 32, damp=0.0), "h"),
])
def test_bad_input_names_the_parameter(call, param):
    w = torch.randn(4, 160)
    h = cal.hessian(torch.randn(300, 160))
    with pytest.raises(ValueError, match=rf"^(rtn|gptq): {param}\b"):
        call(w, h)


def test_int4_linear_equals_the_fake_quantized_product():
    gen = torch.Generator().manual_seed(0)
    w, x = torch.randn(24, 64, generator=gen), torch.randn(5, 64, generator=gen)
    deq, q, scale, zero = qz._rtn(w, 4, 16, False)
    packed = qz.pack_int4(q.long())
    assert packed.shape == (24, 32) and packed.dtype == torch.uint8
    assert torch.allclose(qz.int4_linear(x, packed, scale, zero), x @ deq.T, atol=1e-5)
    with pytest.raises(ValueError, match="^pack_int4: codes"):
        qz.pack_int4(torch.full((2, 4), 16))
    with pytest.raises(ValueError, match="^int4_linear: packed"):
        qz.int4_linear(x[:, :32], packed, scale, zero)
