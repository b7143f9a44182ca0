"""The array and the workload: :class:`SystolicConfig` (hardware and timing convention) and :class:`Gemm`.

Part of :mod:`effdl.hardware.systolic` (chapter 9). A GEMM ``Y = X @ W`` has
``X`` of shape (M, K) — M streamed input rows, e.g. output pixels × batch —
and ``W`` of shape (K, N) — N output columns, e.g. filters. Sizes are
keyword-only (``Gemm(M=…, K=…, N=…)``) so that two of them cannot be swapped
silently.

How each dataflow maps the GEMM onto an R × C array (SCALE-Sim's published
mapping, Samajdar et al., "A Systematic Methodology for Characterizing
Scalability of DNN Accelerators using SCALE-Sim", ISPASS 2020):

=========  ===================  ===========  ===========  ==============
dataflow   stays in the PEs     array rows   array cols   streamed (time)
=========  ===================  ===========  ===========  ==============
``ws``     weights W            K            N            M
``os``     outputs Y            M            N            K
``is``     inputs X             K            M            N
=========  ===================  ===========  ===========  ==============
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from effdl.architectures import Architecture, Conv2d, get_architecture, layer_table
from effdl.hardware.specs import get_chip
from effdl.validation import (Bool, Instance, Interval, ListOf, OneOf, Options, PositiveInt, Seed, check_fields,
                              validate_params)

DATAFLOWS = ("ws", "os", "is")
TIMINGS = ("tpu", "scalesim")
# what stays put in each dataflow, and the GEMM sizes along the array's rows, columns and time
STATIONARY = {"ws": "weights W (K × N)", "os": "outputs Y (M × N)", "is": "inputs X (M × K)"}
MAPPING = {"ws": ("K", "N", "M"), "os": ("M", "N", "K"), "is": ("K", "M", "N")}

_SIZE = PositiveInt()
_REAL_POS = Interval(float, 0, None, closed="neither")


@dataclass(frozen=True)
class SystolicConfig:
    """An array of ``rows × cols`` PEs, its dataflow, its timing convention and its memories.

    Parameters
    ----------
    rows, cols : int
        PEs per column and per row; the TPU's matrix unit is 256 × 256.
    dataflow : {"ws", "os", "is"}
        Weight-, output- or input-stationary (see the module's table).
    timing : {"tpu", "scalesim"}
        How folds are charged (:mod:`effdl.hardware.systolic.model` explains both):
        ``"tpu"`` — the next tile's weights load in the background
        (``double_buffered``), a partial fold drains only the columns it
        uses; ``"scalesim"`` — SCALE-Sim's accounting: every fold of ws/is
        first loads its stationary tile for ``rows`` cycles, every fold
        pays the whole array's fill and drain, and the total counts from 0.
    double_buffered : bool
        ``"tpu"`` timing only: load the next tile into shadow registers
        while the current one computes (the TPU does).
    weight_bandwidth : float or None
        Bytes per cycle into the weight shift chain (``"tpu"`` timing, ws
        only); ``None``: one row per cycle. The TPU's 34 GB/s at 700 MHz is
        ~48.6 bytes per cycle (:meth:`tpu`).
    n_bits_weight : int
        Bits per weight, for ``weight_bandwidth``; the TPU's are 8.
    clock_mhz : float
        Clock for converting cycles to seconds.
    sram_kb : (float, float, float)
        Input, filter (weight) and output SRAM sizes in KiB, double-buffered
        (half of each is active), as in SCALE-Sim's config.
    dram_bandwidth : float or None
        Words per cycle between DRAM and the SRAMs; ``None``: as much as
        needed (no stalls; the report gives the bandwidth that needs).
    word_bytes : int
        Bytes per word in the SRAMs and DRAM (SCALE-Sim: 1).

    Taught in chapter 09, "The roofline and the TPU".
    """

    rows: int = 256
    cols: int = 256
    dataflow: str = "ws"
    timing: str = "tpu"
    double_buffered: bool = True
    weight_bandwidth: float | None = None
    n_bits_weight: int = 8
    clock_mhz: float = 700.0
    sram_kb: tuple = (64, 64, 64)
    dram_bandwidth: float | None = None
    word_bytes: int = 1

    def __post_init__(self):
        check_fields(self, rows=_SIZE, cols=_SIZE, dataflow=Options(DATAFLOWS), timing=Options(TIMINGS),
                     double_buffered=Bool(), weight_bandwidth=Interval(float, 0, None, closed="neither", optional=True),
                     n_bits_weight=Interval(int, 1, 64), clock_mhz=_REAL_POS, sram_kb=ListOf(_REAL_POS),
                     dram_bandwidth=Interval(float, 0, None, closed="neither", optional=True), word_bytes=_SIZE)
        if len(self.sram_kb) != 3:
            raise ValueError(f"SystolicConfig: sram_kb must be three sizes (input, filter, output) in KiB; "
                             f"got {self.sram_kb!r}.")
        object.__setattr__(self, "sram_kb", tuple(self.sram_kb))
        if self.weight_bandwidth is not None and (self.timing != "tpu" or self.dataflow != "ws"):
            raise ValueError("SystolicConfig: weight_bandwidth must be None unless timing='tpu' and dataflow='ws' "
                             "(it models the TPU's weight FIFO); "
                             f"got {self.weight_bandwidth!r} with timing={self.timing!r}, dataflow={self.dataflow!r}.")

    @classmethod
    def tpu(cls) -> SystolicConfig:
        """The TPU's matrix unit: 256 × 256 8-bit MACs at 700 MHz, weights from 34 GB/s DDR3
        (Jouppi et al., Table 2), weight-stationary, double-buffered."""
        chip = get_chip("TPU")
        return cls(rows=256, cols=256, dataflow="ws", timing="tpu", double_buffered=True,
                   weight_bandwidth=chip.bandwidth_gbs * 1e9 / (chip.clock_mhz * 1e6), n_bits_weight=8,
                   clock_mhz=chip.clock_mhz)

    @property
    def n_pes(self) -> int:
        return self.rows * self.cols

    @property
    def stationary(self) -> str:
        """What stays put in the PEs under this dataflow."""
        return STATIONARY[self.dataflow]


@dataclass(frozen=True, kw_only=True)
class Gemm:
    """One layer as ``count`` independent (M × K) @ (K × N) products (``count`` > 1: grouped or depthwise convs).

    Taught in chapter 09, "The roofline and the TPU".
    """

    name: str = "gemm"
    M: int
    K: int
    N: int
    count: int = 1

    def __post_init__(self):
        check_fields(self, name=Instance(str, "a string"), M=_SIZE, K=_SIZE, N=_SIZE, count=_SIZE)

    @property
    def macs(self) -> int:
        return self.count * self.M * self.K * self.N

    def sizes(self, dataflow: str) -> tuple[int, int, int]:
        """(sizes along the array's rows, its columns, time) under ``dataflow``."""
        return tuple(getattr(self, s) for s in MAPPING[dataflow])


@validate_params(name=Instance(str, "a string"), ifmap_h=_SIZE, ifmap_w=_SIZE, filter_h=_SIZE, filter_w=_SIZE,
                 channels=_SIZE, n_filters=_SIZE, stride=_SIZE, batch_size=_SIZE, groups=_SIZE)
def conv_gemm(name: str = "conv", *, ifmap_h: int, ifmap_w: int, filter_h: int, filter_w: int, channels: int,
              n_filters: int, stride: int = 1, batch_size: int = 1, groups: int = 1) -> Gemm:
    """A convolution as a GEMM by im2col, as SCALE-Sim maps it (no padding).

    M = batch · OH · OW with OH = ⌈(H − fh + s) / s⌉ (SCALE-Sim's formula), K = fh · fw · C / groups,
    N = filters / groups, ``count`` = groups.

    >>> conv_gemm("conv1", ifmap_h=227, ifmap_w=227, filter_h=11, filter_w=11, channels=3, n_filters=96, stride=4)
    Gemm(name='conv1', M=3025, K=363, N=96, count=1)

    Behind chapter 09, "The roofline and the TPU".
    """
    if filter_h > ifmap_h or filter_w > ifmap_w:
        raise ValueError(f"conv_gemm: the filter ({filter_h} × {filter_w}) must fit in the input "
                         f"({ifmap_h} × {ifmap_w}); got a larger filter.")
    if channels % groups or n_filters % groups:
        raise ValueError(f"conv_gemm: groups must divide channels ({channels}) and n_filters ({n_filters}); "
                         f"got {groups}.")
    oh = -(-(ifmap_h - filter_h + stride) // stride)
    ow = -(-(ifmap_w - filter_w + stride) // stride)
    return Gemm(name=name, M=batch_size * oh * ow, K=filter_h * filter_w * channels // groups,
                N=n_filters // groups, count=groups)


@validate_params(spec=OneOf(Instance(str, "an architecture name"), Instance(Architecture, "an Architecture")),
                 batch_size=_SIZE)
def network_gemms(spec, batch_size: int = 1) -> list[Gemm]:
    """The conv and fc layers of an architecture of ``effdl.architectures`` as GEMMs (convs by im2col).

    FC: M = batch, K = inputs, N = outputs. Conv: M = batch · OH · OW,
    K = (C_in / groups) · k · k, N = C_out / groups, ``count`` = groups
    (padding as the architecture defines it). ``spec``: a name
    (``"alexnet"``, ``"vgg16"``, ``"resnet50"``, ``"lenet5"`` …) or an Architecture.

    Taught in chapter 09, "The roofline and the TPU".
    """
    arch = get_architecture(spec) if isinstance(spec, str) else spec
    groups = {leaf.name: leaf.groups for leaf in arch.spec._leaves() if isinstance(leaf, Conv2d)}
    gemms = []
    for r in layer_table(arch):
        if r.kind == "fc":
            gemms.append(Gemm(name=r.name, M=batch_size, K=r.input_shape[0], N=r.output_shape[0]))
        else:
            g = groups.get(r.name, 1)
            c_out, oh, ow = r.output_shape
            gemms.append(Gemm(name=r.name, M=batch_size * oh * ow, K=r.weights // c_out, N=c_out // g, count=g))
    return gemms


@validate_params(gemm=Instance(Gemm, "a Gemm"), seed=Seed(), low=Interval(int, None, None),
                 high=Interval(int, None, None))
def random_gemm(gemm: Gemm, *, seed: int = 0, low: int = -8, high: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Random integer X (M × K) and W (K × N) in [low, high) for exact checks of the step simulator.

    Taught in chapter 09, "The roofline and the TPU".
    """
    if high <= low:
        raise ValueError(f"random_gemm: high must be an integer in [{low + 1}, inf]; got {high}.")
    rng = np.random.default_rng(seed)
    return (rng.integers(low, high, size=(gemm.M, gemm.K)), rng.integers(low, high, size=(gemm.K, gemm.N)))


__all__ = ["DATAFLOWS", "MAPPING", "STATIONARY", "TIMINGS", "Gemm", "SystolicConfig", "conv_gemm", "network_gemms",
           "random_gemm"]
