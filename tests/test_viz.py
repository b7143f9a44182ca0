"""Figures, tables and widgets: the pure functions behind them, called directly."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from effdl import numerics  # noqa: E402
from effdl.hardware import energy  # noqa: E402
from effdl.viz import plots, tables, widgets  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_bit_width_state_matches_numerics():
    state = widgets.bit_width_state(0.1, "fp16")
    assert state["bits"] == numerics.bit_fields(0.1, "fp16")
    assert state["format"]["max"] == 65504.0
    fixed = widgets.bit_width_state(2.71828, "fixed point", int_bits=3, frac_bits=4)
    assert fixed["format"]["name"] == "q3.4" and fixed["bits"].stored == 2.6875


@pytest.mark.parametrize("args, exc", [((0.1, "fp64"), ValueError), ((0.1, 16), TypeError),
                                       ((0.1, "fixed point", 0, 0), ValueError),
                                       (("a", "fp16"), TypeError)])
def test_bit_width_state_bad_input(args, exc):
    with pytest.raises(exc):
        widgets.bit_width_state(*args)


def test_bit_width_widget_redraws_and_reports_errors():
    pytest.importorskip("ipywidgets")
    box = widgets.bit_width_widget(0.1, "fp16")
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


def test_figures_have_titles_and_labels():
    table = energy.energy_table()
    figs = [plots.energy_per_operation(table), plots.energy_area_vs_bits(table),
            plots.bit_layouts(numerics.format_table()),
            plots.model_growth([{"name": "A", "year": 2012, "params": 61e6}, {"name": "B", "year": 2015, "params": 138e6}]),
            plots.inference_energy({"m": {"dram": energy.inference_energy(10, 10), "sram": energy.inference_energy(10, 10, weight_memory="sram")}}),
            plots.metric_vs_bits([{"family": "f", "bits": 2, "v": 1.0}, {"family": "f", "bits": 4, "v": 0.5}], "v",
                                 ylabel="v", title="t", log=True, reference=("r", 0.7))]
    for fig in figs:
        titled = fig._suptitle is not None or any(ax.get_title() for ax in fig.axes)
        assert titled
    for fig in figs[:2] + figs[3:]:
        assert all(ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes)


def test_readable_numbers():
    assert plots.readable(42350.04) == "42,350"
    assert plots.readable(2.5581) == "2.56"
    assert plots.readable(3.4028234663852886e38) == "3.403e+38"


def test_markdown_table():
    md = tables.markdown_table([{"a": 1234, "b": None}], {"a": "A", "b": "B"}, {"a": ",d"})
    assert md.data.splitlines() == ["| A | B |", "|---|---|", "| 1,234 | – |"]
