"""The chips of the course as data, each number next to its source.

Taught in chapter 9 (the roofline and the TPU): a CPU (Haswell E5-2699 v3), a
GPU of the same datacenter generation (K80), Google's first TPU, and the GPUs
and Cloud TPU that followed (P40, P100, V100, Cloud TPU v2). The TPU, K80 and
Haswell figures are Table 2 of Jouppi et al., "In-Datacenter Performance
Analysis of a Tensor Processing Unit", ISCA 2017 (per die); the P100, V100 and
Cloud TPU v2 figures are those of the course's lecture (Han, CS231n 2017);
the P40's are NVIDIA's Tesla P40 datasheet.

Chapter 14 (hardware for training) adds the training chips of the course's
lecture (:data:`TRAINING_CHIPS`: K40, M40, P100, V100, Knights Landing,
Cloud TPU v2, in :func:`training_chip_table`). Their peaks and memories are
the lecture's ("training hardware" slides); each figure the lecture does
not give (a release year, the K40's and M40's bandwidth) names its own source
in ``source``.

Units: peak rates in tera-operations per second, a multiply-add counting as
**two** operations (the paper's 92 TOPS = 65,536 MACs × 2 × 700 MHz);
bandwidth in GB/s (10⁹ bytes per second); clocks in MHz; power in W; on-chip
memory in MiB. A field the sources do not give is ``None``.

>>> tpu = get_chip("TPU")
>>> tpu.peak_tops(), tpu.bandwidth_gbs
(92.0, 34.0)
>>> round(tpu.macs * 2 * tpu.clock_mhz * 1e6 / 1e12, 2)   # the 92 TOPS, recomputed
91.75
"""
from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from effdl._validate import _fail
from effdl.validation import Constraint, Interval, Options, PositiveInt, check_part, validate_params

PRECISIONS = ("int8", "fp16", "bf16", "fp32")


@dataclass(frozen=True)
class Chip:
    """One chip (one die for the K80) and where its numbers come from.

    ``peaks`` pairs a precision with its peak rate in TOPS (2 ops per
    multiply-add); ``default_precision`` is the one the TPU paper's roofline
    comparison (Fig. 6) uses for the chip: the TPU's 8-bit peak, but the K80's
    and the Haswell's floating-point ones (the paper draws Haswell at 1.3 TOPS,
    not its 2.6 TOPS 8-bit rate).

    Behind chapter 09, "The roofline and the TPU".
    """

    name: str
    display_name: str
    kind: str                          # "CPU", "GPU" or "ASIC"
    year: int
    clock_mhz: float | None
    peaks: tuple[tuple[str, float], ...]
    bandwidth_gbs: float | None        # off-chip memory
    memory: str | None                 # off-chip memory, as the source states it
    on_chip_mib: float | None          # software-visible on-chip buffers
    tdp_w: float | None
    die_mm2: float | None
    macs: int | None                   # multiply-accumulate units, where the source gives them
    default_precision: str
    source: str
    notes: str = ""

    def __post_init__(self):
        names = [p for p, _ in self.peaks]
        assert self.default_precision in names and all(p in PRECISIONS for p in names), self.name
        assert all(v > 0 for _, v in self.peaks)

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.peaks)

    def peak_tops(self, precision: str | None = None) -> float:
        """Peak rate in TOPS (multiply-add = 2 ops) at ``precision`` (default: ``default_precision``)."""
        if precision is None:
            precision = self.default_precision
        table = dict(self.peaks)
        check_part("Chip.peak_tops", Options(tuple(table)), "precision", precision)     # the chip's own precisions
        return table[precision]

    def peak_ops(self, precision: str | None = None) -> float:
        """Peak rate in operations per second (multiply-add = 2 ops)."""
        return self.peak_tops(precision) * 1e12

    @property
    def bandwidth(self) -> float:
        """Off-chip bandwidth in bytes per second; ``ValueError`` if the sources give none."""
        if self.bandwidth_gbs is None:
            raise ValueError(f"Chip.bandwidth: chip must have a known memory bandwidth for a roofline; "
                             f"got {self.name!r} (its sources give none).")
        return self.bandwidth_gbs * 1e9

    def ridge(self, precision: str | None = None) -> float:
        """Ridge point in operations per byte: peak ÷ bandwidth."""
        return self.peak_ops(precision) / self.bandwidth

    def tops_per_watt(self, precision: str | None = None) -> float | None:
        """Peak TOPS per watt of TDP (``None`` where no power is given)."""
        return None if self.tdp_w is None else self.peak_tops(precision) / self.tdp_w


_TPU_PAPER = "Jouppi et al., ISCA 2017, Table 2 (per die)"
# The course lecture this book follows: Song Han's invited talk, Stanford CS231n, lecture 15 (2017).
_LECTURE = ("Han, \"Efficient Methods and Hardware for Deep Learning\", Stanford CS231n lecture 15, "
            "2017 (training hardware)")
# Thermal design power of the NVIDIA training GPUs: one table of NVIDIA's Volta whitepaper compares
# K40 (235 W), M40 (250 W), P100 (300 W, SXM2) and V100 (300 W, SXM2).
_VOLTA_TABLE = "NVIDIA, Tesla V100 GPU architecture whitepaper (2017), Table 1"

_CHIPS = (
    Chip("Haswell", "Intel Haswell E5-2699 v3", "CPU", 2014, 2300.0,
         (("int8", 2.6), ("fp32", 1.3)), 51.0, None, None, 145.0, None, None, "fp32", _TPU_PAPER,
         "server CPU of the TPU paper's comparison; 145 W TDP; its roofline (Fig. 6, ridge 13 ops per "
         "weight byte) uses the 1.3 TOPS floating-point peak, not the 2.6 TOPS 8-bit one"),
    Chip("K80", "NVIDIA K80 (one of its two dies)", "GPU", 2014, 560.0,
         (("fp32", 2.8),), 160.0, None, None, 150.0, None, None, "fp32", _TPU_PAPER,
         "no 8-bit rate listed: the paper's K80 roofline is its FP32 peak"),
    Chip("TPU", "Google TPU (v1)", "ASIC", 2015, 700.0,
         (("int8", 92.0),), 34.0, "8 GiB DDR3", 24.0 + 4.0, 75.0, None, 65_536, "int8", _TPU_PAPER,
         "256×256 8-bit MAC matrix unit; 24 MiB unified buffer + 4 MiB accumulators; 75 W TDP"),
    Chip("P40", "NVIDIA Tesla P40", "GPU", 2016, None,
         (("int8", 47.0), ("fp32", 12.0)), 346.0, "24 GB GDDR5", None, 250.0, None, None, "int8",
         "NVIDIA Tesla P40 datasheet (2016)",
         "Pascal inference GPU with 8-bit dot products"),
    Chip("P100", "NVIDIA Tesla P100", "GPU", 2016, None,
         (("fp16", 21.0), ("fp32", 10.6)), 720.0, "16 GB HBM2", None, 300.0, None, None, "fp16",
         f"{_LECTURE}; TDP: {_VOLTA_TABLE}", "bandwidth: NVIDIA's Tesla P100 (SXM2) launch specification, "
         "720 GB/s (2016); the lecture gives 750 GB/s"),
    Chip("V100", "NVIDIA Tesla V100", "GPU", 2017, None,
         (("fp16", 120.0), ("fp32", 15.0)), 900.0, "16 GB HBM2", None, 300.0, None, None, "fp16",
         f"{_LECTURE}; TDP: {_VOLTA_TABLE}", "120 TFLOPS is the Tensor Cores' fp16 rate"),
    Chip("Cloud TPU v2", "Google Cloud TPU (v2)", "ASIC", 2017, None,
         (("bf16", 180.0),), None, None, None, None, None, None, "bf16",
         _LECTURE,
         "one Cloud TPU (a board of four chips); a 64-TPU pod 11.5 PFLOPS; the lecture states no "
         "precision or bandwidth"),
)
CHIPS: dict[str, Chip] = {c.name: c for c in _CHIPS}

# --------------------------------------------------------------- chapter 14: training chips
_TRAINING_ONLY = (
    # 5.04 TFLOPS = 2880 cores × 2 × 875 MHz (the board spec's cores and top boost clock)
    Chip("K40", "NVIDIA Tesla K40", "GPU", 2013, 875.0,
         (("fp32", 5.04),), 288.0, "12 GB GDDR5", None, 235.0, None, 2880, "fp32",
         f"{_LECTURE}: 5.04 TFLOPS fp32, 12 GB; 2013, 2880 cores, 875 MHz boost: NVIDIA Tesla K40 board "
         "specification BD-06902-001_v05 (November 2013); 288 GB/s: Microway, \"NVIDIA Tesla K40 Atlas GPU "
         f"Accelerator (Kepler GK110b) Up Close\"; TDP: {_VOLTA_TABLE}",
         "Kepler; peak at the highest GPU Boost clock (boards ship at the 745 MHz base clock)"),
    Chip("M40", "NVIDIA Tesla M40 (24 GB)", "GPU", 2015, None,
         (("fp32", 6.8),), 288.0, "24 GB GDDR5", None, 250.0, None, None, "fp32",
         f"{_LECTURE}: 6.8 TFLOPS fp32, 24 GB; 288 GB/s and the 24 GB version: Microway, \"NVIDIA Tesla M40 "
         "24GB GPU Accelerator (Maxwell GM200) Up Close\" (2016); released 10 November 2015 (12 GB version): "
         f"GPU spec pages of sysrqmts.com and technical.city; TDP: {_VOLTA_TABLE}",
         "Maxwell; the 24 GB board followed the 12 GB one in 2016"),
    Chip("KNL", "Intel Xeon Phi (Knights Landing)", "CPU", 2016, None,
         (("fp32", 7.0),), 400.0, "16 GB MCDRAM (on package)", None, 245.0, None, None, "fp32",
         f"{_LECTURE}: 7 TFLOPS fp32, 16 GB MCDRAM at 400 GB/s; launched June 2016 at ISC: Intel, \"What "
         "public disclosures has Intel made about Knights Landing?\" and The Next Platform, 20 June 2016; "
         "TDP: Intel ARK, Xeon Phi processor 7290 (16 GB, 1.50 GHz, 72 cores) specifications",
         "a many-core x86 CPU (up to 72 cores, AVX-512); bandwidth is the on-package MCDRAM's; the TDP is "
         "the 7290's, the model whose peak is the lecture's 7 TFLOPS (72 cores × 1.5 GHz × 64 fp32 "
         "operations per cycle = 6.9 TFLOPS)"),
)
_EXTRA = {c.name: c for c in _TRAINING_ONLY}
# The lecture's training chips in order of release; P100, V100 and Cloud TPU v2 are the entries above.
TRAINING_CHIPS: dict[str, Chip] = {n: {**CHIPS, **_EXTRA}[n]
                                   for n in ("K40", "M40", "P100", "KNL", "V100", "Cloud TPU v2")}
_ALL: dict[str, Chip] = {**CHIPS, **_EXTRA}
_ALIASES = {"haswell": "Haswell", "cpu": "Haswell", "e5-2699 v3": "Haswell", "k80": "K80", "gpu": "K80",
            "tpu": "TPU", "tpu v1": "TPU", "tpuv1": "TPU", "p40": "P40", "p100": "P100", "v100": "V100",
            "cloud tpu v2": "Cloud TPU v2", "tpu v2": "Cloud TPU v2", "tpuv2": "Cloud TPU v2",
            "k40": "K40", "m40": "M40", "knl": "KNL", "knights landing": "KNL", "xeon phi": "KNL"}
# Pod of 64 Cloud TPUs (v2), from the course lecture; announced by Google on 17 May 2017
# ("Build and train machine learning models on our new Google Cloud TPUs", The Keyword blog).
CLOUD_TPU_V2_POD_PFLOPS = 11.5
CLOUD_TPU_V2_POD_SIZE = 64

# The first TPU's blocks (chapter 9's block diagram), each with its source. Jouppi et al., ISCA 2017:
# §2 and Fig. 1 (the 256 × 256 matrix unit, the weight FIFO "four tiles deep", the 24 MiB unified
# buffer, 4 MiB of 32-bit accumulators, the PCIe Gen3 ×16 host interface); the comparison with the
# K80 is the paper's conclusion ("65,536 8-bit vs. 2,496 32-bit" MACs, "28 MiB vs. 8 MiB" on chip).
TPU_V1_BLOCKS = MappingProxyType({
    "matrix_side": 256,
    "weight_fifo_tiles": 4,
    "unified_buffer_mib": 24,
    "accumulators_mib": 4,
    "host_interface": "PCIe Gen3 ×16",
    "k80_macs": 2496,
    "k80_on_chip_mib": 8,
    "source": "Jouppi et al., ISCA 2017, §2, Fig. 1 and the conclusion",
})


class ChipName(Constraint):
    """A :class:`Chip`, or the name of one (case-insensitive, or an alias such as "GPU"); ``check`` returns the Chip.

    Behind chapter 09, "The roofline and the TPU".
    """

    def describe(self):
        return f"a chip name, one of {list(_ALL)}, or a Chip"

    def check(self, name, value):
        if isinstance(value, Chip):
            return value
        if not isinstance(value, str):
            _fail(TypeError, name, self.describe(), value)
        key = _ALIASES.get(value.strip().lower())
        if key is None:
            _fail(ValueError, name, f"one of {list(_ALL)} (or an alias: {sorted(_ALIASES)})", value)
        return _ALL[key]

    def invalid_values(self):
        return [("no such chip", ValueError), (3, TypeError), (None, TypeError)]


CHIP = ChipName()


@validate_params(name=CHIP)
def get_chip(name: str) -> Chip:
    """The chip called ``name`` (case-insensitive; "CPU" and "GPU" mean the TPU paper's Haswell and K80).

    Knows the chips of :data:`CHIPS` (chapter 9) and of :data:`TRAINING_CHIPS` (chapter 14).

    >>> get_chip("k80").bandwidth_gbs
    160.0

    Taught in chapter 09, "The roofline and the TPU".
    """
    return check_part("get_chip", CHIP, "name", name)          # a name still, when called from a checked caller


@validate_params()
def chip_table() -> list[dict]:
    """All chips as rows for display: name, kind, year, clock, peak at the default precision, bandwidth,
    ridge (ops/byte), TDP, TOPS/W and the source.

    Taught in chapter 09, "The roofline and the TPU".
    """
    rows = []
    for c in _CHIPS:
        rows.append({"name": c.name, "display_name": c.display_name, "kind": c.kind, "year": c.year,
                     "clock_mhz": c.clock_mhz, "precision": c.default_precision, "peak_tops": c.peak_tops(),
                     "bandwidth_gbs": c.bandwidth_gbs, "ridge": None if c.bandwidth_gbs is None else c.ridge(),
                     "memory": c.memory, "on_chip_mib": c.on_chip_mib, "tdp_w": c.tdp_w,
                     "tops_per_w": c.tops_per_watt(), "source": c.source})
    return rows


def _best_16bit(chip: Chip) -> tuple[str, float] | None:
    """The chip's fastest 16-bit peak as (precision, TOPS), or None if it lists none."""
    sixteen = [(p, v) for p, v in chip.peaks if p in ("fp16", "bf16")]
    return max(sixteen, key=lambda pv: pv[1]) if sixteen else None


@validate_params()
def training_chip_table() -> list[dict]:
    """The training chips of chapter 14 as rows: name, kind, year, fp32 and best 16-bit peak (TFLOPS, a
    multiply-add counting 2), memory, bandwidth (GB/s), fp32 ridge (FLOP per byte), TDP (W), peak GFLOPS
    per watt of TDP at fp32 and at the best 16-bit precision (``None`` where the sources give no power)
    and the source.

    >>> [r["name"] for r in training_chip_table()]
    ['K40', 'M40', 'P100', 'KNL', 'V100', 'Cloud TPU v2']

    Taught in chapter 14, "Hardware for training".
    """
    rows = []
    for c in TRAINING_CHIPS.values():
        fp32 = dict(c.peaks).get("fp32")
        best16 = _best_16bit(c)
        rows.append({"name": c.name, "display_name": c.display_name, "kind": c.kind, "year": c.year,
                     "fp32_tflops": fp32, "low_precision": None if best16 is None else best16[0],
                     "low_precision_tflops": None if best16 is None else best16[1],
                     "memory": c.memory, "bandwidth_gbs": c.bandwidth_gbs,
                     "fp32_ridge": None if fp32 is None or c.bandwidth_gbs is None else c.ridge("fp32"),
                     "tdp_w": c.tdp_w,
                     "fp32_gflops_per_w": None if fp32 is None or c.tdp_w is None else 1e3 * fp32 / c.tdp_w,
                     "low_precision_gflops_per_w": (None if best16 is None or c.tdp_w is None
                                                    else 1e3 * best16[1] / c.tdp_w),
                     "notes": c.notes, "source": c.source})
    return rows


@validate_params(n_devices=PositiveInt(), chip=CHIP, precision=Options(PRECISIONS, optional=True))
def pod_pflops(n_devices: int = CLOUD_TPU_V2_POD_SIZE, chip: str | Chip = "Cloud TPU v2",
               precision: str | None = None) -> float:
    """Peak of ``n_devices`` copies of ``chip`` in PFLOPS: n × the per-device peak (perfect scaling).

    >>> round(pod_pflops(64, "Cloud TPU v2"), 2)      # the lecture states 11.5 PFLOPS for the 64-TPU pod
    11.52

    Taught in chapter 14, "Hardware for training".
    """
    return n_devices * get_chip(chip).peak_tops(precision) / 1000.0


POSITIVE = Interval(float, 0, None, closed="neither")


@validate_params(macs_per_example=POSITIVE, n_examples=POSITIVE, epochs=POSITIVE)
def training_flops(macs_per_example: float, n_examples: float, epochs: float = 1.0) -> float:
    """FLOPs to train: 2 FLOPs per multiply-add × 3 passes (forward; backward to the inputs and to the
    weights, each as costly as the forward) × examples × epochs.

    >>> f"{training_flops(1e9, 1e6):.1e}"     # a 1-GMAC model on a million examples, one epoch
    '6.0e+15'

    Taught in chapter 14, "Hardware for training".
    """
    return 6.0 * macs_per_example * n_examples * epochs


@validate_params(total_flops=Interval(float, 0, None), peak_tflops=POSITIVE,
                 utilization=Interval(float, 0, 1, closed="right"))
def training_time_s(total_flops: float, peak_tflops: float, utilization: float = 1.0) -> float:
    """Seconds to execute ``total_flops`` on a chip of ``peak_tflops`` kept ``utilization`` busy (0 < u <= 1).

    >>> training_time_s(6e15, 120.0, 0.5)   # on a V100's Tensor Cores at half their peak
    100.0

    Taught in chapter 14, "Hardware for training".
    """
    return total_flops / (peak_tflops * 1e12 * utilization)


@validate_params()
def cpu_model() -> str:
    """This machine's CPU model name (``/proc/cpuinfo``'s "model name"; else what ``platform`` knows).

    The benchmarks record it next to each measurement: a speed ratio holds for the CPU that measured it.

    Behind chapter 09, "The roofline and the TPU".
    """
    try:
        found = re.search(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
        if found:
            return found.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
