"""effdl.viz: the shared style, the static figures of chapters 0–8, and three checks on the package
itself (every public view is tested by name, no view is named like an algorithm, imports at the top).

Figures are checked on what they draw — labels, titles, scales, the number of lines and bars, the
plotted values, legend entries — through matplotlib's artists. The widgets, the hardware and the
training views are tested in tests/test_viz_widgets.py, test_viz_hardware.py, test_viz_training.py
and test_viz_quantization.py.
"""
import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402

import effdl  # noqa: E402
from effdl import numerics, viz  # noqa: E402
from effdl.hardware import energy  # noqa: E402
from effdl.viz import coding, lowrank, overview, sharing, style, ternary  # noqa: E402

TESTS = Path(__file__).resolve().parent
VIZ = Path(viz.__file__).resolve().parent


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _public_views():
    """(module name, function name) of every public function defined in effdl.viz."""
    out = []
    for name in viz.__all__:
        mod = getattr(viz, name)
        out += [(name, n) for n, o in vars(mod).items()
                if not n.startswith("_") and inspect.isfunction(o) and o.__module__ == mod.__name__]
    return out


def _texts(fig) -> str:
    parts = [t.get_text() for ax in fig.axes for t in ax.texts + [ax.title, ax.xaxis.label, ax.yaxis.label]]
    parts += [t.get_text() for t in fig.texts] + [fig._suptitle.get_text() if fig._suptitle else ""]
    return "\n".join(parts)


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


# ------------------------------------------------------------------ the package
def test_every_module_is_listed_and_no_old_module_is_left():
    on_disk = {m.name for m in pkgutil.iter_modules([str(VIZ)])}
    assert on_disk == set(viz.__all__)


def test_every_public_view_has_a_test_naming_it():
    source = "\n".join(p.read_text() for p in sorted(TESTS.glob("test_viz*.py")))
    untested = [f"{m}.{n}" for m, n in _public_views() if not re.search(rf"\b{n}\b", source)]
    assert not untested, f"public views no test_viz*.py names: {untested}"


def test_no_view_is_named_like_an_algorithm():
    algorithms = {}
    layers = ("effdl.viz", "effdl.cli", "effdl.book", "effdl.assign", "effdl.exercises", "effdl.__main__",
              "effdl.precompute", "effdl.zoo", "effdl.reproduce", "effdl.summary")
    for info in pkgutil.walk_packages(effdl.__path__, "effdl."):
        if info.name.startswith(layers) or info.name.endswith("_old"):
            continue
        mod = importlib.import_module(info.name)
        for n, o in vars(mod).items():
            if not n.startswith("_") and inspect.isfunction(o) and o.__module__ == mod.__name__:
                algorithms.setdefault(n, info.name)
    assert {"sensitivity", "inference_energy", "bit_fields"} <= set(algorithms)   # the scan sees them
    clashes = [(f"viz.{m}.{n}", algorithms[n]) for m, n in _public_views() if n in algorithms]
    assert not clashes
    names = [n for _, n in _public_views()]
    assert len(names) == len(set(names)), "two views share a name"


def test_imports_sit_at_the_top_of_each_module():
    for path in sorted(VIZ.glob("*.py")):
        tree = ast.parse(path.read_text())
        top = set(tree.body)
        nested = [n.lineno for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and n not in top]
        assert not nested, f"{path.name}: imports inside functions at lines {nested}"


# ------------------------------------------------------------------ style
def test_readable_numbers():
    assert style.readable(42350.04) == "42,350"
    assert style.readable(2.5581) == "2.56"
    assert style.readable(3.4028234663852886e38) == "3.403e+38"


def test_markdown_table():
    md = style.markdown_table([{"a": 1234, "b": None, "c": 0.5}], {"a": "A", "b": "B", "c": "C"},
                              {"a": ",d", "c": lambda v: f"{v:.0%}"})
    assert md.data.splitlines() == ["| A | B | C |", "|---|---|---|", "| 1,234 | – | 50% |"]


def test_new_figure_closed_and_figure_png():
    fig, axes = style.new_figure(2.0, ncols=3)
    assert len(axes) == 3 and tuple(fig.get_size_inches()) == (style.WIDTH, 2.0)
    assert style.closed(fig) is fig and not plt.fignum_exists(fig.number)
    fig, _ = style.new_figure()
    png = style.figure_png(fig, dpi=20)
    assert png[:4] == b"\x89PNG" and not plt.fignum_exists(fig.number)


def test_jshtml_is_offline_and_keeps_every_frame():
    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    line, = ax.plot([0, 1], [0, 0])
    anim = FuncAnimation(fig, lambda k: line.set_ydata([k, k]), frames=3)
    html = style.jshtml(anim).data
    assert html.count("data:image/png;base64") == 3
    assert "://" not in html and "font-awesome" not in html and "▶" in html


def test_grouped_bars():
    fig = style.grouped_bars({"conv1": {"dense": 2.0, "sparse": 1.0}, "fc1": {"dense": 4.0}}, ylabel="ms",
                             title="t", log=True)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights[:2] == [2.0, 4.0] and heights[2] == 1.0 and np.isnan(heights[3])   # missing bar: NaN
    assert _legend(ax) == ["dense", "sparse"] and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv1", "fc1"] and ax.get_ylabel() == "ms"


def test_metric_vs_bits():
    rows = [{"family": "f", "bits": 4, "v": 0.5}, {"family": "f", "bits": 2, "v": 1.0},
            {"family": "g", "bits": 2, "v": 2.0}]
    fig = style.metric_vs_bits(rows, "v", ylabel="v", title="t", log=True, reference=("fp32", 0.7))
    ax = fig.axes[0]
    assert [list(line.get_xdata()) for line in ax.lines[:2]] == [[2, 4], [2]]    # sorted by bits
    assert list(ax.lines[0].get_ydata()) == [1.0, 0.5] and list(ax.lines[2].get_ydata()) == [0.7, 0.7]
    assert _legend(ax) == ["f", "g", "fp32"] and ax.get_yscale() == "log" and ax.get_xlabel() == "bits per weight"


def test_weight_histograms_leave_out_zeros_and_mark_the_codebook():
    w = np.array([0.0, 0.0, -0.5, 0.25, 1.0])
    fig = style.weight_histograms([("a", w), ("b", w[2:])], markers={"b": [0.1, 0.2]}, title="T", bins=5)
    ax_a, ax_b = fig.axes
    assert sum(p.get_height() for p in ax_a.patches) == 3                     # the two zeros left out
    assert ax_a.get_title() == "a\n3 non-zero" and len(ax_a.lines) == 0 and len(ax_b.lines) == 2
    assert ax_b.lines[1].get_xdata()[0] == 0.2 and fig._suptitle.get_text() == "T"
    assert ax_a.get_xlim()[1] >= 1.0 and ax_a.get_ylabel() == "count"


def test_matrices_annotate_every_entry():
    fig = style.matrices([("m", np.array([[1.0, -0.0], [0.5, 2.0]])), ("n", np.eye(3))], title="T", fmt=".1f")
    ax_m, ax_n = fig.axes
    assert [t.get_text() for t in ax_m.texts] == ["1.0", "0.0", "0.5", "2.0"]     # no "-0.0"
    assert len(ax_n.texts) == 9 and ax_m.images[0].get_array().shape == (2, 2) and ax_n.get_title() == "n"


# ------------------------------------------------------------------ chapter 0
def test_model_growth():
    fig = overview.model_growth([{"name": "A", "year": 2012, "params": 61e6},
                                 {"name": "B", "year": 2015, "params": 138e6}])
    ax = fig.axes[0]
    assert np.allclose(ax.collections[0].get_offsets(), [[2012, 61], [2015, 138]])
    assert ax.get_yscale() == "log" and "A\n61 M · 244 MB" in _texts(fig)


def test_energy_per_operation_sorted_with_ratios():
    table = energy.energy_table()
    fig = overview.energy_per_operation(table)
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert len(widths) == len(table) and widths == sorted(widths) and ax.get_xscale() == "log"
    base = next(r["energy_pj"] for r in table if r["name"] == "int32_add")
    assert "(1.0×)" in _texts(fig) and f"{max(widths) / base:,.1f}×" in _texts(fig)


def test_energy_breakdown_stacks_compute_and_memory():
    dram, sram = energy.inference_energy(10, 10), energy.inference_energy(10, 10, weight_memory="sram")
    fig = overview.energy_breakdown({"m": {"dram": dram, "sram": sram}, "n": {"dram": dram}})
    ax = fig.axes[0]
    bars = ax.patches                                                         # compute bars, then memory
    assert [b.get_height() for b in bars] == [dram["compute_uj"], sram["compute_uj"], dram["memory_uj"],
                                              sram["memory_uj"]]
    assert bars[2].get_y() == dram["compute_uj"] and len(fig.axes) == 2
    assert _legend(ax) == ["arithmetic (MACs)", "weight fetches"] and ax.get_title() == "m"


# ------------------------------------------------------------------ chapter 1 (figures; the widget: test_viz_widgets)
def test_bit_layouts_one_row_per_format():
    rows = numerics.format_table()
    fig = viz.numbers.bit_layouts(rows)
    ax = fig.axes[0]
    fp32 = next(r for r in rows if r["name"] == "fp32")
    widths = [p.get_width() for p in ax.patches]
    assert sum(widths) == sum(r["bits"] for r in rows)                      # every bit drawn once
    assert f"fp32 ({fp32['bits']} bits)" in _texts(fig) and "mantissa 23" in _texts(fig)


def test_energy_area_vs_bits():
    fig = viz.numbers.energy_area_vs_bits(energy.energy_table())
    ax_e, ax_a = fig.axes
    assert len(ax_e.lines) == len(ax_a.lines) == 4 and ax_e.get_xscale() == "log" and ax_a.get_yscale() == "log"
    assert _legend(ax_e) == ["int add", "int mult", "float add", "float mult"]
    assert ax_e.get_ylabel() == "energy (pJ), log scale" and ax_a.get_ylabel() == "area (µm²), log scale"


# ------------------------------------------------------------------ chapter 3
def test_accuracy_vs_size():
    fig = sharing.accuracy_vs_size({"pruning": [(10.0, 97.0), (5.0, 96.0)], "sharing": [(3.0, 97.5)]},
                                   reference=98.0, title="t")
    ax = fig.axes[0]
    assert list(ax.lines[0].get_xdata()) == [5.0, 10.0] and list(ax.lines[0].get_ydata()) == [96.0, 97.0]
    assert ax.lines[2].get_ydata()[0] == 98.0 and _legend(ax) == ["pruning", "sharing", "dense fp32"]
    assert ax.get_xscale() == "log" and ax.get_xticklabels()[0].get_text().endswith("%")


# ------------------------------------------------------------------ chapter 4
def test_symbol_histograms_count_symbols_and_code_lengths():
    stream = np.array([0, 0, 0, 1, 2, 2])
    code = {0: "0", 1: "10", 2: "11"}
    fig = coding.symbol_histograms([("s", stream, code)], title="T")
    ax, twin = fig.axes
    assert [p.get_height() for p in ax.patches] == [3, 1, 2]
    assert list(twin.lines[0].get_ydata()) == [1, 2, 2] and twin.get_ylabel() == "codeword length (bits)"


def test_index_width_sweep():
    rows = [{"index_bits": b, "fixed": 4.0 + b, "huffman": 3.0 + b, "fillers": f, "expected": f}
            for b, f in [(2, 0.5), (4, 0.01), (6, 0.0)]]
    fig = coding.index_width_sweep(rows, title="T", chosen=4)
    ax, ax2 = fig.axes
    assert list(ax.lines[0].get_ydata()) == [6.0, 8.0, 10.0] and ax.lines[2].get_xdata()[0] == 4
    assert np.isnan(ax2.lines[0].get_ydata()[2]) and ax2.get_yscale() == "log"    # 0 fillers: not on a log axis
    assert _legend(ax2) == ["measured", "i.i.d. Bernoulli model"]


def test_byte_breakdown_stacks_every_part():
    layer = {"codebook": 64, "code_lengths": 32, "weight_index_huffman": 1024, "relative_index_huffman": 512,
             "bias": 40}
    b = {"layers": {"fc1.weight": layer}, "header_bytes": 10, "checksum_bytes": 4, "other_bytes": 2}
    fig = coding.byte_breakdown({"lenet": b}, title="T")
    ax = fig.axes[0]
    assert len(ax.patches) == 2 * 6
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lenet\nfc1", "lenet\nheader+CRC"]
    total = sum(layer.values()) / 1024
    assert ax.patches[10].get_y() + ax.patches[10].get_height() == pytest.approx(total)   # bias on top
    assert _legend(ax)[-1] == "header, table, checksum" and ax.get_ylabel() == "KiB in the file"


def test_stage_sizes_ratios_on_bars():
    fig = coding.stage_sizes({"m": {"dense": (4096, 98.0), "pruned": (1024, 97.9)}}, title="T")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [4.0, 1.0] and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.texts] == ["1.0×\n98.0 %", "4.0×\n97.9 %"]


def test_speedups_break_even_line():
    fig = coding.speedups({"fc1": {"mkl": 2.0, "torch": 0.5}}, title="T")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [2.0, 0.5] and ax.get_yscale() == "log"
    assert list(ax.lines[0].get_ydata()) == [1.0, 1.0] and ax.yaxis.get_major_formatter()(2, 0) == "2×"


# ------------------------------------------------------------------ chapter 6
def test_ternary_evolution():
    layer = {"wp": [0.1, 0.2], "wn": [0.1, 0.3], "neg": [0.3, 0.2], "zero": [0.4, 0.5], "pos": [0.3, 0.3]}
    fig = ternary.ternary_evolution({"step": [0, 10], "layers": {"fc1": layer, "fc2": layer}}, ["fc1", "fc2"],
                                    title="T", steps_per_epoch=5)
    top = fig.axes[0]
    assert list(top.lines[1].get_ydata()) == [-0.1, -0.3] and top.get_title() == "fc1"     # −Wn drawn negative
    assert len(fig.axes) == 4 and len(fig.axes[2].collections) == 3                      # neg / zero / pos
    assert sum(1 for ln in top.lines if ln.get_linestyle() == ":") == 2                  # epochs at 5 and 10


def test_weight_thresholds_report_the_zeroed_share():
    w = np.array([-1.0, -0.1, 0.0, 0.1, 0.5, 1.0])
    fig = ternary.weight_thresholds(w, {"TWN": 0.2}, title="T")
    ax = fig.axes[0]
    assert [ln.get_xdata()[0] for ln in ax.lines] == [-0.2, 0.2]
    assert _legend(ax) == ["TWN: ±0.2000, 50.0 % become 0"]


def test_kernel_images_one_image_per_kernel():
    k = np.random.default_rng(0).normal(size=(3, 5, 5))
    fig = ternary.kernel_images([("fp", k), ("ternary", np.sign(k))], title="T", ncols=4)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 6 and len(fig.axes) == 8
    assert np.array_equal(images[3].images[0].get_array(), np.sign(k[0]))


def test_accuracy_vs_bytes_shares_labels_of_coinciding_points():
    rows = [{"model": "m", "method": "fp32", "kbytes": 100.0, "acc": 98.0},
            {"model": "m", "method": "twn", "kbytes": 7.0, "acc": 97.0},
            {"model": "m", "method": "ttq", "kbytes": 7.01, "acc": 97.0}]
    fig = ternary.accuracy_vs_bytes(rows, title="T")
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["fp32", "twn = ttq"]
    assert list(ax.lines[0].get_xdata()) == [7.0, 7.01, 100.0] and ax.get_xscale() == "log"


# ------------------------------------------------------------------ chapter 7
def test_energy_spectra_fraction_and_cumulative():
    e = torch.tensor([4.0, 3.0, 2.0, 1.0])
    fig = lowrank.energy_spectra({"a": e}, title="T")
    ax_s, ax_c = fig.axes
    assert np.allclose(ax_s.lines[0].get_ydata(), [0.4, 0.3, 0.2, 0.1]) and ax_s.get_yscale() == "log"
    assert np.allclose(ax_c.lines[0].get_ydata(), [40, 70, 90, 100])


def test_accuracy_vs_rank():
    fig = lowrank.accuracy_vs_rank({"x": ([1, 10], [50.0, 90.0])}, dense_acc=94.1, param_ratio={1: 170, 10: 21.1},
                                   title="t")
    ax = fig.axes[0]
    assert list(ax.lines[0].get_ydata()) == [50.0, 90.0] and ax.lines[1].get_ydata()[0] == 94.1
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1\n170×", "10\n21.1×"] and ax.get_xscale() == "log"


def test_conv_decomposition_counts_macs():
    fig = lowrank.conv_decomposition(20, 50, 5, 10, out_hw=8)
    texts = _texts(fig)
    assert "1,600,000 MACs" in texts and "320,000 MACs" in texts and "32,000 MACs" in texts
    assert "50·20·5² = 25,000 weights" in texts and len(fig.axes) == 2


def test_speedup_vs_accuracy():
    rows = [{"method": "uniform", "speedup": 4.0, "acc_no_ft": 96.0, "acc_ft": 96.5},
            {"method": "uniform", "speedup": 2.0, "acc_no_ft": 97.0, "acc_ft": 97.5}]
    fig = lowrank.speedup_vs_accuracy(rows, dense_acc=97.9, title="t")
    ax = fig.axes[0]
    assert list(ax.lines[0].get_xdata()) == [2.0, 4.0] and list(ax.lines[1].get_ydata()) == [97.5, 96.5]
    assert _legend(ax) == ["uniform, no fine-tuning", "uniform, fine-tuned", "dense (97.9 %)"]
