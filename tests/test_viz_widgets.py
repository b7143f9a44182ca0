"""The widgets of chapters 1–3 and chapter 2's figures: each widget's pure state function against the
library it calls, its figure on what it draws, and its controls redrawing the image."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from effdl import numerics, pruning, sharing, zoo  # noqa: E402
from effdl.data import Split, load_mnist  # noqa: E402
from effdl.train import evaluate  # noqa: E402
from effdl.viz import numbers  # noqa: E402
from effdl.viz import pruning as pruning_views  # noqa: E402
from effdl.viz import sharing as sharing_views  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def lenet300():
    return zoo.load("lenet300")


@pytest.fixture(scope="module")
def split():
    test = load_mnist("test", source="embedded")
    return Split("test", test.source, test.x[:200], test.y[:200])


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


# ------------------------------------------------------------------ chapter 1: the bit-width widget
def test_bit_width_state_matches_numerics():
    state = numbers.bit_width_state(0.1, "fp16")
    assert state["bits"] == numerics.bit_fields(0.1, "fp16")
    assert state["format"]["max"] == 65504.0
    fixed = numbers.bit_width_state(2.71828, "fixed point", int_bits=3, frac_bits=4)
    assert fixed["format"]["name"] == "q3.4" and fixed["bits"].stored == 2.6875


@pytest.mark.parametrize("args, exc", [((0.1, "fp64"), ValueError), ((0.1, 16), TypeError),
                                       ((0.1, "fixed point", 0, 0), ValueError),
                                       (("a", "fp16"), TypeError)])
def test_bit_width_state_bad_input(args, exc):
    with pytest.raises(exc):
        numbers.bit_width_state(*args)


def test_bit_width_figure_draws_every_bit_of_the_state():
    state = numbers.bit_width_state(0.1, "fp16")
    fig = numbers.bit_width_figure(state)
    ax = fig.axes[0]
    cells = [t.get_text() for t in ax.texts[:16]]
    assert "".join(cells) == state["bits"].bits and len(ax.patches) == 16
    assert _legend(ax) == ["sign", "exponent", "mantissa"]
    assert any(t.get_text().startswith("value 0.1 → stored 0.099975586") for t in ax.texts)


def test_bit_width_widget_redraws_and_reports_errors():
    box = numbers.bit_width_widget(0.1, "fp16")
    (fmt, number), (ib, fb) = box.children[0].children, box.children[1].children
    message, image = box.children[2], box.children[3]
    first = image.value
    assert first[:4] == b"\x89PNG" and ib.disabled
    number.value = 0.3
    assert image.value != first
    fmt.value = "fixed point"
    assert not ib.disabled
    ib.value, fb.value = 0, 0          # Q0.0 has one bit: an error shown in the widget, not raised
    assert "int_bits + frac_bits" in message.value
    fb.value = 4
    assert message.value == ""


# ------------------------------------------------------------------ chapter 2
def test_pruning_curves():
    curves = {"sparsity": [0.5, 0.9], "prune_only": [97.0, 60.0], "prune_retrain": [98.0, 95.0],
              "iterative": [98.0, 97.5], "acc_dense": 98.1}
    fig = pruning_views.pruning_curves(curves)
    ax = fig.axes[0]
    assert list(ax.lines[0].get_xdata()) == [50.0, 90.0] and list(ax.lines[2].get_ydata()) == [98.0, 97.5]
    assert ax.lines[3].get_ydata()[0] == 98.1 and ax.get_ylim()[0] == 55.0
    assert _legend(ax)[-1] == "dense model" and "LeNet-300-100" in ax.get_title()


def test_sensitivity_curves_draw_pruning_sensitivity(lenet300, split):
    curves = pruning.sensitivity(lenet300, split, [0.0, 0.9], layers=["fc1.weight", "fc3.weight"])
    fig = pruning_views.sensitivity_curves(curves, title="T")
    ax = fig.axes[0]
    assert _legend(ax) == ["fc1.weight", "fc3.weight"] and ax.get_title() == "T"
    assert list(ax.lines[0].get_xdata()) == [0.0, 90.0]
    assert list(ax.lines[1].get_ydata()) == [a for _, a in curves["fc3.weight"]]


def test_prediction_grid_marks_changed_predictions_red():
    images = np.zeros((2, 28, 28))
    fig = pruning_views.prediction_grid(images, np.array([1, 2]), {"dense": np.array([1, 2]),
                                                                   "pruned": np.array([1, 7])}, title="T")
    a, b = fig.axes
    assert a.get_xlabel() == "label 1\ndense: 1\npruned: 1" and a.xaxis.label.get_color() == "black"
    assert b.xaxis.label.get_color() == "#C00000" and fig._suptitle.get_text() == "T"


def test_sparsity_state_matches_pruning(lenet300, split):
    state = pruning_views.sparsity_state(lenet300, 0.9, split, "fc2.weight")
    pruned = pruning.pruned_copy(lenet300, sparsity=0.9, scope="global")
    assert state["accuracy"] == evaluate(pruned, split)
    assert state["nonzero_params"] == pruning.nonzero_parameters(pruned)
    w = pruning.prunable_parameters(pruned)["fc2.weight"].detach().numpy().ravel()
    assert np.array_equal(state["weights"], w) and state["layer_nonzeros"] == np.count_nonzero(w)
    with pytest.raises(ValueError, match="layer must be one of"):
        pruning_views.sparsity_state(lenet300, 0.9, split, "fc9.weight")


def test_sparsity_figure_draws_the_state(lenet300, split):
    state = pruning_views.sparsity_state(lenet300, 0.8, split)
    curve = {"sparsity": [0.5, 0.9], "prune_only": [97.0, 60.0], "iterative": [98.0, 97.5]}
    fig = pruning_views.sparsity_figure(state, curve)
    ax_h, ax_a = fig.axes
    assert sum(p.get_height() for p in ax_h.patches) == state["layer_nonzeros"]
    assert f"{state['layer_nonzeros']:,} of {state['weights'].size:,}" in ax_h.get_title()
    assert list(ax_a.lines[2].get_xdata()) == [80.0] and list(ax_a.lines[2].get_ydata()) == [state["accuracy"]]
    assert _legend(ax_a) == ["pruning only", "iterative + retraining", "this setting"]
    alone = pruning_views.sparsity_figure(state)                               # without the curves
    assert len(alone.axes[1].lines) == 1


def test_sparsity_widget_redraws(lenet300, split):
    box = pruning_views.sparsity_widget(lenet300, split, sparsity=0.5)
    (slider, menu), image = box.children[0].children, box.children[1]
    first = image.value
    assert first[:4] == b"\x89PNG" and menu.value == "fc1.weight"
    slider.value = 0.95
    assert image.value != first


# ------------------------------------------------------------------ chapter 3
def test_sharing_state_matches_sharing(lenet300, split):
    state = sharing_views.sharing_state(lenet300, 4, 2, split, "fc2.weight")
    shared = sharing.share_weights(lenet300, {n: 2 for n in pruning.prunable_parameters(lenet300)})
    assert state["accuracy"] == evaluate(sharing.quantized_model(shared), split)
    assert state["n_bits"] == 2 and (state["n_bits_conv"], state["n_bits_fc"]) == (4, 2)
    assert len(np.unique(state["weights"])) <= 4 and set(np.unique(state["weights"])) <= set(state["codebook"])
    with pytest.raises(ValueError, match="layer must be one of"):
        sharing_views.sharing_state(lenet300, 4, 2, split, "conv9.weight")


def test_sharing_figure_marks_the_codebook(lenet300, split):
    state = sharing_views.sharing_state(lenet300, 4, 3, split, "fc3.weight")
    fig = sharing_views.sharing_figure(state)
    before, after = fig.axes
    assert len(after.lines) == len(state["codebook"]) == 8 and len(before.lines) == 0
    assert after.get_title().startswith("shared, 3 bits")
    assert fig._suptitle.get_text() == (f"fc3.weight: conv 4 bits, fc 3 bits → test accuracy "
                                        f"{state['accuracy']:.1f} %")


def test_sharing_widget_redraws(lenet300, split):
    box = sharing_views.sharing_widget(lenet300, split, n_bits_conv=4, n_bits_fc=2, layer="fc3.weight")
    (conv, fc, menu), image = box.children[0].children, box.children[1]
    first = image.value
    assert first[:4] == b"\x89PNG" and (conv.value, fc.value, menu.value) == (4, 2, "fc3.weight")
    fc.value = 1
    assert image.value != first
