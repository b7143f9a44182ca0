"""Tests for effdl.architectures: published totals, torch oracles, per-layer names, bad input."""
import doctest

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import effdl.architectures as arch
from effdl.architectures import (
    ARCHITECTURES, AvgPool, BatchNorm2d, Concat, Conv2d, Dropout, Flatten, Linear, MaxPool,
    ReLU, Residual, Sequential, count_macs, count_params, get_architecture, layer_table,
    model_bytes, output_shape, to_torch,
)

NAMES = list(ARCHITECTURES)

# Exact counts. The LeNets and AlexNet are checked by hand below; the rest equal
# torchvision's published totals (ResNet, SqueezeNet) or are this spec's own count.
EXACT_PARAMS = {
    "lenet300": 266_610,      # 784·300+300 + 300·100+100 + 100·10+10
    "lenet5": 431_080,        # 520 + 25,050 + 400,500 + 5,010
    "alexnet": 60_965_224,
    "vgg16": 138_357_544,
    "googlenet": 6_998_552,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "squeezenet": 1_248_424,
}


@pytest.fixture(scope="module")
def torch_runs():
    """Each architecture built on the meta device and run once under FlopCounterMode."""
    runs = {}
    for name, a in ARCHITECTURES.items():
        with torch.device("meta"):
            module = to_torch(a)
            x = torch.empty(1, *a.input_shape)
        module.eval()
        shapes = {}
        hooks = [m.register_forward_hook(lambda m, i, o: shapes.__setitem__(m, (i[0].shape, o.shape)))
                 for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        with FlopCounterMode(display=False) as counter:
            y = module(x)
        for h in hooks:
            h.remove()
        layers = [m for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        runs[name] = dict(module=module, y=y, counter=counter,
                          layer_shapes=[shapes[m] for m in layers])
    return runs


# ---------------------------------------------------------------- totals vs published


@pytest.mark.parametrize("name", NAMES)
def test_params_exact(name):
    assert count_params(get_architecture(name)) == EXACT_PARAMS[name]


@pytest.mark.parametrize("name", [n for n in NAMES if n != "googlenet"])
def test_params_within_1_percent_of_published(name):
    a = get_architecture(name)
    assert count_params(a) == pytest.approx(a.published_params, rel=0.01)


def test_googlenet_params_above_the_papers_table():
    # The paper's Table 1 sums to ~6.8M but lists conv1 as 2.7K params, while
    # 7·7·3·64 = 9,408, and leaves out biases. Counting every weight and bias gives
    # 6,998,552 (~7.0M, what Sze et al. 2017 quote): 2.9 % above, not within 1 %.
    a = get_architecture("googlenet")
    assert 1.02 < count_params(a) / a.published_params < 1.04


@pytest.mark.parametrize("name, rel", [
    ("alexnet", 0.01), ("vgg16", 0.01), ("resnet18", 0.02),
    # ResNet-50 as in the paper (stride in the first 1x1): 3.86G vs the paper's "3.8 × 10^9".
    ("resnet50", 0.02),
    # GoogLeNet's "1.5 billion multiply-adds" is a design budget; the network needs 1.58G.
    ("googlenet", 0.06),
])
def test_macs_near_published(name, rel):
    a = get_architecture(name)
    assert count_macs(a) == pytest.approx(a.published_macs, rel=rel)


def test_alexnet_per_layer_by_hand():
    rows = layer_table(get_architecture("alexnet"))
    got = [(r.output_shape, r.params, r.macs) for r in rows]
    assert got == [
        ((96, 55, 55), 96 * 3 * 11 * 11 + 96, 55 * 55 * 96 * 3 * 11 * 11),
        ((256, 27, 27), 256 * 48 * 5 * 5 + 256, 27 * 27 * 256 * 48 * 5 * 5),
        ((384, 13, 13), 384 * 256 * 3 * 3 + 384, 13 * 13 * 384 * 256 * 3 * 3),
        ((384, 13, 13), 384 * 192 * 3 * 3 + 384, 13 * 13 * 384 * 192 * 3 * 3),
        ((256, 13, 13), 256 * 192 * 3 * 3 + 256, 13 * 13 * 256 * 192 * 3 * 3),
        ((4096,), 9216 * 4096 + 4096, 9216 * 4096),
        ((4096,), 4096 * 4096 + 4096, 4096 * 4096),
        ((1000,), 4096 * 1000 + 1000, 4096 * 1000),
    ]
    assert count_macs(get_architecture("alexnet")) == 724_406_816  # ≈ 724M


# ---------------------------------------------------------------- torch oracles


@pytest.mark.parametrize("name", NAMES)
def test_params_match_torch(name, torch_runs):
    module = torch_runs[name]["module"]
    assert count_params(get_architecture(name)) == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_macs_match_flop_counter(name, torch_runs):
    # FlopCounterMode counts aten.convolution as 2·N·out_h·out_w·out_ch·(in_ch/groups)·k²
    # and aten.addmm/mm as 2·m·k·n; it has no formula for bias adds, batch norm,
    # pooling, LRN, ReLU, residual adds or concatenation, so it counts exactly the
    # conv + linear MACs, twice. Check that no other op slipped in, then compare exactly.
    counter = torch_runs[name]["counter"]
    ops = {str(op) for op in counter.get_flop_counts()["Global"]}
    assert ops <= {"aten.convolution", "aten.addmm", "aten.mm"}
    assert counter.get_total_flops() == 2 * count_macs(get_architecture(name))


@pytest.mark.parametrize("name", NAMES)
def test_shapes_match_torch(name, torch_runs):
    a = get_architecture(name)
    run = torch_runs[name]
    assert tuple(run["y"].shape) == (1, *output_shape(a))
    # to_torch registers modules in spec order, so conv/linear modules line up with the rows.
    rows = layer_table(a)
    assert [(r.input_shape, r.output_shape) for r in rows] == [
        (tuple(i[1:]), tuple(o[1:])) for i, o in run["layer_shapes"]]


@pytest.mark.parametrize("kernel, stride, padding, ceil_mode", [
    (3, 2, 0, True), (3, 2, 1, True), (3, 2, 0, False), (2, 2, 0, True), (3, 3, 1, True),
    (5, 3, 2, True), (7, 1, 0, False),
])
@pytest.mark.parametrize("size", [7, 8, 13, 14, 55, 56, 112])
def test_pool_output_size_matches_torch(kernel, stride, padding, ceil_mode, size):
    # Side by side (Concat), so each pool sees the same input.
    spec = Concat([MaxPool(kernel, stride, padding, ceil_mode), AvgPool(kernel, stride, padding, ceil_mode)])
    with torch.device("meta"):
        y = to_torch(spec)(torch.empty(1, 4, size, size + 1))
    assert output_shape(spec, (4, size, size + 1)) == tuple(y.shape[1:])


def test_composites_run_in_torch():
    body = Sequential([Conv2d(8, 8, 3, padding=1), ReLU(), Conv2d(8, 8, 3, padding=1)])
    spec = Sequential([
        Residual(body),
        Residual(Conv2d(8, 16, 1, stride=2), shortcut=Conv2d(8, 16, 1, stride=2, bias=False)),
        Concat([Conv2d(16, 4, 1), Sequential([MaxPool(3, 1, 1), Conv2d(16, 6, 3, padding=1)])]),
        BatchNorm2d(10), Flatten(), Dropout(0.1), Linear(10 * 3 * 3, 5),
    ])
    torch.manual_seed(0)
    module = to_torch(spec).eval()
    y = module(torch.randn(2, 8, 6, 6))
    assert tuple(y.shape) == (2, *output_shape(spec, (8, 6, 6))) == (2, 5)
    assert count_params(spec) == sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- per-layer tables


def test_alexnet_layer_names_and_kinds():
    rows = layer_table(get_architecture("alexnet"))
    assert [r.name for r in rows] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    assert [r.kind for r in rows] == ["conv"] * 5 + ["fc"] * 3


def test_vgg16_layer_names_and_kinds():
    rows = layer_table(get_architecture("vgg16"))
    convs = [f"conv{b}_{i}" for b, n in enumerate([2, 2, 3, 3, 3], 1) for i in range(1, n + 1)]
    assert [r.name for r in rows] == convs + ["fc6", "fc7", "fc8"]
    assert [r.kind for r in rows] == ["conv"] * 13 + ["fc"] * 3
    assert rows[-3].input_shape == (512 * 7 * 7,)


def test_lenet_layer_names():
    assert [r.name for r in layer_table(get_architecture("lenet300"))] == ["ip1", "ip2", "ip3"]
    assert [r.name for r in layer_table(get_architecture("lenet5"))] == ["conv1", "conv2", "ip1", "ip2"]


@pytest.mark.parametrize("name", NAMES)
def test_table_rows_add_up(name):
    a = get_architecture(name)
    rows = layer_table(a, include_bn=True)
    assert sum(r.params for r in rows) == count_params(a)
    assert sum(r.macs for r in rows) == count_macs(a)
    assert all(r.params == r.weights + r.biases for r in rows)
    names = [r.name for r in rows]
    assert len(set(names)) == len(names)


def test_include_bn_adds_only_bn_rows():
    a = get_architecture("resnet18")
    without, with_bn = layer_table(a), layer_table(a, include_bn=True)
    assert {r.kind for r in without} == {"conv", "fc"}
    assert [r for r in with_bn if r.kind != "bn"] == without
    assert sum(r.params for r in with_bn if r.kind == "bn") == 2 * sum(
        r.output_shape[0] for r in without if r.kind == "conv")


def test_unnamed_layers_get_indexed_names():
    rows = layer_table(Sequential([Flatten(), Linear(12, 4), Linear(4, 2, name="out")]), (3, 2, 2))
    assert [r.name for r in rows] == ["linear_0", "out"]


# ---------------------------------------------------------------- registry and bytes


@pytest.mark.parametrize("name", NAMES)
def test_registry_metadata(name):
    a = get_architecture(name)
    assert a.key == name and a.display_name and a.citation and a.published_source
    assert 1998 <= a.year <= 2016
    assert output_shape(a) == ((10,) if name.startswith("lenet") else (1000,))


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        ARCHITECTURES["mine"] = ARCHITECTURES["vgg16"]


def test_default_input_shape_is_the_architectures():
    a = get_architecture("alexnet")
    assert count_macs(a) == count_macs(a, (3, 227, 227)) != count_macs(a.spec)  # bare spec: 224


def test_model_bytes():
    vgg = get_architecture("vgg16")
    assert model_bytes(vgg) == 4 * 138_357_544  # ≈ 553 MB in fp32
    assert model_bytes(vgg, n_bits=8) == 138_357_544
    assert model_bytes(get_architecture("lenet300"), n_bits=5) == 166_632  # ceil(266,610·5/8)
    assert model_bytes(get_architecture("lenet300"), n_bits=1) == 33_327  # ceil(266,610/8)


def test_doctests():
    assert doctest.testmod(arch).failed == 0


# ---------------------------------------------------------------- bad input


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match=r"name must be one of .*'alexnet'.*'vgg16'.*got 'vgg'"):
        get_architecture("vgg")


@pytest.mark.parametrize("name", [16, None, b"vgg16", ["vgg16"]])
def test_non_string_name(name):
    with pytest.raises(TypeError, match="name must be a string"):
        get_architecture(name)


BAD_SHAPES = [
    ((3, -224, 224), ValueError), ((3, 0, 224), ValueError), ((3, 224), ValueError),
    ((1, 3, 224, 224), ValueError), ((), ValueError),
    ((True, 224, 224), TypeError), ((3, 224.0, 224), TypeError), ("3x224x224", TypeError),
    (224, TypeError),
    # Well formed but wrong for AlexNet: channels, and too small for conv1.
    ((1, 227, 227), ValueError), ((3, 8, 8), ValueError), ((9216,), ValueError),
]


@pytest.mark.parametrize("func", [count_macs, layer_table, output_shape])
@pytest.mark.parametrize("shape, exc", BAD_SHAPES)
def test_bad_input_shape(func, shape, exc):
    with pytest.raises(exc, match="input_shape must"):
        func(get_architecture("alexnet"), shape)


@pytest.mark.parametrize("bits, exc", [(0, ValueError), (65, ValueError), (-8, ValueError),
                                       (True, TypeError), (8.0, TypeError), ("8", TypeError)])
def test_bad_bits(bits, exc):
    with pytest.raises(exc, match="bits must"):
        model_bytes(get_architecture("lenet5"), n_bits=bits)


@pytest.mark.parametrize("func", [count_params, count_macs, layer_table, output_shape, model_bytes, to_torch])
@pytest.mark.parametrize("spec", ["alexnet", None, torch.nn.Linear(2, 2)])
def test_bad_spec(func, spec):
    with pytest.raises(TypeError, match="spec must be"):
        func(spec)


def test_bad_include_bn():
    with pytest.raises(TypeError, match="include_bn must"):
        layer_table(get_architecture("resnet18"), include_bn=1)


@pytest.mark.parametrize("make, exc, param", [
    (lambda: Conv2d(3, 64, 0), ValueError, "kernel"),
    (lambda: Conv2d(3, 64, True), TypeError, "kernel"),
    (lambda: Conv2d(3, 64, 3, stride=0), ValueError, "stride"),
    (lambda: Conv2d(3, 64, 3, padding=-1), ValueError, "padding"),
    (lambda: Conv2d(3, 64, 3, groups=2), ValueError, "groups"),
    (lambda: Conv2d(3, 64, 3, bias=1), TypeError, "bias"),
    (lambda: Conv2d(3.0, 64, 3), TypeError, "in_ch"),
    (lambda: Linear(0, 10), ValueError, "in_f"),
    (lambda: Linear(10, 10, name=3), TypeError, "name"),
    (lambda: MaxPool(3, 2, padding=2), ValueError, "padding"),
    (lambda: MaxPool(3, 2, ceil_mode="yes"), TypeError, "ceil_mode"),
    (lambda: BatchNorm2d(False), TypeError, "ch"),
    (lambda: Dropout(1.5), ValueError, "p"),
    (lambda: Sequential([]), ValueError, "layers"),
    (lambda: Sequential([Conv2d(3, 8, 3), "relu"]), TypeError, "layers"),
    (lambda: Sequential(Conv2d(3, 8, 3)), TypeError, "layers"),
    (lambda: Concat([]), ValueError, "branches"),
    (lambda: Residual("body"), TypeError, "body"),
    (lambda: Residual(ReLU(), shortcut=torch.nn.Identity()), TypeError, "shortcut"),
])
def test_bad_layer_arguments(make, exc, param):
    with pytest.raises(exc, match=rf"^[A-Z]\w*: {param} must .*; got .*\.$"):  # "Conv2d: kernel must …"
        make()


@pytest.mark.parametrize("spec, fragment", [
    (Residual(Conv2d(4, 8, 1)), "body gives"),
    (Concat([Conv2d(4, 8, 1), Conv2d(4, 8, 3)]), "differ in height/width"),
    (Sequential([Conv2d(4, 8, 3), Linear(8, 2)]), "add a Flatten"),
    (Sequential([Conv2d(4, 8, 3), Conv2d(16, 8, 3)]), "needs 16 input channels"),
])
def test_inconsistent_spec_names_the_layer(spec, fragment):
    with pytest.raises(ValueError, match=rf"input_shape must fit the spec \(.*{fragment}"):
        count_macs(spec, (4, 9, 9))
