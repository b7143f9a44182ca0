"""Chapter 17's efficient blocks: counts against torch, shapes, the 1/N + 1/k² ratio, bad input, reproduce shape."""
from fractions import Fraction

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from effdl import architectures as A
from effdl import models
from effdl.precompute import efficient_blocks as eb

NETS = {"mnist_conv": models.ConvNet, "mnist_fire": models.FireNet, "mnist_separable": models.SeparableNet}


def torch_counts(module: torch.nn.Module, x: torch.Tensor) -> tuple[int, int, tuple]:
    """(parameters, FLOPs / 2, output shape) of ``module`` on ``x``, measured by torch."""
    module.eval()
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    ops = {str(op) for op in counter.get_flop_counts()["Global"]}
    assert ops <= {"aten.convolution", "aten.addmm", "aten.mm"}   # nothing else is counted
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return sum(p.numel() for p in module.parameters()), flops // 2, tuple(y.shape)


# (torch module, spec, input shape (C, H, W)) for each block, with odd shapes and strides
BLOCKS = [
    (lambda: models.Fire(16, 4, 8, 8), A.fire(16, 4, 8, 8), (16, 9, 7)),
    (lambda: models.Fire(3, 2, 5, 7), A.fire(3, 2, 5, 7), (3, 6, 6)),
    (lambda: models.DepthwiseSeparable(8, 24, 3), A.depthwise_separable(8, 24, 3), (8, 10, 10)),
    (lambda: models.DepthwiseSeparable(8, 12, 5, 2), A.depthwise_separable(8, 12, 5, 2), (8, 11, 9)),
    (lambda: models.InvertedResidual(8, 8, 6, 3, 1), A.inverted_residual(8, 8, 6, 3, 1), (8, 7, 7)),
    (lambda: models.InvertedResidual(8, 16, 4, 3, 2), A.inverted_residual(8, 16, 4, 3, 2), (8, 8, 8)),
    (lambda: models.InvertedResidual(16, 16, 1, 5, 1), A.inverted_residual(16, 16, 1, 5, 1), (16, 6, 6)),
]


@pytest.mark.parametrize("make, spec, shape", BLOCKS)
def test_block_counts_match_torch(make, spec, shape):
    torch.manual_seed(0)
    params, macs, out = torch_counts(make(), torch.randn(2, *shape))
    assert A.count_params(spec) == params
    assert macs == 2 * A.count_macs(spec, shape)          # FlopCounter saw a batch of 2 images
    assert out == (2, *A.output_shape(spec, shape))


@pytest.mark.parametrize("name", list(NETS))
def test_net_counts_match_torch(name):
    spec = A.get_architecture(name)
    params, macs, out = torch_counts(models.build_model(name, seed=0), torch.zeros(1, 1, 28, 28))
    assert A.count_params(spec) == params
    assert A.count_macs(spec) == macs
    assert out == (1, 10) and A.output_shape(spec) == (10,)


def test_net_counts_exact():
    counts = {n: (A.count_params(A.get_architecture(n)), A.count_macs(A.get_architecture(n))) for n in NETS}
    assert counts == {"mnist_conv": (61_050, 9_145_216), "mnist_fire": (14_410, 2_622_336),
                      "mnist_separable": (9_034, 1_314_624)}


@pytest.mark.parametrize("c_in, c_out, k, size", [(16, 32, 3, 28), (32, 64, 3, 14), (64, 64, 3, 7),
                                                  (7, 5, 5, 9), (128, 256, 3, 14)])
def test_separable_mac_ratio_is_one_over_n_plus_one_over_k2(c_in, c_out, k, size):
    shape = (c_in, size, size)
    standard = A.count_macs(A.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), shape)
    separable = A.count_macs(A.depthwise_separable(c_in, c_out, k), shape)
    assert Fraction(separable, standard) == Fraction(1, c_out) + Fraction(1, k * k)


def test_fire_fewer_params_than_a_3x3_conv():
    # SqueezeNet's fire2: 96 → squeeze 16 → 64 (1×1) ‖ 64 (3×3) vs a 3×3 conv 96 → 128
    fire = A.count_params(A.fire(96, 16, 64, 64, batch_norm=False))
    conv = A.count_params(A.Conv2d(96, 128, 3, padding=1))
    assert fire == 96 * 16 + 16 + 16 * 64 + 64 + 9 * 16 * 64 + 64
    assert conv / fire > 9


def test_squeezenet_fire_unchanged_and_fifty_times_fewer_params():
    assert A.count_params(A.get_architecture("squeezenet")) == 1_248_424
    ratio = A.count_params(A.get_architecture("alexnet")) / A.count_params(A.get_architecture("squeezenet"))
    assert 48 < ratio < 50


def test_inverted_residual_adds_its_input():
    torch.manual_seed(0)
    block = models.InvertedResidual(4, 4, 2, 3, 1).eval()
    x = torch.randn(1, 4, 5, 5)
    assert block.use_residual
    torch.testing.assert_close(block(x), x + block.body(x))
    assert not models.InvertedResidual(4, 8, 2, 3, 1).use_residual
    assert isinstance(A.inverted_residual(4, 4, 2), A.Residual)
    assert not isinstance(A.inverted_residual(4, 4, 2, 3, 2), A.Residual)


def test_mobilenet_body_reduction_between_8_and_9():
    assert 8 < eb.mobilenet_body_reduction() < 9


@pytest.mark.parametrize("make, match, exc", [
    (lambda: models.Fire(0, 4, 8, 8), "Fire: in_ch", ValueError),
    (lambda: models.Fire(16, 4.0, 8, 8), "Fire: squeeze", TypeError),
    (lambda: models.DepthwiseSeparable(8, 8, 4), "DepthwiseSeparable: kernel", ValueError),
    (lambda: models.DepthwiseSeparable(8, 8, 3, 0), "DepthwiseSeparable: stride", ValueError),
    (lambda: models.InvertedResidual(8, 8, True), "InvertedResidual: expansion", TypeError),
    (lambda: models.InvertedResidual(8, 8, 6, 2), "InvertedResidual: kernel", ValueError),
    (lambda: A.depthwise_separable(8, 8, 2), "depthwise_separable: kernel", ValueError),
    (lambda: A.inverted_residual(8, -1), "inverted_residual: out_ch", ValueError),
    (lambda: A.fire(8, 2, 4, "4"), "fire: expand3", TypeError),
    (lambda: A.get_architecture("mnist_mobile"), "get_architecture: name", ValueError),
    (lambda: models.build_model("mnist_squeeze"), "build_model: name", ValueError),
])
def test_bad_input(make, match, exc):
    with pytest.raises(exc, match=match):
        make()


def test_cpu_ms_per_image_times_each_model_and_refuses_bad_input():
    ms = eb.cpu_ms_per_image({"a": models.ConvNet(), "b": models.SeparableNet()}, rounds=3, calls=1)
    assert set(ms) == {"a", "b"} and all(v > 0 for v in ms.values())
    with pytest.raises(ValueError, match="rounds"):
        eb.cpu_ms_per_image({"a": models.ConvNet()}, rounds=0)
    with pytest.raises(TypeError, match="models"):
        eb.cpu_ms_per_image(models.ConvNet())
    with pytest.raises(TypeError, match=r"models\['a'\]"):
        eb.cpu_ms_per_image({"a": "mnist_conv"})


def test_record_and_reproduce_shape():
    from effdl.reproduce import EXPERIMENTS, shape_problems
    record = eb.load_record("efficient_blocks")
    assert set(record["nets"]) == set(eb.NETS)
    for key, arch in eb.NETS.items():
        row = record["nets"][key]
        assert row["params"] == A.count_params(A.get_architecture(arch))
        assert row["macs"] == A.count_macs(A.get_architecture(arch))
        assert row["lr"] in eb.LR_GRID and 0 <= row["test_acc"] <= 100
    out = eb.efficient_blocks_report()
    assert shape_problems(out, EXPERIMENTS["efficient-blocks"].keys) == []
    assert out["matches_record"]
    assert out["standard"]["acc"] == record["nets"]["standard"]["test_acc"]
    assert 8 < out["mobilenet_body_mac_reduction"] < 9
