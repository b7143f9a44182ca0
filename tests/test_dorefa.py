"""DoReFa-Net's quantizers (chapter 06): levels, straight-through gradients, unbiased stochastic gradients."""
import pytest
import torch
from torch import nn

from effdl import dorefa
from effdl.models import build_model


@pytest.mark.parametrize("n_bits", [1, 2, 4, 8])
def test_quantize_k_has_2_to_the_k_levels_and_passes_gradients_straight_through(n_bits):
    r = torch.linspace(0, 1, 1001, requires_grad=True)
    q = dorefa.quantize_k(r, n_bits)
    levels = torch.unique(q.detach())
    assert len(levels) == 2 ** n_bits
    assert torch.allclose(levels * (2 ** n_bits - 1), torch.arange(2 ** n_bits, dtype=torch.float32), atol=1e-4)
    assert (q.detach() - r.detach()).abs().max() <= 0.5 / (2 ** n_bits - 1) + 1e-6
    q.sum().backward()
    assert torch.equal(r.grad, torch.ones_like(r))


def test_weights_one_bit_is_sign_times_mean_and_k_bits_lie_on_symmetric_levels():
    w = torch.randn(50, 40, generator=torch.Generator().manual_seed(0))
    one = dorefa.dorefa_weights(w, 1)
    assert torch.allclose(one, torch.sign(w) * w.abs().mean())
    for k in (2, 3):
        q = dorefa.dorefa_weights(w, k)
        levels = torch.unique(q)
        assert len(levels) <= 2 ** k and q.abs().max() <= 1 + 1e-6
        assert torch.allclose(levels, -levels.flip(0), atol=1e-6)             # symmetric around 0
    assert dorefa.dorefa_weights(w, 32) is w


def test_activations_clip_to_unit_interval_then_quantize():
    x = torch.tensor([-1.0, 0.1, 0.4, 0.9, 3.0])
    assert dorefa.dorefa_activations(x, 2).tolist() == pytest.approx([0, 0, 1 / 3, 1, 1])
    assert dorefa.dorefa_activations(x, 32) is x


def test_gradient_quantizer_is_unbiased_and_coarse():
    g = torch.randn(4, 30, generator=torch.Generator().manual_seed(1)) * 1e-3
    samples = torch.stack([dorefa.dorefa_gradient(g, 2, seed=s) for s in range(4000)])
    per_example = g.abs().amax(dim=1, keepdim=True)
    step = 2 * per_example / 3
    assert ((samples - g).abs() <= step + 1e-9).all()                        # one step of the 2-bit grid at most
    assert len(torch.unique(samples[:, 0, :])) <= 4                           # four levels per example
    assert (samples.mean(0) - g).abs().max() < 0.05 * per_example.max()      # unbiased on average
    # the rounding is stochastic: two seeds round differently
    assert not torch.equal(dorefa.dorefa_gradient(g, 2, seed=0), dorefa.dorefa_gradient(g, 2, seed=1))


def test_dorefa_copy_keeps_first_and_last_layer_float_and_trains():
    torch.manual_seed(0)
    base = build_model("lenet5")
    model = dorefa.dorefa_copy(base, 1, 2, 6)
    assert isinstance(model.conv1, nn.Conv2d)                                  # untouched
    assert isinstance(model.conv2, dorefa.DoReFaLayer) and model.conv2.n_bits_weight == 1
    assert model.fc2.n_bits_weight == 32 and model.fc2.n_bits_act == 2 and model.fc2.n_bits_grad == 32
    assert isinstance(base.conv2, nn.Conv2d)                                   # the original is not modified
    x = torch.rand(8, 1, 28, 28)
    y = torch.randint(0, 10, (8,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(model.conv1.weight.grad).all() and model.conv1.weight.grad.abs().sum() > 0
    assert torch.unique(model.conv2.quantized_weight().detach()).numel() == 2


@pytest.mark.parametrize("call, message", [
    (lambda: dorefa.quantize_k(torch.tensor([0.5, 1.5]), 2), "r must lie in"),
    (lambda: dorefa.quantize_k(torch.tensor([0.5]), 9), "n_bits"),
    (lambda: dorefa.dorefa_weights(torch.ones(3), 0), "n_bits"),
    (lambda: dorefa.dorefa_copy(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), 1, 2, 6), "at least three"),
    (lambda: dorefa.dorefa_copy(build_model("lenet5"), 1, 2, 16), "n_bits_grad"),
])
def test_bad_input_names_the_parameter(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
