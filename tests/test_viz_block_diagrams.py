"""The block diagrams of chapters 9 (the TPU) and 10 (one EIE PE): drawn from effdl's hardware data,
checked on the boxes and labels they draw."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from effdl.hardware import eie, specs  # noqa: E402
from effdl.viz import eie as eie_views  # noqa: E402
from effdl.viz import roofline as roofline_views  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _boxes(ax):
    return [p for p in ax.patches if isinstance(p, FancyBboxPatch)]


def _text(ax) -> str:
    return "\n".join(t.get_text() for t in ax.texts)


def test_tpu_block_diagram_labels_come_from_specs():
    fig = roofline_views.tpu_block_diagram()
    ax = fig.axes[0]
    tpu, blocks = specs.get_chip("TPU"), specs.TPU_V1_BLOCKS
    assert len(_boxes(ax)) == 8              # 2 off chip + FIFO, buffer, matrix unit, accumulators, 2 units
    text = _text(ax)
    for expected in ("weight FIFO", "unified buffer", "matrix multiply unit", "accumu-", "activation",
                     f"{tpu.macs:,} 8-bit MACs", f"{blocks['unified_buffer_mib']} MiB",
                     f"{blocks['accumulators_mib']} MiB", tpu.memory, f"{tpu.peak_tops():g} TOPS"):
        assert expected in text, expected
    assert blocks["unified_buffer_mib"] + blocks["accumulators_mib"] == tpu.on_chip_mib
    assert len(ax.texts) > 8 and "TPU" in ax.get_title()


def test_tpu_block_diagram_bad_input():
    with pytest.raises(TypeError, match="title"):
        roofline_views.tpu_block_diagram(title=3)


def test_pe_block_diagram_five_stages_from_the_config():
    fig = eie_views.pe_block_diagram()
    ax = fig.axes[0]
    assert len(_boxes(ax)) == 10             # a name box and a detail box per stage
    text = _text(ax)
    for i in range(1, 6):
        assert f"stage {i}" in text
    for expected in ("activation\nqueue", "pointer\nread", "sparse matrix\naccess", "arithmetic\nunit",
                     "activation\nread / write", "8 entries", "64-bit SRAM", "16 entries"):
        assert expected in text, expected
    other = eie_views.pe_block_diagram(eie.EIEConfig(queue_depth=4, n_pes=16, index_bits=3))
    other_text = _text(other.axes[0])
    assert "4 entries" in other_text and "3-bit" in other_text and "16 PEs" in other_text


def test_pe_block_diagram_bad_input():
    with pytest.raises(TypeError, match="config"):
        eie_views.pe_block_diagram("paper")
