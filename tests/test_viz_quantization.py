"""effdl.viz.quantization (chapter 5): the bit-width widget's state against the library, its figures, its controls."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from effdl import quantization as Q
from effdl import zoo
from effdl.data import Split, load_mnist
from effdl.train import evaluate
from effdl.viz import quantization as qw


@pytest.fixture(scope="module")
def data():
    train, test = load_mnist("train", source="embedded"), load_mnist("test", source="embedded")
    small = Split("test", test.source, test.x[:200], test.y[:200])
    return train.x[:512], small


@pytest.fixture(scope="module")
def lenet300():
    return zoo.load("lenet300")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_state_agrees_with_quantize_model(lenet300, data):
    calib, split = data
    st = qw.quant_state(lenet300, 3, 4, split, calib, "fc2")
    qm = Q.quantize_model(lenet300, 3, 4, calib)
    assert st["accuracy"] == evaluate(qm, split) and st["float_accuracy"] == evaluate(lenet300, split)
    s_w, _ = qm.model.fc2.weight_qparams()
    # levels: 2^bits values one step apart, those of the channel with the largest step
    assert len(st["w_levels"]) == 8 and st["w_scale"] == float(s_w.max()) and st["w_channel"] == int(s_w.argmax())
    assert np.allclose(np.diff(st["w_levels"]), st["w_scale"])
    assert st["w_levels"][0] == -4 * st["w_scale"]                     # symmetric: 0 is a level, q in [-4, 3]
    assert st["w_clipped"] == 0.0                                      # min/max ranges: nothing saturates
    # activations: fc2's input is post-ReLU, unsigned with zero point 0; a power-of-two step
    assert len(st["a_levels"]) == 16 and st["a_zero_point"] == 0 and st["a_levels"][0] == 0.0
    assert st["a_scale"] == float(qm.model.fc2.act_scale) and np.log2(st["a_scale"]).is_integer()
    assert st["inputs"].size == qw.CALIB_IMAGES * 300 and st["inputs"].min() >= 0
    assert st["a_format"] == next(r for r in qm.summary() if r["layer"] == "fc2")["a_format"]
    assert st["weights"].size == 300 * 100


def test_state_float_sides_and_per_tensor(lenet300, data):
    calib, split = data
    fp = qw.quant_state(lenet300, None, None, split, calib, "fc1")
    assert fp["accuracy"] == fp["float_accuracy"] and "w_levels" not in fp and "a_levels" not in fp
    pt = qw.quant_state(lenet300, 2, None, split, calib, "fc1", per_channel=False)
    assert pt["w_channel"] is None and len(pt["w_format"]) == 1 and "a_levels" not in pt
    w = lenet300.fc1.weight.detach().double()
    s, _ = Q.weight_qparams(w, 2, per_channel=False, power_of_two=True)
    assert pt["w_scale"] == float(s)
    pc = qw.quant_state(lenet300, 2, None, split, calib, "fc1")
    assert len(pc["w_format"]) >= 1 and pc["w_channel"] is not None
    # a 2-bit grid with clipping left out: the input layer's image values are not quantized
    assert pt["accuracy"] != fp["accuracy"]


def test_activation_clipping_is_reported(lenet300, data):
    calib, split = data
    st = qw.quant_state(lenet300, None, 4, split, calib[:300], "fc3")
    # calibrated on 300 images (the same first 256 are shown): min/max covers them, nothing saturates
    assert st["a_clipped"] == 0.0
    levels = st["a_levels"]
    assert np.all(st["inputs"] <= levels[-1] + st["a_scale"] / 2)


@pytest.mark.parametrize("args,exc,match", [
    (dict(n_bits_weight=1, n_bits_act=4), ValueError, "n_bits_weight must be an integer in \\[2, 16\\]"),
    (dict(n_bits_weight=4, n_bits_act=17), ValueError, "n_bits_act"),
    (dict(n_bits_weight=4.0, n_bits_act=4), TypeError, "n_bits_weight"),
    (dict(n_bits_weight=4, n_bits_act=4, layer="conv9"), ValueError, "layer must be one of"),
    (dict(n_bits_weight=4, n_bits_act=4, calib=[1, 2]), TypeError, "calib must be"),
    (dict(n_bits_weight=4, n_bits_act=4, per_channel="yes"), TypeError, "per_channel"),
])
def test_state_bad_input(args, exc, match, lenet300, data):
    calib, split = data
    kwargs = {"split": split, "calib": calib, "layer": "fc1", **args}
    with pytest.raises(exc, match=match):
        qw.quant_state(lenet300, kwargs.pop("n_bits_weight"), kwargs.pop("n_bits_act"), **kwargs)


def test_figure_draws_every_level_up_to_64_and_shades_beyond(lenet300, data):
    calib, split = data
    fig = qw.quant_figure(qw.quant_state(lenet300, 3, 8, split, calib, "fc2"))
    ax_w, ax_a = fig.axes
    assert len(ax_w.lines) == 8                                        # 2^3 level lines
    assert len(ax_a.lines) == 2 and len(ax_a.patches) > 120            # 256 levels: the range, shaded
    assert "accuracy" in fig._suptitle.get_text() and ax_w.get_xlabel() == "weight value"


def test_widget_redraws_when_a_slider_moves(lenet300, data):
    calib, split = data
    box = qw.quant_widget(lenet300, split, calib, n_bits_weight=4, n_bits_act=None, layer="fc3")
    (wb, ab), (menu, _), image = box.children[0].children, box.children[1].children, box.children[2]
    first = image.value
    assert first[:4] == b"\x89PNG" and menu.value == "fc3" and ab.value == 0 and ab.label == "float"
    wb.value = 2
    assert image.value != first
    with pytest.raises(ValueError, match="n_bits_weight must be one of"):
        qw.quant_widget(lenet300, split, calib, n_bits_weight=9)


def test_bits_sweep_figure_and_ste_figure():
    curves = {"w": {"bits": [2, 4, 16], "ptq": [50.0, 90.0, 95.0], "ft_bits": [2, 4], "ft": [80.0, 94.0]},
              "wa": {"bits": [2, 4, 16], "ptq": [20.0, 85.0, 95.0], "ft_bits": [], "ft": []}}
    fig = qw.bits_sweep_figure(curves, float_acc=95.0, title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4", "16"]
    assert len(ax.lines) == 4                                          # w: 2 curves, wa: 1, float line
    fig = qw.bits_sweep_figure(curves, float_acc=95.0, float_ft_acc=95.5, title="t")
    assert len(fig.axes[0].lines) == 5 and "95.5" in fig.axes[0].get_legend().get_texts()[-1].get_text()
    fig = qw.ste_figure(3, 0.25)
    ax_f, ax_g = fig.axes
    grad = ax_g.lines[0].get_ydata()
    assert set(np.unique(grad)) == {0.0, 1.0}
    y = ax_f.lines[1].get_ydata()
    assert y.min() == -1.0 and y.max() == 0.75 and len(np.unique(y)) == 8


def test_saturation_and_levels_come_from_the_library(lenet300, data):
    calib, split = data
    st = qw.quant_state(lenet300, 3, None, split, calib, "fc1", per_channel=False)
    w = lenet300.fc1.weight.detach().double()
    s, z = Q.weight_qparams(w, 3, per_channel=False, power_of_two=True)
    q = Q.quantize(w, s, z, 3)
    assert np.array_equal(st["w_levels"], Q.dequantize(torch.arange(-4, 4), s, z, dtype=torch.float64).numpy())
    assert st["w_clipped"] == 0.0 and q.min() >= -4 and q.max() <= 3
    # the clipped share counts values beyond half a step outside the levels: shrink a copy's scale
    half = qw._saturated(w.numpy(), float(s) / 2, 0, 3, signed=True)
    beyond = (w < (-4 - 0.5) * float(s) / 2) | (w > (3 + 0.5) * float(s) / 2)
    assert half == float(beyond.double().mean()) and half > 0
