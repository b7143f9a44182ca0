"""effdl.training.mixed_precision: fp16 rounding against numpy, underflow/overflow counts, the loss
scaler against torch.amp.GradScaler, loss scaling on real LeNet gradients (< 1 % underflow), the fp32
path of train_mixed against effdl.train.fit, fp16 storage and lost updates, Tensor Core accumulation
against a numpy float16 oracle, the CUDA path (a clean error on CPU), bad input."""
import doctest

import numpy as np
import pytest
import torch

import effdl.training.mixed_precision as M
from effdl import zoo
from effdl.data import load_mnist
from effdl.models import build_model
from effdl.train import evaluate, fit


def test_docstring_examples():
    assert doctest.testmod(M).failed == 0


# ------------------------------------------------------------------------- fp16 rounding
def test_to_fp16_matches_numpy_float16():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(1000, generator=g) * 10.0 ** torch.randint(-9, 6, (1000,), generator=g),
                   torch.tensor([2.0 ** -24, 2.0 ** -25, 2.0 ** -26, 65504.0, 65520.0, -7e4, 0.0])])
    with np.errstate(over="ignore"):
        expected = torch.from_numpy(x.numpy().astype(np.float16).astype(np.float32))
    assert torch.equal(M.to_fp16(x), expected)
    assert M.FP16_MIN_SUBNORMAL == 2.0 ** -24 and M.FP16_MAX == 65504.0 and M.FP16_MIN_NORMAL == 2.0 ** -14


def test_fp16_storage_rounds_values_and_gradients():
    x = torch.tensor([1.0 + 2 ** -12, 3.0], requires_grad=True)
    y = M.fp16_storage(x)
    assert torch.equal(y.detach(), M.to_fp16(x.detach()))
    y.backward(torch.tensor([1e-9, 1.0 + 2 ** -12]))
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0]))        # 1e-9 underflows; 1 + 2^-12 rounds to 1


def test_emulate_fp16_stores_every_layer_output_in_fp16_and_is_removable():
    model = build_model("lenet5", seed=0)
    x = load_mnist("val").x[:4]
    plain = model(x)
    outs = []
    handles = M.emulate_fp16(model)
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o)) for m in (model.conv1, model.fc2)]
    emulated = model(x)
    assert all(torch.equal(o, M.to_fp16(o)) for o in outs) and len(outs) == 2
    assert not torch.equal(emulated, plain) and (emulated - plain).abs().max() < 0.05
    for h in handles + hooks:
        h.remove()
    assert torch.equal(model(x), plain)


# ---------------------------------------------------------------------- underflow counts
def test_underflow_and_overflow_fractions():
    g = torch.tensor([1e-9, 1e-3, 2.0 ** -26, 0.0, -2e-8, 1.0])
    # non-zero: 5; below half the smallest subnormal (2^-25 ≈ 2.98e-8) at scale 1: 1e-9, 2^-26, -2e-8
    assert M.underflow_fraction(g) == pytest.approx(3 / 5)
    assert M.underflow_fraction(g, 2.0 ** 10) == 0.0
    assert M.overflow_fraction(g, 2.0 ** 17) == pytest.approx(1 / 6)
    assert M.overflow_fraction([g, g], 1.0) == 0.0
    s = M.max_safe_scale(g)
    with np.errstate(over="ignore"):
        assert np.isfinite(np.float16(s * 1.0)) and not np.isfinite(np.float16(2 * s * 1.0))


def test_underflow_fraction_against_numpy():
    g = torch.randn(5000, generator=torch.Generator().manual_seed(1)) * 1e-6
    for scale in [1.0, 64.0, 2.0 ** 12]:
        ref = np.mean((g.numpy() * scale).astype(np.float16) == 0)
        assert M.underflow_fraction(g, scale) == pytest.approx(ref)


@pytest.fixture(scope="module")
def lenet_grads():
    return M.weight_gradients(zoo.load("lenet300"), load_mnist("train"), n_batches=6)


def test_loss_scaling_recovers_real_lenet_gradients(lenet_grads):
    assert len(lenet_grads) == 6 and lenet_grads[0].numel() == 266610
    run = M.scaled_underflow(lenet_grads, M.LossScaler(2.0 ** 16, growth_interval=1))
    assert run["underflow_unscaled"] > 0.005            # a trained net's gradients are tiny
    assert run["underflow_scaled"] < 0.01               # the target: below 1 %
    assert run["underflow_scaled"] < run["underflow_unscaled"] / 5
    assert run["final_scale"] >= 2.0 ** 16 and all(s >= 2.0 ** 16 for s in run["scales_used"])
    # a used (not skipped) scale never overflowed, so none exceeds the largest per-batch safe scale
    assert run["max_scale_used"] <= max(M.max_safe_scale(g) for g in lenet_grads)
    # growing at every good step from 2^16; six batches stay below the cliff (max |g| ≈ 1e-3 → 2^25)
    assert run["scales_used"] == [2.0 ** k for k in range(16, 22)] and run["skipped"] == 0
    static = M.scaled_underflow(lenet_grads, M.LossScaler(1.0, dynamic=False))
    assert static["underflow_scaled"] == pytest.approx(run["underflow_unscaled"])


def test_activation_gradients_are_smaller_still():
    model = zoo.load("lenet300")
    acts = M.weight_gradients(model, load_mnist("train"), n_batches=2, activations=True)
    assert acts[0].numel() == 64 * (300 + 100 + 10)
    weights = M.weight_gradients(model, load_mnist("train"), n_batches=2)
    assert M.underflow_fraction(acts) > M.underflow_fraction(weights)


# ------------------------------------------------------------------------------ the scaler
def test_loss_scaler_follows_torch_grad_scaler():
    pattern = [False, False, True, False, False, False, True, True, False, False, False]
    ours = M.LossScaler(8.0, growth_interval=2)
    theirs = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=2)
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    mine = torch.ones(3)
    for bad in pattern:
        assert ours.scale == theirs.get_scale()
        loss = (w * (float("inf") if bad else 1.0)).sum()
        opt.zero_grad()
        theirs.scale(loss).backward()
        theirs.step(opt)
        theirs.update()
        grad = [torch.full((3,), float("inf") if bad else 1.0) * ours.scale]
        found_inf = ours.unscale(grad)
        assert found_inf == bad
        if not found_inf:
            mine -= 0.1 * grad[0]
        ours.update(found_inf)
    assert ours.scale == theirs.get_scale() and ours.skipped == 3
    assert torch.allclose(mine, w.detach())


def test_static_scaler_keeps_its_scale_but_skips_bad_steps():
    s = M.LossScaler(1024.0, dynamic=False)
    for bad in [False, True, False]:
        s.update(bad)
    assert s.scale == 1024.0 and s.skipped == 1 and [b for _, b in s.history] == [False, True, False]


# --------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def small_splits():
    train, val = load_mnist("train"), load_mnist("val")
    return (type(train)("train", train.source, train.x[:256], train.y[:256]),
            type(val)("val", val.source, val.x[:100], val.y[:100]))


def test_fp32_mode_is_ordinary_sgd(small_splits):
    train, val = small_splits
    r = M.train_mixed("fp32", epochs=2, lr=0.03, schedule="constant", train=train, val=val, test=val)
    ref = build_model("lenet300", seed=0)
    fit(ref, train, epochs=2, lr=0.03, momentum=0.9, batch_size=64, seed=0, device="cpu", show_progress=False)
    for a, b in zip(r.model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert r.test_acc == evaluate(ref, val, device="cpu") and r.skipped == 0


def test_fp16_modes_store_fp16_weights_and_pure_fp16_loses_updates(small_splits):
    train, val = small_splits
    master = M.train_mixed("fp16_master", epochs=1, train=train, val=val, test=val)
    pure = M.train_mixed("fp16_pure", epochs=1, lr=0.003, momentum=0.0, schedule="constant",
                         train=train, val=val, test=val)
    for r in (master, pure):
        assert all(torch.equal(p, M.to_fp16(p)) for p in r.model.parameters())
        assert len(r.scales) == 4 and r.scales[0] == 2.0 ** 16 and 0 <= r.test_acc <= 100
    assert master.lost_update_fraction == [] and 0.3 < pure.lost_update_fraction[0] <= 1.0
    static = M.train_mixed("fp16_master", epochs=1, loss_scale=128.0, train=train, val=val, test=val)
    assert set(static.scales) == {128.0}


def test_lost_updates():
    w = torch.ones(4)
    # half an ulp of 1.0 in fp16 is 2^-11 ≈ 4.9e-4
    assert M.lost_updates(w, torch.tensor([1e-4, 3e-4, 1e-3, 0.0])) == pytest.approx(2 / 3)
    assert M.lost_updates(torch.full((2,), 1e-3), torch.full((2,), 1e-4)) == 0.0   # fine near small weights


# -------------------------------------------------------------------------- Tensor Cores
def _numpy_fp16_chain(a, b, c):
    a16, b16 = a.numpy().astype(np.float16), b.numpy().astype(np.float16)
    acc = c.numpy().astype(np.float16)
    for k in range(a.shape[1]):
        prod = a16[:, k, None].astype(np.float64) * b16[None, k, :].astype(np.float64)   # exact
        acc = (acc.astype(np.float64) + prod).astype(np.float32).astype(np.float16)
    return torch.from_numpy(acc.astype(np.float32))


def test_tensor_core_mma_against_oracles():
    g = torch.Generator().manual_seed(3)
    a, b, c = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g)
    exact = M.to_fp16(a).double() @ M.to_fp16(b).double() + c.double()
    d32 = M.tensor_core_mma(a, b, c)
    # four exact fp16×fp16 products added to c one after another in fp32:
    # Higham, ≤ 4·u·(|c| + |A16||B16|), u = eps32/2
    bound = 4 * torch.finfo(torch.float32).eps * (c.double().abs()
                                                  + M.to_fp16(a).double().abs() @ M.to_fp16(b).double().abs())
    assert ((d32.double() - exact).abs() <= bound).all()
    assert torch.equal(M.tensor_core_mma(a, b, c, accumulate="fp16"), _numpy_fp16_chain(a, b, c))
    assert torch.equal(M.to_fp16(a) * M.to_fp16(b), (M.to_fp16(a).double() * M.to_fp16(b).double()).float())


def test_fp16_accumulation_error_is_larger_and_grows_with_k():
    e32 = [M.accumulation_error(k, accumulate="fp32") for k in (16, 1024)]
    e16 = [M.accumulation_error(k, accumulate="fp16") for k in (16, 1024)]
    assert e16[0] > 30 * e32[0] and e16[1] > 30 * e32[1]
    assert e16[1] > e16[0]
    assert e32[1] < 1e-5


# ------------------------------------------------------------------------------- hardware
def test_matmul_gflops_measures_something():
    assert M.matmul_gflops("fp32", n=64, repeats=1) > 0


def test_autocast_compare_runs_on_cuda_or_refuses_cleanly():
    if torch.cuda.is_available():
        out = M.autocast_compare(epochs=1)
        assert set(out) == {"fp32", "fp16"} and out["fp16"]["test_acc"] > 80
    else:
        with pytest.raises(RuntimeError, match="needs a CUDA device"):
            M.autocast_compare()


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,exc,match", [
    (lambda: M.LossScaler(0.0), ValueError, "LossScaler: init_scale must be a real number in \\(0"),
    (lambda: M.LossScaler(-1.0), ValueError, "init_scale"),
    (lambda: M.LossScaler(True), TypeError, "init_scale must be a real number"),
    (lambda: M.LossScaler(8.0, growth_factor=1.0), ValueError, "growth_factor"),
    (lambda: M.LossScaler(8.0, backoff_factor=1.0), ValueError, "backoff_factor"),
    (lambda: M.LossScaler(8.0, growth_interval=0), ValueError, "growth_interval"),
    (lambda: M.LossScaler(8.0).update(1), TypeError, "found_inf must be True or False"),
    (lambda: M.train_mixed(loss_scale=0.0), ValueError, "train_mixed: loss_scale must be a real number in \\(0"),
    (lambda: M.train_mixed(loss_scale=-8.0), ValueError, "loss_scale"),
    (lambda: M.train_mixed(loss_scale="auto"), ValueError, "loss_scale must be one of"),
    (lambda: M.train_mixed("fp8"), ValueError, "mode must be one of"),
    (lambda: M.train_mixed(schedule="step"), ValueError, "schedule must be one of"),
    (lambda: M.train_mixed(lr=0), ValueError, "lr must be a real number in"),
    (lambda: M.underflow_fraction(torch.ones(3), 0.0), ValueError,
     "underflow_fraction: scale must be a real number in \\(0"),
    (lambda: M.underflow_fraction(torch.zeros(3)), ValueError, "at least one non-zero"),
    (lambda: M.underflow_fraction("grads"), TypeError, "underflow_fraction: grads must be a torch.Tensor"),
    (lambda: M.overflow_fraction(torch.ones(3), -1.0), ValueError, "scale"),
    (lambda: M.max_safe_scale(torch.zeros(3)), ValueError, "max_safe_scale: grads must not be all zero"),
    (lambda: M.scaled_underflow([], M.LossScaler()), ValueError,
     "scaled_underflow: grads must be a list .* \\(non-empty\\)"),
    (lambda: M.scaled_underflow([torch.ones(2)], 2.0), TypeError, "scaler must be"),
    (lambda: M.lost_updates(torch.ones(2), torch.ones(3)), ValueError, "updates must have the weights' shape"),
    (lambda: M.tensor_core_mma(torch.ones(4, 4), torch.ones(4, 3), torch.ones(4, 4)), ValueError,
     "b must have shape \\(4, 4\\)"),
    (lambda: M.tensor_core_matmul(torch.ones(2, 3), torch.ones(2, 3)), ValueError, "\\(M, K\\) and \\(K, N\\)"),
    (lambda: M.tensor_core_matmul(torch.ones(2, 3), torch.ones(3, 2), accumulate="bf16"), ValueError,
     "accumulate must be one of"),
    (lambda: M.accumulation_error(0), ValueError, "k must be"),
    (lambda: M.matmul_gflops("int8"), ValueError, "dtype must be one of"),
    (lambda: M.matmul_gflops("fp32", n=0), ValueError, "n must be"),
    (lambda: M.weight_gradients(torch.nn.Linear(2, 2), "split"), TypeError, "split must be"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
