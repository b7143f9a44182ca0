"""effdl.ternary: quantisers, TTQ's gradient rules against autograd and the paper, training plumbing,
size accounting, shipped checkpoints, bad input."""
import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from effdl import ternary as T
from effdl.data import Split
from effdl.models import LeNet5, LeNet300


def _w(shape=(40, 30), seed=0, scale=0.05):
    return scale * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ quantisers
@pytest.mark.parametrize("shape", [(300, 784), (20, 1, 5, 5), (7,)])
def test_binary_takes_exactly_two_values_plus_minus_mean_abs(shape):
    w = _w(shape)
    b = T.binary_weights(w)
    alpha = w.abs().mean()
    assert set(torch.unique(b).tolist()) == {-alpha.item(), alpha.item()}
    assert torch.equal(b > 0, w >= 0)
    assert torch.equal(T.binary_weights(torch.tensor([0.0, -2.0, 1.0])), torch.tensor([1.0, -1.0, 1.0]))


def test_twn_threshold_values_and_least_squares_scale():
    w = _w((50, 60), seed=1)
    delta = T.twn_threshold(w)
    assert delta == pytest.approx(0.7 * w.abs().mean().item(), rel=1e-6)
    q = T.twn_weights(w)
    values = torch.unique(q)
    assert len(values) == 3 and values[1] == 0 and values[0] == -values[2]
    assert torch.equal(q == 0, w.abs() <= delta)                   # zeros exactly inside the threshold
    alpha = values[2].item()
    assert alpha == pytest.approx(w.abs()[w.abs() > delta].mean().item(), rel=1e-6)
    # α is the least-squares scale for these codes: a nearby α is worse
    codes = torch.sign(q)
    err = lambda a: float(((w - a * codes) ** 2).sum())  # noqa: E731
    assert err(alpha) < err(alpha * 1.05) and err(alpha) < err(alpha * 0.95)
    assert T.twn_threshold(w, factor=0.5) == pytest.approx(0.5 * w.abs().mean().item(), rel=1e-6)


def test_ttq_takes_exactly_three_values_with_its_threshold():
    w = _w((64, 32), seed=2)
    delta = T.ttq_threshold(w)
    assert delta == pytest.approx(0.05 * w.abs().max().item(), rel=1e-6)
    q = T.ttq_weights(w, 0.7, 0.3)
    assert sorted(torch.unique(q).tolist()) == pytest.approx([-0.3, 0.0, 0.7])
    assert torch.equal(q > 0, w > delta) and torch.equal(q < 0, w < -delta)
    assert T.ttq_threshold(w, t=0.2) == pytest.approx(0.2 * w.abs().max().item(), rel=1e-6)
    codes = T.ternary_codes(w, delta)
    assert codes.dtype == torch.int8 and torch.equal(codes.float() * (codes > 0) * 0.7 - (codes < 0) * 0.3, q)


def test_quantisers_are_scale_equivariant():
    w = _w((30, 30), seed=3)
    # α = mean|w| and Δ = 0.7·mean|w| are float32 sums of n positive terms, in a CPU-dependent order: each within
    # (n + 1)·u relative of exact, u = eps32/2; rounding 10w and the final ×10 add u each: rtol (n + 2)·eps32
    rtol = (w.numel() + 2) * torch.finfo(torch.float32).eps
    assert torch.allclose(T.binary_weights(10 * w), 10 * T.binary_weights(w), rtol=rtol, atol=0)
    # TWN also needs both runs to zero the same entries: no |w| within that error of Δ
    assert float(((w.abs() - T.twn_threshold(w)).abs() / T.twn_threshold(w)).min()) > 2 * rtol
    assert torch.allclose(T.twn_weights(10 * w), 10 * T.twn_weights(w), rtol=rtol, atol=0)
    assert torch.equal(T.ttq_weights(10 * w, 1.0, 1.0), T.ttq_weights(w, 1.0, 1.0))   # Δ is relative


# ------------------------------------------------------------------ TTQ gradient rules
def _paper_grads(latent, g, wp, wn, t):
    """Zhu et al., Eq. 6-8, written out in NumPy from the paper's definitions."""
    w, g = latent.detach().numpy().astype(np.float64), g.detach().numpy().astype(np.float64)
    delta = t * np.abs(w).max()
    ip, i_n = w > delta, w < -delta
    g_latent = np.where(ip, wp * g, np.where(i_n, wn * g, g))         # Eq. 7-8: scaled gradients
    return g_latent, g[ip].sum(), g[i_n].sum()                         # Eq. 6: Σ over I_p, Σ over I_n


def _sum_bounds(latent, g, t, n_terms=None):
    """Higham: torch sums ∂L/∂Wp = Σ_{I_p} g in float32 over n terms, in a CPU-dependent order: ≤ n·u·Σ_{I_p}|g|
    from the exact sum, u = eps32/2 (the float64 reference's error is negligible; eps for u covers it and the
    second order). n is |I_p| (|I_n| for Wn), or n_terms when the sum runs over every entry (masked ones add 0).
    """
    w, g = latent.detach().double(), g.detach().double().abs()
    delta = t * w.abs().max()
    out = []
    for mask in (w > delta, w < -delta):
        n = int(mask.sum()) if n_terms is None else n_terms
        out.append(n * torch.finfo(torch.float32).eps * float(g[mask].sum()))
    return out


@pytest.mark.parametrize("shape,t", [((12, 9), 0.05), ((6, 3, 5, 5), 0.05), ((40,), 0.3)])
def test_ttq_gradients_follow_the_paper_and_autograd(shape, t):
    gen = torch.Generator().manual_seed(4)
    latent = torch.randn(shape, generator=gen).requires_grad_()
    wp = torch.tensor(0.8, requires_grad=True)
    wn = torch.tensor(0.5, requires_grad=True)
    coeff = torch.randn(shape, generator=gen)
    q = T.ttq_weights(latent, wp, wn, t)
    (coeff * q).sum().backward()                                       # ∂L/∂w_t = coeff
    g_latent, g_wp, g_wn = _paper_grads(latent, coeff, 0.8, 0.5, t)
    np.testing.assert_allclose(latent.grad.numpy(), g_latent, rtol=1e-6)   # elementwise: one rounding
    bound_p, bound_n = _sum_bounds(latent, coeff, t)                     # float32 sums vs float64: Higham
    assert abs(wp.grad.item() - g_wp) <= bound_p
    # the chain rule for w_t = −Wn on I_n: minus the paper's printed sum
    assert abs(wn.grad.item() + g_wn) <= bound_n
    # autograd on the same forward written with fixed masks (no custom backward) agrees on the scales; its sums
    # run over every entry (the masked ones add zeros), so each side is within that n's bound of the exact sum
    pos, neg = (latent > t * latent.abs().max()).detach(), (latent < -t * latent.abs().max()).detach()
    wp2, wn2 = torch.tensor(0.8, requires_grad=True), torch.tensor(0.5, requires_grad=True)
    (coeff * (wp2 * pos - wn2 * neg)).sum().backward()
    both_p, both_n = _sum_bounds(latent, coeff, t, n_terms=latent.numel())
    assert abs(wp.grad.item() - wp2.grad.item()) <= 2 * both_p
    assert abs(wn.grad.item() - wn2.grad.item()) <= 2 * both_n
    # the pure function returns the same three gradients
    pure = T.ttq_gradients(latent.detach(), coeff, 0.8, 0.5, t)
    assert torch.allclose(pure[0], latent.grad) and abs(pure[1] - g_wp) <= bound_p
    assert abs(pure[2] + g_wn) <= bound_n


def test_ttq_gradients_through_a_real_layer():
    """∂L/∂w_t taken by autograd through F.linear and a cross-entropy, then the rules applied to it."""
    gen = torch.Generator().manual_seed(5)
    latent = torch.randn(10, 20, generator=gen).requires_grad_()
    wp, wn = torch.tensor(0.4, requires_grad=True), torch.tensor(0.6, requires_grad=True)
    x, y = torch.randn(16, 20, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    q = T.ttq_weights(latent, wp, wn)
    F.cross_entropy(F.linear(x, q), y).backward()
    leaf = q.detach().clone().requires_grad_()                       # the same loss on a plain tensor
    F.cross_entropy(F.linear(x, leaf), y).backward()
    g_latent, g_wp, g_wn = _paper_grads(latent, leaf.grad, 0.4, 0.6, 0.05)
    np.testing.assert_allclose(latent.grad.numpy(), g_latent, rtol=1e-5, atol=1e-9)
    bound_p, bound_n = _sum_bounds(latent, leaf.grad, 0.05)   # the same float32 g, summed in float32 vs float64
    assert abs(wp.grad.item() - g_wp) <= bound_p
    assert abs(wn.grad.item() + g_wn) <= bound_n


def test_binary_and_twn_pass_the_gradient_straight_through():
    model = nn.Linear(20, 5)
    T.ternarize(model, "binary")
    x = torch.randn(8, 20, generator=torch.Generator().manual_seed(6))
    model(x).sum().backward()
    latent = model.parametrizations.weight.original
    # ∂(Σ W x)/∂W = Σ_batch x, identical for every output row: the quantiser is the identity backward.
    # The backward GEMM sums the batch in float32 in a CPU-dependent order: compare with the float64 sum,
    # within the summation bound n·eps32·Σ|x| (n = 8 terms).
    want = x.double().sum(0).expand(5, 20)
    bound = x.shape[0] * torch.finfo(torch.float32).eps * x.double().abs().sum(0).expand(5, 20)
    assert ((latent.grad.double() - want).abs() <= bound).all()


# ------------------------------------------------------------------ module plumbing
def test_ternarize_normalises_latent_and_starts_scales_at_mean_magnitudes():
    torch.manual_seed(0)
    model = LeNet5()
    original = {n: model.get_submodule(n).weight.detach().clone() for n in T.layer_names(model)}
    T.ternarize(model, "ttq")
    assert list(T.quantizers(model)) == ["conv1", "conv2", "fc1", "fc2"]
    for name, w in original.items():
        module = model.get_submodule(name)
        latent = module.parametrizations.weight.original
        assert latent.abs().max().item() == pytest.approx(1.0)
        delta = 0.05 * w.abs().max()
        q = module.parametrizations.weight[0]
        assert q.wp.item() == pytest.approx(w[w > delta].abs().mean().item(), rel=1e-5)
        assert q.wn.item() == pytest.approx(w[w < -delta].abs().mean().item(), rel=1e-5)
        assert torch.equal(module.weight > 0, w > delta) and torch.equal(module.weight < 0, w < -delta)


def test_paper_layers_keep_first_and_last():
    assert T.paper_layers(LeNet5()) == ["conv2", "fc1"]
    assert T.paper_layers(LeNet300()) == ["fc2"]
    model = T.ternarized_copy(LeNet5(), "twn", layers=T.paper_layers(LeNet5()))
    assert list(T.quantizers(model)) == ["conv2", "fc1"]


def test_copy_leaves_original_and_freeze_of_copy_leaves_quantised_model():
    torch.manual_seed(1)
    base = LeNet300()
    q = T.ternarized_copy(base, "ttq")
    assert T.quantizers(base) == {}
    frozen = T.freeze(copy.deepcopy(q))
    assert T.quantizers(frozen) == {} and list(T.quantizers(q)) == ["fc1", "fc2", "fc3"]
    x = torch.randn(5, 1, 28, 28)
    assert torch.equal(frozen(x), q(x))
    assert set(frozen.state_dict()) == set(base.state_dict())           # a plain checkpoint of the architecture


def _synthetic(split, n=300):
    """A small learnable stand-in for MNIST: each class a fixed random 28×28 pattern plus noise."""
    gen = torch.Generator().manual_seed({"train": 0, "val": 1}[split])
    patterns = torch.randn(10, 1, 28, 28, generator=torch.Generator().manual_seed(99))
    y = torch.randint(0, 10, (n,), generator=gen)
    return Split(split, "synthetic", patterns[y] + torch.randn(n, 1, 28, 28, generator=gen), y)


@pytest.mark.parametrize("method,n_values", [("binary", 2), ("twn", 3), ("ttq", 3)])
def test_training_keeps_two_or_three_values_and_records_history(method, n_values):
    torch.manual_seed(2)
    model = T.ternarize(LeNet300(hidden=(40, 20)), method)
    start = {n: s["wp"] for n, s in T.layer_stats(model).items()}
    train, val = _synthetic("train"), _synthetic("val")
    seen = []
    fit_history, history = T.train(model, train, val=val, epochs=1, lr=1e-3, optimizer="adam",
                                   batch_size=128, record_every=3, device="cpu", keep_best=False,
                                   show_progress=False)
    for name in T.quantizers(model):
        assert len(torch.unique(model.get_submodule(name).weight)) == n_values
    record = history.as_dict()
    n_steps = math.ceil(len(train) / 128)
    assert record["step"] == [0] + list(range(3, n_steps + 1, 3))
    for name, row in record["layers"].items():
        assert len(row["wp"]) == len(record["step"])
        for p, z, n in zip(row["pos"], row["zero"], row["neg"]):
            assert p + z + n == pytest.approx(1.0, abs=1e-5)
        if method == "binary":
            assert set(row["zero"]) == {0.0} and row["wp"] == row["wn"]
        if method == "ttq":
            assert row["wp"][-1] != start[name]                       # the scales are trained
    export = T.export(model)
    for name, e in export.items():
        w = model.get_submodule(name).weight.detach()
        rebuilt = e["wp"] * (e["codes"] == 1) - e["wn"] * (e["codes"] == -1)
        assert e["codes"].dtype == torch.int8 and torch.allclose(rebuilt, w, atol=0, rtol=1e-6)
    frozen = T.freeze(model)
    stats = T.layer_stats(frozen)
    assert list(stats) == ["fc1", "fc2", "fc3"]
    for name, s in stats.items():
        assert (s["wp"], s["wn"]) == pytest.approx((export[name]["wp"], export[name]["wn"]), rel=1e-6)


def test_scales_of_and_fractions():
    w = torch.tensor([0.5, 0.0, -0.25, 0.5, 0.0, 0.0])
    assert T.scales_of(w) == (0.5, 0.25)
    assert T.value_fractions(w) == (2 / 6, 3 / 6, 1 / 6)
    assert T.scales_of(torch.tensor([0.0, 1.0])) == (1.0, 0.0)
    with pytest.raises(ValueError, match="three values"):
        T.scales_of(torch.tensor([0.5, 0.4, -0.1]))


# ------------------------------------------------------------------ size accounting
def test_model_size_counts_bits_exactly():
    lenet5 = LeNet5()
    weights = 500 + 25_000 + 400_000 + 5_000
    biases = 20 + 50 + 500 + 10
    size = T.model_size(lenet5, "ttq")
    assert size["fp32_bytes"] == 4 * (weights + biases) == 1_724_320
    assert size["bytes"] == weights * 2 // 8 + 4 * biases + 4 * 2 * 4
    assert 15 < size["ratio"] < 16                                     # "≈16× smaller", less biases and scales
    paper = T.model_size(lenet5, "ttq", layers=T.paper_layers(lenet5))
    assert paper["bytes"] == (25_000 + 400_000) * 2 // 8 + 4 * 2 * 2 + 4 * (500 + 5_000 + biases)
    binary = T.model_size(lenet5, "binary")
    assert binary["bytes"] == math.ceil(500 / 8) + 25_000 // 8 + 400_000 // 8 + 5_000 // 8 + 4 * 4 + 4 * biases
    assert 30 < binary["ratio"] < 32
    # same accounting on the quantised model (latent weights and scales are not counted twice)
    assert T.model_size(T.ternarized_copy(lenet5, "ttq"), "ttq") == size


def test_model_size_rounds_up_to_whole_bytes_per_layer():
    layer = nn.Linear(3, 3, bias=False)                                # 9 weights × 2 bits = 18 bits → 3 bytes
    assert T.model_size(layer, "twn")["layers"][0]["weight_bytes"] == 3
    assert T.model_size(layer, "twn")["bytes"] == 3 + 4
    assert T.model_size(layer, "binary")["bytes"] == 2 + 4


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call,exc,match", [
    (lambda: T.binary_weights(torch.arange(5)), TypeError, "floating-point"),
    (lambda: T.binary_weights([1.0, 2.0]), TypeError, "weight must be a torch.Tensor"),
    (lambda: T.binary_weights(torch.empty(0)), ValueError, "weight must be non-empty"),
    (lambda: T.twn_weights(torch.tensor([1.0, float("nan")])), ValueError, "finite"),
    (lambda: T.twn_weights(torch.zeros(4)), ValueError, "non-zero"),
    (lambda: T.twn_weights(torch.ones(4), factor=0.0), ValueError, "factor"),
    (lambda: T.twn_threshold(torch.ones(4), factor=True), TypeError, "factor"),
    (lambda: T.ttq_weights(torch.ones(4), 0.0, 1.0), ValueError, r"wp must be a real number in \(0, inf\)"),
    (lambda: T.ttq_weights(torch.ones(4), 1.0, -0.5), ValueError, r"wn must be a real number in \(0, inf\)"),
    (lambda: T.ttq_weights(torch.ones(4), torch.tensor(-1.0), 1.0), ValueError, "wp must be > 0"),
    (lambda: T.ttq_weights(torch.ones(4), torch.ones(2), 1.0), TypeError, "wp must be"),
    (lambda: T.ttq_weights(torch.ones(4), "1", 1.0), TypeError, "wp must be a real number"),
    (lambda: T.ttq_weights(torch.ones(4), 1.0, 1.0, t=0.0), ValueError, r"t must be a real number in \(0, 1\)"),
    (lambda: T.ttq_threshold(torch.ones(4), t=1.0), ValueError, r"t must be a real number in \(0, 1\)"),
    (lambda: T.ttq_gradients(torch.ones(4), torch.ones(3), 1.0, 1.0), ValueError, "grad must have"),
    (lambda: T.ternary_codes(torch.ones(4), -0.1), ValueError, "delta"),
    (lambda: T.ternarize(LeNet5(), "quaternary"), ValueError, "method must be one of"),
    (lambda: T.ternarize(LeNet5(), 2), TypeError, "method must be a string"),
    (lambda: T.ternarize(LeNet5(), layers=["fc9"]), ValueError, "layers must be names"),
    (lambda: T.ternarize(LeNet5(), layers="fc1"), TypeError, "layers must be a list"),
    (lambda: T.ternarize(LeNet5(), layers=[]), ValueError, r"layers must be a list .*\(non-empty\)"),
    (lambda: T.ternarize(LeNet5(), layers=["fc1", "fc1"]), ValueError, "repeat"),
    (lambda: T.ternarize(T.ternarize(LeNet5(), "twn"), "ttq"), ValueError, "quantised already"),
    (lambda: T.ternarize(nn.ReLU()), ValueError, "Linear or Conv2d"),
    (lambda: T.ternarize("lenet5"), TypeError, "model must be a torch.nn.Module"),
    (lambda: T.paper_layers(nn.Linear(2, 2)), ValueError, "at least 3"),
    (lambda: T.model_size(LeNet5(), "int8"), ValueError, "method"),
    (lambda: T.WeightHistory(every=0), ValueError, "every"),
    (lambda: T.train(LeNet300(), _synthetic("val")), ValueError, "ternarize first"),
    (lambda: T.train(T.ternarize(LeNet300()), _synthetic("val"), after_step=print), TypeError, "after_step"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_ttq_needs_both_signs_and_a_failed_call_changes_nothing():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.abs_()                                          # no negative weight in the last layer
    with pytest.raises(ValueError, match="below −Δ"):
        T.ternarize(model, "ttq")
    assert T.quantizers(model) == {}                                    # the first layer was not touched either


# ------------------------------------------------------------------ shipped checkpoints
def test_shipped_checkpoints_are_binary_or_ternary_and_match_the_record():
    from effdl import precompute, zoo
    from effdl.data import load_mnist
    from effdl.train import evaluate

    record = precompute.load_record("ternary")
    test = load_mnist("test", source="embedded")
    for arch in ("lenet5", "lenet300"):
        for method, n_values in (("binary", 2), ("twn", 3), ("ttq", 3)):
            model = zoo.load(f"{arch}_{method}")
            for name in T.layer_names(model):
                assert len(torch.unique(model.get_submodule(name).weight)) == n_values, (arch, method, name)
            assert evaluate(model, test) == record[arch]["methods"][method]["test"]


# ------------------------------------------------------------------ chapter 6's exercise checks
def test_exercise_checks_accept_the_library_and_reject_wrong_answers():
    from effdl import exercises as E

    assert "passed" in E.check_twn_quantizer(T.twn_weights)
    assert "passed" in E.check_ttq_gradients(T.ttq_gradients)
    with pytest.raises(AssertionError, match="0.7"):
        E.check_twn_quantizer(lambda w: T.twn_weights(w, factor=0.5))
    with pytest.raises(AssertionError, match="least-squares"):
        E.check_twn_quantizer(lambda w: torch.sign(w) * (w.abs() > 0.7 * w.abs().mean()))
    with pytest.raises(AssertionError, match="wrong sign"):
        E.check_ttq_gradients(lambda *a: (lambda g: (g[0], g[1], -g[2]))(T.ttq_gradients(*a)))
    with pytest.raises(AssertionError, match="scaled"):
        E.check_ttq_gradients(lambda latent, grad, *a: (grad, *T.ttq_gradients(latent, grad, *a)[1:]))
