"""Pictures of EIE for chapter 10: the storage format, the dataflow animation, the sparsity widget
and the benchmark curves.

Everything here *reads* what :mod:`effdl.hardware.eie` computed — the
encoded :class:`~effdl.hardware.eie.EIELayer`, the step simulator's trace and
schedule, the energy and benchmark rows — and never re-implements the model
(Han et al., "EIE: Efficient Inference Engine on Compressed Deep Neural
Network", ISCA 2016). The animation needs nothing but the step simulator's
result, which carries its workload (layer, activations, bias). The widget
binds density, PE and queue sliders to the pure :func:`density_state`;
:func:`density_figure` draws that state and is also the widget's static
rendering, so the book reads well without a kernel.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.colors as mc
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.patches import FancyBboxPatch, Rectangle

from ..hardware import eie
from .style import COLORS, WIDTH, figure_png, readable
from ..validation import (Bool, Dict, Fraction, Instance, Interval, PositiveInt, Records, Seed, Text, validate_params)

# One colour per PE (Okabe-Ito, as in style.COLORS), cycled past eight.
PE_COLORS = ["#009E73", "#CC79A7", "#0072B2", "#E69F00", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
STATE_COLORS = {"busy": COLORS["compute"], "stall": COLORS["memory"], "idle": "#BBBBBB"}
QUEUE_DEPTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
PE_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _pe_color(p: int) -> str:
    return PE_COLORS[p % len(PE_COLORS)]


def _tint(color: str, amount: float = 0.78):
    """``color`` mixed with white (``amount`` of white)."""
    rgb = np.array(mc.to_rgb(color))
    return tuple(rgb + (1 - rgb) * amount)


# ----------------------------------------------------------------- storage
def _matrix(ax, layer: eie.EIELayer, x0: float = 0.0, y0: float = 0.0):
    """The decoded weight matrix, rows tinted by their PE, non-zeros labelled w_i,j."""
    dense = layer.to_dense()
    rows, cols = layer.shape
    for i in range(rows):
        color = _pe_color(i % layer.n_pes)
        ax.text(x0 - 0.15, y0 + i + 0.5, f"PE{i % layer.n_pes}", ha="right", va="center", fontsize=8, color=color)
        for j in range(cols):
            nz = dense[i, j] != 0
            ax.add_patch(Rectangle((x0 + j, y0 + i), 1, 1, fc=_tint(color, 0.55 if nz else 0.88), ec="white"))
            ax.text(x0 + j + 0.5, y0 + i + 0.5, f"w{i},{j}" if nz else "0", ha="center", va="center",
                    fontsize=8, color="black" if nz else "#999999")


@validate_params(layer=Instance(eie.EIELayer, 'an effdl.hardware.eie.EIELayer'), pe=Interval(int, 0, None))
def storage_figure(layer: eie.EIELayer, pe: int = 0):
    """The matrix interleaved over the PEs and PE ``pe``'s three arrays (small layers).

    Left: the decoded weights, rows coloured by their PE (row ``i`` → PE
    ``i mod N``). Right: PE ``pe``'s virtual weights (with the weight each
    stands for), relative row indexes and column pointers.

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    pe = int(pe)
    rows, cols = layer.shape
    fig, ax = plt.subplots(figsize=(WIDTH, max(2.6, 0.34 * rows + 1.2)), constrained_layout=True)
    _matrix(ax, layer)
    local = layer.pe_rows(pe)
    vw, rel, ptr = layer.virtual_weight[pe], layer.relative_index[pe], layer.column_pointer[pe]
    names = [f"w{r},{c}" if v else "filler" for r, c, v in zip(layer.entry_rows(pe), layer.entry_columns(pe), vw)]
    x0, color = cols + 2.2, _pe_color(pe)
    table = [("virtual weight", [str(v) for v in vw]), ("(stands for)", names),
             ("relative index", [str(r) for r in rel]), ("column pointer", [str(p) for p in ptr])]
    for k, (label, cells) in enumerate(table):
        y = 0.6 + 1.4 * k
        ax.text(x0, y, label, ha="left", va="center", fontsize=9, color=color, weight="bold")
        for m, text in enumerate(cells):
            ax.add_patch(Rectangle((x0 + m * 1.05, y + 0.25), 1.0, 0.8, fc=_tint(color, 0.8), ec=color))
            ax.text(x0 + m * 1.05 + 0.5, y + 0.65, text, ha="center", va="center", fontsize=7)
    width = max(len(vw), len(ptr)) * 1.05
    ax.set_xlim(-1.4, x0 + max(width, 5) + 0.2)
    ax.set_ylim(max(rows, 1.4 * len(table) + 0.5) + 0.2, -0.3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{rows}×{cols} weights over {layer.n_pes} PEs; PE{pe} stores rows "
                 f"{', '.join(map(str, local[:6]))}{'…' if local.size > 6 else ''} as interleaved CSC")
    return fig


# --------------------------------------------------------------- animation
def _queue_columns(result: eie.Result, columns: list[int], t: int) -> list[list[int]]:
    """Columns waiting in each PE's queue at the end of cycle ``t``, read from the schedule."""
    b, s = result.broadcast_cycle, result.start_cycle                    # (K,), (K, N)
    return [[columns[k] for k in range(b.size) if b[k] <= t < s[k, p]] for p in range(result.config.n_pes)]


@validate_params(result=Instance(eie.Result, 'an effdl.hardware.eie.Result'), dpi=Interval(int, 10, 600), interval=PositiveInt())
def dataflow_animation(result: eie.Result, *, dpi: int = 70, interval: int = 1400) -> FuncAnimation:
    """The step simulator's trace as an animation: one frame per cycle, then ReLU.

    Each frame shows the activation the LNZD broadcasts (outlined above its
    column), the weight each PE multiplies that cycle (boxed in the PE's
    colour), the partial sums ``b`` as they accumulate, and each PE's state
    and queue. The last frame applies ReLU. ``result`` must come from
    ``simulate(..., method="step")``; the layer, the activations and the bias
    the partial sums start from are those it carries.

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    if result.trace is None:
        raise ValueError("result must come from simulate(..., method='step'); got a result without a trace.")
    layer, a = result.layer, result.activations
    rows, cols = layer.shape
    n = layer.n_pes
    columns = [c.broadcast for c in result.trace if c.broadcast is not None]
    psum = result.bias.copy()
    sums = [psum.copy()]                                                # after each cycle, from the trace
    for cycle in result.trace:
        for pe in cycle.pes:
            if pe.state in ("mac", "filler"):
                psum[pe.row] = pe.psum
        sums.append(psum.copy())
    xs = cols + 3.0                                                     # where the PE column starts
    extent = (xs + 7.7, max(rows, 0.9 * n + 0.5) + 1.7)                  # data units drawn (x, y)
    fig, ax = plt.subplots(figsize=(WIDTH, WIDTH * extent[1] / extent[0] + 0.4), dpi=dpi)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.01)
    frames = len(result.trace) + 1

    def draw(f: int):
        ax.clear()
        relu = f == frames - 1
        cycle = None if relu else result.trace[f]
        _matrix(ax, layer, 0, 0)
        for j in range(cols):                                           # the input vector above the matrix
            live = a[j] != 0
            hot = cycle is not None and cycle.broadcast == j
            ax.add_patch(Rectangle((j, -1.4), 1, 0.9, fc="#FFF3C4" if live else "white",
                                   ec="black" if hot else "#BBBBBB", lw=3 if hot else 1))
            ax.text(j + 0.5, -0.95, f"a{j}" if live else "0", ha="center", va="center", fontsize=9)
        ax.text(-0.15, -0.95, "a", ha="right", va="center", fontsize=10, weight="bold")
        if cycle is not None:
            for p, pe in enumerate(cycle.pes):                          # the weight each PE uses now
                if pe.state in ("mac", "filler"):
                    ax.add_patch(Rectangle((pe.column + 0.04, pe.row + 0.04), 0.92, 0.92, fill=False,
                                           ec=_pe_color(p), lw=3))
        values = sums[min(f + 1, len(sums) - 1)]
        shown = np.maximum(values, 0) if relu else values
        xb = cols + 0.8
        ax.text(xb + 0.8, -0.95, "ReLU(b)" if relu else "b", ha="center", va="center", fontsize=10, weight="bold")
        for i in range(rows):
            changed = cycle is not None and any(pe.row == i and pe.state == "mac" for pe in cycle.pes)
            clipped = relu and values[i] < 0
            ax.add_patch(Rectangle((xb, i), 1.6, 1, fc=_tint(_pe_color(i % n), 0.8), ec="black" if changed else "white",
                                   lw=2 if changed else 1))
            ax.text(xb + 0.8, i + 0.5, f"{shown[i]:.2f}" + (" ✗" if clipped else ""), ha="center", va="center",
                    fontsize=8, color="#D55E00" if clipped else "black")
        ax.text(xs, -0.95, "PE: this cycle | queue", ha="left", va="center", fontsize=9, weight="bold")
        queues = _queue_columns(result, columns, f) if cycle is not None else [[] for _ in range(n)]
        for p in range(n):
            if relu:
                text = f"PE{p}: ReLU on rows {', '.join(map(str, layer.pe_rows(p)))}"
            else:
                pe = cycle.pes[p]
                text = {"mac": f"PE{p}: w{pe.row},{pe.column} × a{pe.column}",
                        "filler": f"PE{p}: filler zero (a cycle)",
                        "pointer": f"PE{p}: column {pe.column} is empty here",
                        "idle": f"PE{p}: idle", "stall": f"PE{p}: stalled"}[pe.state]
                text += "  | " + (" ".join(f"a{c}" for c in queues[p]) or "–")
            ax.text(xs, 0.5 + p * 0.9, text, ha="left", va="center", fontsize=8, color=_pe_color(p))
        if relu:
            title = f"after {result.matvec_cycles} cycles: ReLU in {result.relu_cycles} cycles, b = max(0, b)"
        elif cycle.broadcast is not None:
            title = f"cycle {cycle.t}: the LNZD broadcasts a{cycle.broadcast} = {cycle.value:g} to every PE's queue"
        elif cycle.blocked:
            title = f"cycle {cycle.t}: broadcast blocked, a queue is full"
        else:
            title = f"cycle {cycle.t}: nothing left to broadcast; the PEs drain their queues"
        ax.set_title(title, fontsize=10)
        ax.set_xlim(-1.2, xs + 6.5)
        ax.set_ylim(max(rows, 0.9 * n + 0.5) + 0.1, -1.6)
        ax.set_aspect("equal")
        ax.axis("off")

    anim = FuncAnimation(fig, draw, frames=frames, interval=interval, repeat=True)
    plt.close(fig)
    return anim


# ------------------------------------------------------------------ widget
@validate_params(weight_density=Fraction(closed='right'), act_density=Fraction(closed='right'), n_pes=PositiveInt(), queue_depth=PositiveInt(), rows=PositiveInt(), cols=PositiveInt(), seed=Seed())
def density_state(weight_density: float = 0.09, act_density: float = 0.35, n_pes: int = 64,
                  queue_depth: int = 8, *, rows: int = 1024, cols: int = 1024, seed: int = 0) -> dict:
    """What the EIE density widget shows: a random ``rows × cols`` layer at the given densities,
    simulated on ``n_pes`` PEs with queues of ``queue_depth``: cycles, load balance, energy.

    Returns a dict with the inputs, ``cycles``, ``latency_us``, ``load_balance``,
    ``ideal_cycles``, per-PE ``busy``/``stall``/``idle`` arrays, ``energy_uj``
    (EIE, with ``energy_breakdown_uj``) and ``dense_energy_uj`` (every fp32
    weight from DRAM), and ``macs`` (useful multiply-accumulates).

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    config = eie.EIEConfig(n_pes=n_pes, queue_depth=queue_depth)
    layer = eie.random_layer(rows, cols, weight_density, config, seed=seed)
    a = eie.random_activations(cols, act_density, seed=seed + 1)
    result = eie.simulate(config, layer, a)
    e = eie.energy(result)
    return {"weight_density": float(weight_density), "act_density": float(act_density), "n_pes": n_pes,
            "queue_depth": queue_depth, "rows": rows, "cols": cols, "cycles": result.cycles,
            "latency_us": result.latency_us, "load_balance": result.load_balance,
            "ideal_cycles": result.ideal_cycles, "busy": result.busy, "stall": result.stall, "idle": result.idle,
            "macs": result.actions["macs"], "energy_uj": e["total_uj"], "energy_breakdown_uj": e["breakdown_uj"],
            "dense_energy_uj": eie.dense_energy(rows, cols)["total_uj"]}


_ENERGY_GROUPS = {"arithmetic": ("macs", "filler_macs"),
                  "SRAM (weights, pointers)": ("weight_sram_reads", "pointer_reads"),
                  "register files": ("activations_scanned", "queue_pushes", "queue_pops", "codebook_lookups",
                                     "accumulator_accesses", "output_writes")}


@validate_params(state=Dict())
def density_figure(state: dict):
    """A :func:`density_state`: each PE's busy, stalled and idle cycles (left) and the energy
    against a dense layer's (right). Also the widget's static rendering.

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    s = state
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.4), constrained_layout=True,
                                      width_ratios=[1.9, 1])
    x = np.arange(s["n_pes"])
    bottom = np.zeros(s["n_pes"])
    for key in ("busy", "stall", "idle"):
        left.bar(x, s[key], bottom=bottom, width=1.0 if s["n_pes"] > 32 else 0.8, color=STATE_COLORS[key], label=key)
        bottom += s[key]
    left.set_xlabel("PE")
    left.set_ylabel("cycles (matrix × vector)")
    left.legend(fontsize=8, loc="lower right")
    left.set_title(f"{s['rows']}×{s['cols']}, weights {s['weight_density']:.0%}, inputs {s['act_density']:.0%}: "
                   f"{s['cycles']:,} cycles = {s['latency_us']:.2f} µs,\nload balance {s['load_balance']:.1%} "
                   f"({s['n_pes']} PEs, queue depth {s['queue_depth']})", fontsize=9)
    bars = {g: sum(s["energy_breakdown_uj"][k] for k in keys) for g, keys in _ENERGY_GROUPS.items()}
    bars["EIE total"] = s["energy_uj"]
    bars["dense: fp32 MACs,\nweights from DRAM"] = s["dense_energy_uj"]
    colors = [COLORS["compute"], COLORS["memory"], COLORS["exponent"], "black", COLORS["other"]]
    y = np.arange(len(bars))[::-1]
    right.barh(y, list(bars.values()), color=colors)
    right.set_yticks(y, list(bars), fontsize=7)
    right.set_xscale("log")
    right.set_xlim(min(bars.values()) / 3, s["dense_energy_uj"] * 3)
    right.set_xlabel("µJ per inference (log)")
    right.set_title(f"EIE {readable(s['energy_uj'])} µJ, dense {readable(s['dense_energy_uj'])} µJ\n"
                    f"({s['dense_energy_uj'] / s['energy_uj']:,.0f}× less)", fontsize=9)
    return fig


@validate_params(weight_density=Fraction(closed='right'), act_density=Fraction(closed='right'), n_pes=PositiveInt(), queue_depth=PositiveInt(), rows=PositiveInt(), cols=PositiveInt(), seed=Seed())
def density_widget(weight_density: float = 0.09, act_density: float = 0.35, n_pes: int = 64,
                   queue_depth: int = 8, *, rows: int = 1024, cols: int = 1024, seed: int = 0):
    """Sliders for the weight and activation densities, the PEs and the queue depth.

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    density_state(weight_density, act_density, n_pes, queue_depth, rows=rows, cols=cols, seed=seed)
    wd = widgets.FloatSlider(value=weight_density, min=0.01, max=1.0, step=0.01, description="weights",
                             readout_format=".0%", continuous_update=False)
    ad = widgets.FloatSlider(value=act_density, min=0.01, max=1.0, step=0.01, description="inputs",
                             readout_format=".0%", continuous_update=False)
    pes = widgets.SelectionSlider(options=list(PE_COUNTS), value=n_pes, description="PEs", continuous_update=False)
    depth = widgets.SelectionSlider(options=list(QUEUE_DEPTHS), value=queue_depth, description="queue",
                                    continuous_update=False)
    image = widgets.Image(format="png")

    def redraw(_=None):
        image.value = figure_png(density_figure(density_state(wd.value, ad.value, pes.value, depth.value,
                                                                rows=rows, cols=cols, seed=seed)))

    for control in (wd, ad, pes, depth):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([wd, ad]), widgets.HBox([pes, depth]), image])


# ------------------------------------------------------- benchmark figures
@validate_params(rows=Records(), title=Text())
def speedup_figure(rows: list[dict], *, title: str):
    """Speedup of the simulated EIE over the paper's four baselines, per layer (log scale).

    ``rows``: :func:`effdl.hardware.eie.benchmark_row` dicts.

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4), constrained_layout=True)
    names = [r["name"] for r in rows] + ["geo. mean"]
    geo = eie.geomean_speedups(rows)
    labels = {"cpu_dense": "CPU dense", "gpu_dense": "GPU dense", "cpu_sparse": "CPU sparse",
              "gpu_sparse": "GPU sparse"}
    palette = [COLORS["compute"], COLORS["memory"], COLORS["exponent"], COLORS["integer"]]
    width = 0.8 / len(labels)
    for i, (key, label) in enumerate(labels.items()):
        values = [r[f"speedup_{key}"] for r in rows] + [geo[key]]
        xs = np.arange(len(names)) + (i - 1.5) * width
        ax.bar(xs, values, width, color=palette[i], label=label)
    ax.axhline(1, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(names)), names, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("speedup (paper's time ÷ simulated, log)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncol=4, loc="upper left")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


@validate_params(curves=Dict(), xlabel=Text(), ylabel=Text(), title=Text(), ideal=Bool(), log_y=Bool())
def sweep_figure(curves: dict[str, list[tuple[float, float]]], *, xlabel: str, ylabel: str, title: str,
                 ideal: bool = False, log_y: bool = False):
    """One line per layer of a sweep (x on a log-2 axis), e.g. load balance vs queue depth.

    ``curves``: ``{layer: [(x, y), …]}``; ``ideal`` adds the line y = x (linear speedup).

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), constrained_layout=True)
    styles = ["-", "--", ":"]
    for i, (name, points) in enumerate(curves.items()):
        xs, ys = zip(*points)
        ax.plot(xs, ys, styles[i // 8 % 3], marker="o", ms=3, color=PE_COLORS[i % 8], label=name)
    if ideal:
        xs = sorted({x for points in curves.values() for x, _ in points})
        ax.plot(xs, xs, color="black", lw=0.8, label="ideal (linear)")
    ax.minorticks_off()
    xs = sorted({x for points in curves.values() for x, _ in points})
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    if log_y:
        ax.set_yscale("log", base=2)
        top = max(y for points in curves.values() for _, y in points)
        ticks = [2 ** k for k in range(int(np.log2(top)) + 2)]
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3)
    return fig


def _stage_box(ax, x: float, y: float, w: float, h: float, text: str, color: str):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="black", lw=1.0))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=7)


@validate_params(config=eie.CONFIG)
def pe_block_diagram(config: eie.EIEConfig | None = None):
    """One EIE processing element as its five pipeline stages, labelled from ``config``.

    Activation queue → pointer read → sparse matrix access → arithmetic unit
    → activation read/write, with the memory each stage reads (after Han et
    al., ISCA 2016, §IV and Fig. 4). The queue depth, the widths of a weight
    index, of a relative index and of an SRAM read come from ``config``
    (default: the paper's design, :class:`effdl.hardware.eie.EIEConfig`).

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    config = config or eie.EIEConfig()
    memory, logic = _tint(COLORS["memory"], 0.7), _tint(COLORS["compute"], 0.7)
    stages = [
        ("activation\nqueue", f"{config.queue_depth} entries of\n(column j,\nvalue $a_j$)", memory),
        ("pointer\nread", f"$p_j$ and $p_{{j+1}}$,\n{eie.POINTER_BITS}-bit, from\neven and odd\nbanks at once",
         memory),
        ("sparse matrix\naccess", f"{config.sram_width_bits}-bit SRAM\nreads, "
         f"{config.entries_per_read} entries\neach: {config.weight_bits}-bit\nweight + "
         f"{config.index_bits}-bit\nrow gap", memory),
        ("arithmetic\nunit", f"codebook of\n{2 ** config.weight_bits} entries\n→ 16-bit value $v$;\n"
         "$b_x \\leftarrow b_x + v \\, a_j$;\nrow $x$ += gap + 1", logic),
        ("activation\nread / write", "source and\ndestination\nregister files;\nReLU at the end", memory),
    ]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), constrained_layout=True)
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.35, 4)
    ax.axis("off")
    width, gap = 1.7, 0.3
    for i, (name, detail, color) in enumerate(stages):
        x = 0.15 + i * (width + gap)
        _stage_box(ax, x, 2.45, width, 0.95, name, color)
        _stage_box(ax, x, 0.3, width, 1.9, detail, "#F4F4F4")
        ax.text(x + width / 2, 3.6, f"stage {i + 1}", ha="center", va="center", fontsize=8,
                color="#444444")
        if i:
            ax.annotate("", xy=(x, 2.92), xytext=(x - gap, 2.92),
                        arrowprops=dict(arrowstyle="-|>", lw=1.3, color="black"))
    ax.text(5.0, -0.05, f"input: the leading-non-zero detector broadcasts one (j, $a_j$) to all "
            f"{config.n_pes} PEs;\nat {config.clock_mhz:g} MHz each stage works on a different entry "
            "every cycle", fontsize=7.5, ha="center", va="center", color="#444444")
    ax.set_title("One EIE PE in five pipeline stages (after Han et al., ISCA 2016, Fig. 4);\n"
                 "orange stages read or write memory, blue computes", fontsize=10)
    return fig
