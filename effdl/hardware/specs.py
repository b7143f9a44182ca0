"""The chips of the course as data, each number next to its source.

Taught in chapter 9 (the roofline and the TPU): a CPU (Haswell E5-2699 v3), a
GPU of the same datacenter generation (K80), Google's first TPU, and the GPUs
and Cloud TPU that followed (P40, P100, V100, Cloud TPU v2). The TPU, K80 and
Haswell figures are Table 2 of Jouppi et al., "In-Datacenter Performance
Analysis of a Tensor Processing Unit", ISCA 2017 (per die); the P100, V100 and
Cloud TPU v2 figures are those of the course's lecture (the book's FACTS.md);
the P40's are NVIDIA's Tesla P40 datasheet.

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

from dataclasses import dataclass

from effdl._validate import check_type

PRECISIONS = ("int8", "fp16", "bf16", "fp32")


@dataclass(frozen=True)
class Chip:
    """One chip (one die for the K80) and where its numbers come from.

    ``peaks`` pairs a precision with its peak rate in TOPS (2 ops per
    multiply-add); ``default_precision`` is the one the TPU paper's roofline
    comparison uses for the chip (its fastest listed precision).
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
        if not isinstance(precision, str):
            raise TypeError(f"precision must be a string, one of {list(table)}; got {precision!r}.")
        if precision not in table:
            raise ValueError(f"precision must be one of {list(table)} for {self.name}; got {precision!r}.")
        return table[precision]

    def peak_ops(self, precision: str | None = None) -> float:
        """Peak rate in operations per second (multiply-add = 2 ops)."""
        return self.peak_tops(precision) * 1e12

    @property
    def bandwidth(self) -> float:
        """Off-chip bandwidth in bytes per second; ``ValueError`` if the sources give none."""
        if self.bandwidth_gbs is None:
            raise ValueError(f"chip must have a known memory bandwidth for a roofline; "
                             f"got {self.name!r} (its sources give none).")
        return self.bandwidth_gbs * 1e9

    def ridge(self, precision: str | None = None) -> float:
        """Ridge point in operations per byte: peak ÷ bandwidth."""
        return self.peak_ops(precision) / self.bandwidth

    def tops_per_watt(self, precision: str | None = None) -> float | None:
        """Peak TOPS per watt of TDP (``None`` where no power is given)."""
        return None if self.tdp_w is None else self.peak_tops(precision) / self.tdp_w


_TPU_PAPER = "Jouppi et al., ISCA 2017, Table 2 (per die)"
_CHIPS = (
    Chip("Haswell", "Intel Haswell E5-2699 v3", "CPU", 2014, 2300.0,
         (("int8", 2.6), ("fp32", 1.3)), 51.0, None, None, 145.0, None, None, "int8", _TPU_PAPER,
         "server CPU of the TPU paper's comparison; 145 W TDP"),
    Chip("K80", "NVIDIA K80 (one of its two dies)", "GPU", 2014, 560.0,
         (("fp32", 2.8),), 160.0, None, None, 150.0, None, None, "fp32", _TPU_PAPER,
         "no 8-bit rate listed: the paper's K80 roofline is its FP32 peak"),
    Chip("TPU", "Google TPU (v1)", "ASIC", 2015, 700.0,
         (("int8", 92.0),), 34.0, "8 GiB DDR3", 24.0 + 4.0, 75.0, None, 65_536, "int8", _TPU_PAPER,
         "256×256 8-bit MAC matrix unit; 24 MiB unified buffer + 4 MiB accumulators; 75 W TDP"),
    Chip("P40", "NVIDIA Tesla P40", "GPU", 2016, None,
         (("int8", 47.0), ("fp32", 12.0)), 346.0, "24 GB GDDR5", None, 250.0, None, None, "int8",
         "NVIDIA Tesla P40 datasheet (2016); not in the book's FACTS.md",
         "Pascal inference GPU with 8-bit dot products"),
    Chip("P100", "NVIDIA Tesla P100", "GPU", 2016, None,
         (("fp16", 21.0), ("fp32", 10.6)), 720.0, "16 GB HBM2", None, None, None, None, "fp16",
         "course lecture (FACTS.md: training hardware)", "the lecture gives 720-750 GB/s; the lower bound is used"),
    Chip("V100", "NVIDIA Tesla V100", "GPU", 2017, None,
         (("fp16", 120.0), ("fp32", 15.0)), 900.0, "16 GB HBM2", None, None, None, None, "fp16",
         "course lecture (FACTS.md: training hardware)", "120 TFLOPS is the Tensor Cores' fp16 rate"),
    Chip("Cloud TPU v2", "Google Cloud TPU (v2)", "ASIC", 2017, None,
         (("bf16", 180.0),), None, None, None, None, None, None, "bf16",
         "course lecture (FACTS.md: training hardware)",
         "one Cloud TPU (a board of four chips); a 64-TPU pod 11.5 PFLOPS; the lecture states no "
         "precision or bandwidth"),
)
CHIPS: dict[str, Chip] = {c.name: c for c in _CHIPS}
_ALIASES = {"haswell": "Haswell", "cpu": "Haswell", "e5-2699 v3": "Haswell", "k80": "K80", "gpu": "K80",
            "tpu": "TPU", "tpu v1": "TPU", "tpuv1": "TPU", "p40": "P40", "p100": "P100", "v100": "V100",
            "cloud tpu v2": "Cloud TPU v2", "tpu v2": "Cloud TPU v2", "tpuv2": "Cloud TPU v2"}
# Pod of 64 Cloud TPUs (v2), from the course lecture.
CLOUD_TPU_V2_POD_PFLOPS = 11.5


def get_chip(name: str) -> Chip:
    """The chip called ``name`` (case-insensitive; "CPU" and "GPU" mean the TPU paper's Haswell and K80).

    >>> get_chip("k80").bandwidth_gbs
    160.0
    """
    if isinstance(name, Chip):
        return name
    check_type("name", name, str, f"a chip name, one of {list(CHIPS)}")
    key = _ALIASES.get(name.strip().lower())
    if key is None:
        raise ValueError(f"name must be one of {list(CHIPS)} (or an alias: {sorted(_ALIASES)}); got {name!r}.")
    return CHIPS[key]


def chip_table() -> list[dict]:
    """All chips as rows for display: name, kind, year, clock, peak at the default precision, bandwidth,
    ridge (ops/byte), TDP, TOPS/W and the source."""
    rows = []
    for c in _CHIPS:
        rows.append({"name": c.name, "display_name": c.display_name, "kind": c.kind, "year": c.year,
                     "clock_mhz": c.clock_mhz, "precision": c.default_precision, "peak_tops": c.peak_tops(),
                     "bandwidth_gbs": c.bandwidth_gbs, "ridge": None if c.bandwidth_gbs is None else c.ridge(),
                     "memory": c.memory, "on_chip_mib": c.on_chip_mib, "tdp_w": c.tdp_w,
                     "tops_per_w": c.tops_per_watt(), "source": c.source})
    return rows
