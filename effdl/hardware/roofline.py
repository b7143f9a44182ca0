"""The roofline model: how fast a kernel can run given a chip's peak and its memory bandwidth.

Taught in chapter 9. The model is Williams, Waterman and Patterson, "Roofline:
an insightful visual performance model", CACM 2009; the workloads, chips and
latency table are Jouppi et al., "In-Datacenter Performance Analysis of a
Tensor Processing Unit", ISCA 2017 (Tables 1, 2 and 4).

Units, everywhere in this module:

- **operations**: a multiply-add counts as **2** operations, as in the TPU's
  92 TOPS (65,536 MACs × 2 × 700 MHz);
- **performance**: operations per second (ops/s); ``*_tops`` = 10¹² ops/s;
- **bandwidth**: bytes per second; ``*_gbs`` = 10⁹ bytes/s;
- **operational intensity**: operations per byte, in one of two conventions:

  ``"weight"``  operations per byte of *weights* fetched from off-chip memory —
      the TPU paper's x-axis. Activations are assumed to stay on chip (the
      TPU's 24 MiB unified buffer), so only weights cost bandwidth.
  ``"dram"``    operations per byte of *all* off-chip traffic: weights plus the
      layer's input and output activations, each moved once — the usual
      FLOP per DRAM byte.

The paper's Table 1 lists "ops per weight byte" counting one multiply-add as
one operation (for an MLP it equals the batch size: each 8-bit weight fetched
once is used once per input). This module doubles it (``TABLE1_TO_OPS``) so
that the x-axis and the y-axis count the same operation.

Attainable performance = min(peak, bandwidth × intensity); the ridge point
peak ÷ bandwidth is the intensity at which a kernel stops being memory-bound.

>>> tpu = Roofline.from_chip("TPU")
>>> round(tpu.ridge)                      # ops per weight byte
2706
>>> round(tpu.attainable(2 * 200) / 1e12, 1)   # MLP0 (Table 1: 200, at batch 200), TOPS
13.6

Longer than 600 lines because the model, the measured CPU roofline and the TPU paper's
application table are drawn on the same axes and checked together (chapter 9).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from effdl._validate import _fail
from effdl.architectures import ARCHITECTURES, Architecture, Layer, get_architecture, layer_table
from effdl.hardware import systolic
from effdl.hardware.specs import CHIP, Chip, get_chip
from effdl.validation import (Bool, Constraint, Instance, Interval, ListOf, OneOf, Options, PositiveInt, Seed,
                              check_part, validate_params)


CONVENTIONS = ("weight", "dram")
TABLE1_TO_OPS = 2        # Table 1 counts a multiply-add as 1 op; this module as 2
CONVENTION_LABEL = {
    "weight": "operations per weight byte (multiply-add = 2 ops)",
    "dram": "operations per DRAM byte: weights + activations (multiply-add = 2 ops)",
}


# --------------------------------------------------------------------------- argument constraints
class Intensity(Constraint):
    """Operational intensity in ops per byte: a number or an array of them, each finite and > 0.

    ``check`` returns a float NumPy array (0-d for a number).

    Behind chapter 09, "The roofline and the TPU".
    """

    def describe(self):
        return "a positive number or array of them (ops per byte)"

    def check(self, name, value):
        if isinstance(value, (bool, str)) or value is None:
            _fail(TypeError, name, self.describe(), value)
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            _fail(TypeError, name, self.describe(), value)
        if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            shown = value if arr.size <= 8 else f"an array of {arr.size} with min {np.nanmin(arr)!r}"
            _fail(ValueError, name, "finite and > 0 (ops per byte)", shown)
        return arr

    def invalid_values(self):
        return [("high", TypeError), (True, TypeError), (None, TypeError), (0.0, ValueError),
                (float("nan"), ValueError), ([1.0, -2.0], ValueError), ([], ValueError)]


INTENSITY = Intensity()
RATE = Interval(float, 0, None, closed="neither")         # a peak (ops/s) or a bandwidth (bytes/s)
CONVENTION = Options(CONVENTIONS)
N_BITS = Interval(int, 1, 64)
COUNT = PositiveInt()
SIZE = OneOf(PositiveInt(), ListOf(PositiveInt()))        # an int, or a pair (checked in _pair)
BATCH_SIZES = ListOf(PositiveInt())
NAME = Instance(str, "a string")


# --------------------------------------------------------------------------- the model
@validate_params(intensity=INTENSITY, peak=RATE, bandwidth=RATE)
def attainable(intensity, peak: float, bandwidth: float):
    """Attainable performance in ops/s: min(peak, bandwidth × intensity).

    Parameters
    ----------
    intensity : float or array
        Operations per byte (> 0).
    peak : float
        Peak performance in ops/s (> 0).
    bandwidth : float
        Memory bandwidth in bytes/s (> 0).

    Returns a float for a scalar ``intensity``, else an array of its shape.

    >>> attainable(10.0, peak=92e12, bandwidth=34e9) / 1e9   # GOPS, memory-bound
    340.0

    Taught in chapter 09, "The roofline and the TPU".
    """
    arr = np.asarray(intensity, dtype=float)          # (an array already, unless called from a checked caller)
    out = np.minimum(peak, bandwidth * arr)
    return float(out) if out.ndim == 0 else out


@validate_params(peak=RATE, bandwidth=RATE)
def ridge_point(peak: float, bandwidth: float) -> float:
    """The intensity (ops/byte) where the memory roof meets the compute roof: peak ÷ bandwidth.

    Behind chapter 09, "The roofline and the TPU".
    """
    return peak / bandwidth


@dataclass(frozen=True)
class Roofline:
    """A roofline: ``peak`` in ops/s, ``bandwidth`` in bytes/s, and the intensity convention
    its x-axis uses (``"weight"`` or ``"dram"``).

    Taught in chapter 09, "The roofline and the TPU".
    """

    name: str
    peak: float
    bandwidth: float
    convention: str = "weight"

    def __post_init__(self):
        check_part("Roofline", NAME, "name", self.name)
        check_part("Roofline", RATE, "peak", self.peak)
        check_part("Roofline", RATE, "bandwidth", self.bandwidth)
        check_part("Roofline", CONVENTION, "convention", self.convention)

    @classmethod
    def from_chip(cls, chip: str | Chip, precision: str | None = None, convention: str = "weight") -> Roofline:
        """The roofline of a chip from :mod:`effdl.hardware.specs` at ``precision`` (default: its own)."""
        c = get_chip(chip)
        return cls(c.name, c.peak_ops(precision), c.bandwidth, convention)

    @property
    def ridge(self) -> float:
        """Ridge point in ops/byte."""
        return self.peak / self.bandwidth

    @property
    def peak_tops(self) -> float:
        return self.peak / 1e12

    @property
    def bandwidth_gbs(self) -> float:
        return self.bandwidth / 1e9

    def attainable(self, intensity):
        """Attainable ops/s at ``intensity`` (ops/byte, in this roofline's convention)."""
        return attainable(intensity, self.peak, self.bandwidth)

    def bound(self, intensity: float) -> str:
        """``"memory"`` left of the ridge, ``"compute"`` at or right of it."""
        intensity = check_part("Roofline.bound", RATE, "intensity", intensity)
        return "memory" if intensity < self.ridge else "compute"


# --------------------------------------------------------------------------- layer work
@dataclass(frozen=True)
class Work:
    """The operations and off-chip bytes of one layer (or kernel) at one batch size.

    ``ops`` count a multiply-add as 2; ``weight_bytes`` are fetched once per
    batch; ``activation_bytes`` are the inputs read and outputs written, once
    each, for the whole batch.

    Behind chapter 09, "The roofline and the TPU".
    """

    name: str
    ops: float
    weight_bytes: float
    activation_bytes: float
    batch_size: int = 1

    @property
    def dram_bytes(self) -> float:
        return self.weight_bytes + self.activation_bytes

    def bytes(self, convention: str = "weight") -> float:
        """Bytes that count in ``convention``: weights only, or weights + activations."""
        check_part("Work.bytes", CONVENTION, "convention", convention)
        return self.weight_bytes if convention == "weight" else self.dram_bytes

    def intensity(self, convention: str = "weight") -> float:
        """Operational intensity in ops per byte, in ``convention``."""
        b = self.bytes(convention)
        if b <= 0:
            raise ValueError(f"Work.intensity: work must move some bytes to have an intensity in convention "
                             f"{convention!r}; got {self!r}.")
        return self.ops / b


@validate_params(n_in=COUNT, n_out=COUNT, batch_size=COUNT, n_bits_weight=N_BITS, n_bits_act=N_BITS, name=NAME)
def fc_work(n_in: int, n_out: int, batch_size: int = 1, *, n_bits_weight: int = 8, n_bits_act: int = 8,
            name: str = "fc") -> Work:
    """A fully connected layer ``n_in → n_out`` applied to ``batch_size`` inputs.

    ops = 2 · batch · n_in · n_out; weights n_in · n_out (biases ignored);
    activations batch · (n_in + n_out).

    >>> w = fc_work(1000, 1000, batch_size=1)
    >>> w.intensity("weight"), round(w.intensity("dram"), 3)   # int8: 2 ops per weight byte at batch 1
    (2.0, 1.996)

    Taught in chapter 09, "The roofline and the TPU".
    """
    b, wb, ab = batch_size, n_bits_weight / 8, n_bits_act / 8
    return Work(name, 2.0 * b * n_in * n_out, n_in * n_out * wb, b * (n_in + n_out) * ab, b)


def _pair(name: str, value) -> tuple[int, int]:
    """A checked size (an int, or a list of them) as (height, width)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"conv_work: {name} must be an integer or a pair of integers; got {value!r}.")
        return value[0], value[1]
    return value, value


@validate_params(in_channels=COUNT, out_channels=COUNT, kernel_size=SIZE, in_size=SIZE, batch_size=COUNT,
                 stride=COUNT, padding=Interval(int, 0, None), groups=COUNT, n_bits_weight=N_BITS, n_bits_act=N_BITS,
                 name=NAME)
def conv_work(in_channels: int, out_channels: int, kernel_size, in_size, batch_size: int = 1, *,
              stride: int = 1, padding: int = 0, groups: int = 1, n_bits_weight: int = 8, n_bits_act: int = 8,
              name: str = "conv") -> Work:
    """A 2-D convolution on ``batch_size`` images of ``in_size`` (H, W or one int for square).

    ops = 2 · batch · out_channels · OH · OW · (in_channels / groups) · kh · kw;
    weights out_channels · (in_channels / groups) · kh · kw;
    activations batch · (in_channels · H · W + out_channels · OH · OW).

    >>> round(conv_work(64, 64, 3, 56, padding=1).intensity("weight"))   # each weight used 56·56 times
    6272

    Taught in chapter 09, "The roofline and the TPU".
    """
    c_in, c_out, b, s, p, g = in_channels, out_channels, batch_size, stride, padding, groups
    kh, kw = _pair("kernel_size", kernel_size)
    h, w = _pair("in_size", in_size)
    if c_in % g or c_out % g:
        raise ValueError(f"conv_work: groups must divide in_channels ({c_in}) and out_channels ({c_out}); "
                         f"got {groups!r}.")
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"conv_work: in_size must be at least the kernel ({kh}×{kw}) after padding {p}; "
                         f"got {in_size!r}.")
    wb, ab = n_bits_weight / 8, n_bits_act / 8
    weights = c_out * (c_in // g) * kh * kw
    ops = 2.0 * b * weights * oh * ow
    return Work(name, ops, weights * wb, b * (c_in * h * w + c_out * oh * ow) * ab, b)


@validate_params(n_in=COUNT, hidden=COUNT, batch_size=COUNT, n_bits_weight=N_BITS, n_bits_act=N_BITS, name=NAME)
def lstm_cell_work(n_in: int, hidden: int, batch_size: int = 1, *, n_bits_weight: int = 8, n_bits_act: int = 8,
                   name: str = "lstm") -> Work:
    """One time step of an LSTM cell: four gates, each ``[x, h] → hidden``.

    ops = 2 · batch · 4·hidden · (n_in + hidden) (the gate products; the
    element-wise gate arithmetic is O(hidden) and left out); weights
    4·hidden·(n_in + hidden); activations batch · (n_in + 2·hidden read
    (x, h, c) + 2·hidden written (h, c)).

    >>> lstm_cell_work(1024, 1024, batch_size=64).intensity("weight")
    128.0

    Taught in chapter 09, "The roofline and the TPU".
    """
    b, wb, ab = batch_size, n_bits_weight / 8, n_bits_act / 8
    weights = 4 * hidden * (n_in + hidden)
    return Work(name, 2.0 * b * weights, weights * wb, b * (n_in + 4 * hidden) * ab, b)


@validate_params(spec=OneOf(Options(ARCHITECTURES), Instance((Architecture, Layer), "an Architecture or a Layer")),
                 batch_size=COUNT, n_bits_weight=N_BITS, n_bits_act=N_BITS)
def network_work(spec, batch_size: int = 1, *, n_bits_weight: int = 8, n_bits_act: int = 8) -> list[Work]:
    """One :class:`Work` per conv / fc layer of an architecture (``effdl.architectures``) at ``batch_size``.

    ``spec`` is an architecture name (``"alexnet"``, ``"vgg16"``, …), an
    ``Architecture`` or a layer spec.

    Behind chapter 09, "The roofline and the TPU".
    """
    if isinstance(spec, str):
        spec = get_architecture(spec)
    b, wb, ab = batch_size, n_bits_weight / 8, n_bits_act / 8
    return [Work(r.name, 2.0 * b * r.macs, r.weights * wb,
                 b * (math.prod(r.input_shape) + math.prod(r.output_shape)) * ab, b)
            for r in layer_table(spec)]


# --------------------------------------------------------------------------- the TPU's workloads
@dataclass(frozen=True)
class TPUApp:
    """One of the six production workloads of the TPU paper (Table 1).

    ``table1_intensity`` is Table 1's "ops per weight byte" (a multiply-add
    as 1 op) at the deployed ``batch_size``; weights are 8-bit.

    Behind chapter 09, "The roofline and the TPU".
    """

    name: str
    kind: str                # "MLP", "LSTM" or "CNN"
    layers: str
    weights: int
    table1_intensity: float
    batch_size: int

    @property
    def macs_per_weight_per_input(self) -> float:
        """How often one weight is used for one input: Table 1's intensity ÷ its batch (1 for FC layers)."""
        return self.table1_intensity / self.batch_size

    def intensity(self, batch_size: int | None = None) -> float:
        """Ops (2 per multiply-add) per weight byte at ``batch_size`` (default: the deployed one).

        Weight reuse grows linearly with the batch: every input of the batch
        uses every weight fetched for it.
        """
        b = self.batch_size if batch_size is None else check_part("TPUApp.intensity", COUNT, "batch_size", batch_size)
        return TABLE1_TO_OPS * self.macs_per_weight_per_input * b

    def work(self, batch_size: int | None = None) -> Work:
        """The whole network at ``batch_size`` as one :class:`Work` (8-bit weights, activations on chip)."""
        b = self.batch_size if batch_size is None else check_part("TPUApp.work", COUNT, "batch_size", batch_size)
        weight_bytes = float(self.weights)        # 8-bit weights: one byte each
        return Work(self.name, self.intensity(b) * weight_bytes, weight_bytes, 0.0, b)


# Jouppi et al., ISCA 2017, Table 1: layers, weights, ops/weight byte, batch size.
TPU_APPS: dict[str, TPUApp] = {a.name: a for a in (
    TPUApp("MLP0", "MLP", "5 FC", 20_000_000, 200, 200),
    TPUApp("MLP1", "MLP", "4 FC", 5_000_000, 168, 168),
    TPUApp("LSTM0", "LSTM", "58 layers", 52_000_000, 64, 64),
    TPUApp("LSTM1", "LSTM", "56 layers", 34_000_000, 96, 96),
    TPUApp("CNN0", "CNN", "16 conv", 8_000_000, 2888, 8),
    TPUApp("CNN1", "CNN", "89 layers", 100_000_000, 1750, 32),
)}
# Share of the TPUs' deployed inference workload by kind (Jouppi et al., Table 1).
DEPLOYED_SHARE = {"MLP": 0.61, "LSTM": 0.29, "CNN": 0.05}
PAPER_CHIPS = ("TPU", "K80", "Haswell")


APP = OneOf(Options(TPU_APPS), Instance(TPUApp, "a TPUApp"))
CHIPS = ListOf(CHIP)


@validate_params(name=APP)
def get_app(name: str) -> TPUApp:
    """One of ``TPU_APPS`` by name (``"MLP0"`` … ``"CNN1"``).

    Behind chapter 09, "The roofline and the TPU".
    """
    return name if isinstance(name, TPUApp) else TPU_APPS[name]


@validate_params(chips=CHIPS, batch_size=PositiveInt(optional=True))
def place_apps(chips=PAPER_CHIPS, batch_size: int | None = None) -> list[dict]:
    """The six apps on each chip's roofline (weight convention).

    Each row: ``app``, ``kind``, ``batch_size``, ``intensity`` (ops/weight
    byte), and per chip ``attainable_tops`` and ``bound`` ("memory" or
    "compute"). ``batch_size`` None uses each app's deployed batch; an int
    moves every app to that batch.

    Taught in chapter 09, "The roofline and the TPU".
    """
    roofs = [Roofline.from_chip(c) for c in chips]
    rows = []
    for app in TPU_APPS.values():
        i = app.intensity(batch_size)
        rows.append({"app": app.name, "kind": app.kind, "batch_size": batch_size or app.batch_size,
                     "intensity": i,
                     "attainable_tops": {r.name: r.attainable(i) / 1e12 for r in roofs},
                     "bound": {r.name: r.bound(i) for r in roofs}})
    return rows


# --------------------------------------------------------------------------- batch size and latency
@validate_params(work=Instance(Work, "a Work (e.g. from fc_work)"), roofline=Instance(Roofline, "a Roofline"))
def batch_time(work: Work, roofline: Roofline) -> float:
    """Seconds to run ``work`` at the roofline's bound: max(ops / peak, bytes / bandwidth).

    A lower bound on the time of one batch: it assumes compute and transfers
    overlap perfectly and nothing else (host, queueing) takes time.

    Taught in chapter 09, "The roofline and the TPU".
    """
    return max(work.ops / roofline.peak, work.bytes(roofline.convention) / roofline.bandwidth)


@validate_params(app=APP, chips=CHIPS, batch_sizes=ListOf(PositiveInt(), optional=True))
def batch_sweep(app: str | TPUApp = "MLP0", chips=PAPER_CHIPS, batch_sizes=None) -> dict:
    """An app's intensity, attainable performance, batch time and throughput over batch sizes.

    Returns ``{"batch_sizes": (n,), "intensity": (n,), "chips": {name: {"attainable_tops",
    "latency_ms", "throughput_ips"}}}`` (arrays), the latency being :func:`batch_time`.

    Taught in chapter 09, "The roofline and the TPU".
    """
    a = get_app(app)
    if batch_sizes is None:
        batch_sizes = 2 ** np.arange(0, 13)
    sizes = np.asarray(batch_sizes)
    out = {"app": a.name, "batch_sizes": sizes, "intensity": np.array([a.intensity(int(b)) for b in sizes]),
           "chips": {}}
    for chip in chips:
        roof = Roofline.from_chip(chip)
        t = np.array([batch_time(a.work(int(b)), roof) for b in sizes])
        out["chips"][roof.name] = {"attainable_tops": roof.attainable(out["intensity"]) / 1e12,
                                   "latency_ms": t * 1e3, "throughput_ips": sizes / t}
    return out


@validate_params(batch_sizes=BATCH_SIZES, chip=CHIP)
def apps_sweep(batch_sizes, chip: str | Chip = "TPU") -> dict:
    """All six apps moved along one chip's roofline as the batch size changes (the batch animation's data).

    Returns ``{"chip", "roofline", "ridge", "peak_tops", "bandwidth_gbs", "batch_sizes": (n,),
    "apps": {name: {"intensity": (n,), "attainable_tops": (n,), "deployed_batch",
    "deployed_intensity", "deployed_attainable_tops"}}}``.

    Taught in chapter 09, "The roofline and the TPU".
    """
    roof = Roofline.from_chip(chip)
    sizes = np.asarray(batch_sizes)
    apps = {}
    for a in TPU_APPS.values():
        i = np.array([a.intensity(int(b)) for b in sizes])
        apps[a.name] = {"intensity": i, "attainable_tops": roof.attainable(i) / 1e12, "deployed_batch": a.batch_size,
                        "deployed_intensity": a.intensity(),
                        "deployed_attainable_tops": roof.attainable(a.intensity()) / 1e12}
    return {"chip": roof.name, "roofline": roof, "ridge": roof.ridge, "peak_tops": roof.peak_tops,
            "bandwidth_gbs": roof.bandwidth_gbs, "batch_sizes": sizes, "apps": apps}


@validate_params(app=APP, chip=CHIP, limit_ms=RATE, max_batch=PositiveInt())
def max_batch_under_latency(app: str | TPUApp, chip: str | Chip, limit_ms: float, *, max_batch: int = 1 << 20) -> int:
    """The largest batch whose modelled batch time (:func:`batch_time`) stays within ``limit_ms``.

    Returns 0 if even batch 1 is too slow. Searches up to ``max_batch``.

    Behind chapter 09, "The roofline and the TPU".
    """
    a, roof = get_app(app), Roofline.from_chip(chip)
    limit = limit_ms / 1e3
    if batch_time(a.work(1), roof) > limit:
        return 0
    lo, hi = 1, max_batch                          # time grows with the batch: bisect
    if batch_time(a.work(hi), roof) <= limit:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if batch_time(a.work(mid), roof) <= limit else (lo, mid)
    return lo


# Jouppi et al., ISCA 2017, Table 4: MLP0 under a 7 ms 99th-percentile response-time limit.
MLP0_LATENCY_LIMIT_MS = 7.0
MLP0_TABLE4 = (
    {"chip": "Haswell", "label": "CPU", "batch_size": 16, "p99_ms": 7.2, "ips": 5_482},
    {"chip": "K80", "label": "GPU", "batch_size": 16, "p99_ms": 6.7, "ips": 13_461},
    {"chip": "TPU", "label": "TPU", "batch_size": 200, "p99_ms": 7.0, "ips": 225_000},
    {"chip": "TPU", "label": "TPU", "batch_size": 250, "p99_ms": 10.0, "ips": 280_000},
)


@validate_params()
def table4_comparison() -> list[dict]:
    """Table 4's measured MLP0 rows next to the roofline bound at the same batch.

    Adds ``bound_ms`` (:func:`batch_time` of one batch), ``bound_ips``
    (batch ÷ bound_ms) and ``fraction_of_bound`` (measured IPS ÷ bound IPS):
    how close each chip came to its roof.

    Taught in chapter 09, "The roofline and the TPU".
    """
    app = TPU_APPS["MLP0"]
    rows = []
    for r in MLP0_TABLE4:
        t = batch_time(app.work(r["batch_size"]), Roofline.from_chip(r["chip"]))
        rows.append({**r, "bound_ms": t * 1e3, "bound_ips": r["batch_size"] / t,
                     "fraction_of_bound": r["ips"] / (r["batch_size"] / t)})
    return rows


# --------------------------------------------------------------------------- this machine, measured
@dataclass(frozen=True)
class KernelTiming:
    """A kernel timed on this machine: ``ops`` (2 per multiply-add), ``bytes`` it must move at
    least once (DRAM convention), best ``seconds`` of the repeats.

    Behind chapter 09, "The roofline and the TPU".
    """

    name: str
    ops: float
    bytes: float
    seconds: float

    @property
    def intensity(self) -> float:
        return self.ops / self.bytes

    @property
    def performance(self) -> float:
        """Achieved ops/s."""
        return self.ops / self.seconds


@dataclass(frozen=True)
class MachineRoofline:
    """This machine's measured roofline (DRAM convention) and the kernels placed on it.

    Behind chapter 09, "The roofline and the TPU".
    """

    device: str
    peak: float                 # ops/s, best large fp32 matmul
    bandwidth: float            # bytes/s, best large copy (read + write counted)
    kernels: tuple[KernelTiming, ...] = field(default_factory=tuple)
    threads: int = 1
    copy_bandwidth: float | None = None   # bytes/s, copy (read + write counted)
    read_bandwidth: float | None = None   # bytes/s, reduction (reads only)

    @property
    def roofline(self) -> Roofline:
        return Roofline(f"this {self.device}", self.peak, self.bandwidth, "dram")

    @property
    def peak_gflops(self) -> float:
        return self.peak / 1e9

    @property
    def bandwidth_gbs(self) -> float:
        return self.bandwidth / 1e9


def _interleaved_best_times(tasks: dict, sync, budget_s: float, min_rounds: int = 2,
                            max_rounds: int = 200) -> dict:
    """Best wall-clock seconds of each task, the tasks taking turns round after round.

    Taking turns puts every task under the same conditions when other work
    shares the machine, so the ratios between them (a kernel against the
    roofs) stay meaningful even when the absolute numbers move.
    """
    for fn in tasks.values():                            # warm-up: allocations, thread pool, caches
        fn()
    sync()
    best = {name: math.inf for name in tasks}
    deadline = time.perf_counter() + budget_s
    for n in range(max_rounds):
        if n >= min_rounds and time.perf_counter() > deadline:
            break
        for name, fn in tasks.items():
            t0 = time.perf_counter()
            fn()
            sync()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


@validate_params(device=Options(("cpu", "cuda")), budget_s=RATE, kernels=Bool(), seed=Seed())
def measure_machine(device: str = "cpu", *, budget_s: float = 1.2, kernels: bool = True,
                    seed: int = 0) -> MachineRoofline:
    """Measure this machine's roofline with torch, and place four kernels on it.

    - **peak**: the best rate of an fp32 matmul (2·n³ ops; n = 1024 on a CPU,
      4096 on a GPU, or the 512³ kernel below if it ran faster) — the
      *attained* peak, below the datasheet's;
    - **bandwidth**: the better of two streams over a 64 MiB (CPU) / 1 GiB
      (GPU) fp32 tensor — a copy, counting the bytes read and written, and a
      sum, counting the bytes read (a copy's writes can cost an extra read
      that it gets no credit for);
    - **kernels** (fp32, each at its minimum DRAM traffic): dense mat-vec
      4096×4096, sparse CSR mat-vec 4096×4096 at 10 % density (values +
      column indices + row pointers), matmul 512³, and a 3×3 conv, 64 → 64
      channels on 56×56.

    Every measurement is the best of several runs, the measurements taking
    turns for ``budget_s`` seconds (at least two rounds; set-up comes on
    top, about half a second on a CPU). ``device`` is ``"cpu"`` or ``"cuda"``.

    Taught in chapter 09, "The roofline and the TPU".
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("measure_machine: device must be available: torch.cuda.is_available() is False here; "
                         "got 'cuda'.")
    dev = torch.device(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def rand(*shape):                                       # uniform: quicker to draw than normal
        return (torch.rand(*shape, generator=gen) - 0.5).to(dev)

    n = 4096 if device == "cuda" else 1024
    a, b = rand(n, n), rand(n, n)
    words = 1 << 28 if device == "cuda" else 1 << 24       # fp32 elements: 1 GiB / 64 MiB
    src = torch.ones(words, device=dev)                     # values do not matter to a copy
    dst = torch.empty_like(src)
    tasks = {"peak": lambda: a @ b, "copy": lambda: dst.copy_(src), "read": lambda: src.sum()}
    work = {}                                               # name: (ops, minimum bytes)
    if kernels:
        m, k = 4096, 512
        mat, vec = rand(m, m), rand(m)
        mask = torch.rand(m, m, generator=gen) < 0.10
        with warnings.catch_warnings():                     # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            sparse = (mat.cpu() * mask).to_sparse_csr().to(dev)
        nnz = int(mask.sum())
        p, q = rand(k, k), rand(k, k)
        x, w = rand(1, 64, 56, 56), rand(64, 64, 3, 3)
        conv = torch.nn.functional.conv2d
        tasks.update({"dense mat-vec": lambda: mat @ vec, "sparse mat-vec (10 %)": lambda: sparse @ vec,
                      f"matmul {k}³": lambda: p @ q, "conv 3×3, 64→64, 56×56": lambda: conv(x, w, padding=1)})
        work = {"dense mat-vec": (2.0 * m * m, 4.0 * (m * m + 2 * m)),
                # values (4 B) + column indices (8 B, int64) per non-zero, row pointers, x and y
                "sparse mat-vec (10 %)": (2.0 * nnz, 12.0 * nnz + 8.0 * (m + 1) + 8.0 * m),
                f"matmul {k}³": (2.0 * k ** 3, 4.0 * 3 * k * k),
                "conv 3×3, 64→64, 56×56": (2.0 * 64 * 64 * 9 * 56 * 56, 4.0 * (2 * 64 * 56 * 56 + 64 * 64 * 9))}
    best = _interleaved_best_times(tasks, sync, budget_s)
    peak = 2.0 * n ** 3 / best["peak"]
    if kernels:                                             # the roof is the best matrix-product rate seen
        peak = max(peak, work[f"matmul {k}³"][0] / best[f"matmul {k}³"])
    copy_bandwidth = 2.0 * 4 * words / best["copy"]         # bytes read + bytes written
    read_bandwidth = 4.0 * words / best["read"]             # bytes read (a sum's arithmetic is negligible)
    timings = tuple(KernelTiming(name, ops, nbytes, best[name]) for name, (ops, nbytes) in work.items())
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    return MachineRoofline(name, peak, max(copy_bandwidth, read_bandwidth), timings, torch.get_num_threads(),
                           copy_bandwidth, read_bandwidth)


# --------------------------------------------------------------------------- reproduce
@validate_params(measure=Bool())
def roofline_report(*, measure: bool = True) -> dict:
    """Chapter 9's headline numbers as one JSON-able dict (``effdl reproduce roofline``).

    The TPU, K80 and Haswell rooflines (TOPS with a multiply-add as 2 ops,
    ridge in ops per weight byte), the six apps of Table 1 placed on them, the
    TPU's 256×256 array (34 GB/s weight bandwidth, double-buffered) running
    AlexNet's fc6 at MLP0's batch of 200 in the closed-form cycle model, and
    this machine's measured peak and bandwidth (``measure=False`` skips the
    measurement and reports zeros).

    Behind chapter 09, "The roofline and the TPU".
    """
    chips = {}
    for name in PAPER_CHIPS:
        roof = Roofline.from_chip(name)
        chips[name] = {"peak_tops": roof.peak_tops, "bandwidth_gbs": roof.bandwidth_gbs, "ridge": round(roof.ridge, 2),
                       "precision": get_chip(name).default_precision}
    apps = {row["app"]: {"intensity": float(row["intensity"]), "batch_size": row["batch_size"],
                         "attainable_tops": {c: round(float(v), 4) for c, v in row["attainable_tops"].items()},
                         "bound": row["bound"]}
            for row in place_apps(PAPER_CHIPS)}
    cfg = systolic.SystolicConfig.tpu()
    m, k, n = TPU_APPS["MLP0"].batch_size, 9216, 4096
    est = systolic.estimate(cfg, systolic.Gemm(M=m, K=k, N=n))
    out = {"convention": "ops per weight byte; a multiply-add counts as 2 ops (Table 1's values x 2), "
                         "TOPS likewise (the paper's 92 TOPS)",
           "chips": chips, "apps": apps,
           "systolic": {"array": [cfg.rows, cfg.cols], "M": m, "N": n, "K": k, "cycles": int(est.cycles),
                        "utilization": round(est.utilization, 4), "load_cycles": int(est.load_cycles),
                        "what": "AlexNet fc6 (9216 -> 4096) at batch 200 on the TPU's 256x256 array, "
                                "weights at 34 GB/s, double-buffered"},
           "this_machine": {"peak_gflops": 0.0, "bandwidth_gbs": 0.0}}
    if measure:
        mr = measure_machine(kernels=False, budget_s=1.0)
        out["this_machine"] = {"peak_gflops": round(mr.peak_gflops, 1), "bandwidth_gbs": round(mr.bandwidth_gbs, 2),
                               "device": mr.device, "threads": mr.threads}
    return out
