"""What a run of the array found: per-fold arrays, memory traffic, one layer, a whole network.

Part of :mod:`effdl.hardware.systolic` (chapter 9). The closed form
(:func:`~effdl.hardware.systolic.model.estimate`) and the step simulator
(:func:`~effdl.hardware.systolic.step.simulate`) return the same
:class:`SystolicResult`; the simulator's also carries the operands, the
product and, on request, the trace. Views read these and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from effdl.hardware.systolic.config import Gemm, SystolicConfig


@dataclass(frozen=True)
class Folds:
    """One entry per fold, in the order the array runs them (array-column tiles outer, array-row tiles inner).

    ``r0:r1`` and ``c0:c1`` are the ranges of the GEMM dimensions mapped on
    the array's rows and columns (ws: K and N; os: M and N; is: K and M);
    ``start`` is the fold's first cycle; ``load`` its exposed (stalling)
    load cycles; ``fill + stream + drain`` its compute cycles.

    Behind chapter 09, "The roofline and the TPU".
    """

    r0: np.ndarray
    r1: np.ndarray
    c0: np.ndarray
    c1: np.ndarray
    start: np.ndarray
    load: np.ndarray
    fill: np.ndarray
    stream: np.ndarray
    drain: np.ndarray

    def __len__(self) -> int:
        return len(self.r0)

    @property
    def cycles(self) -> np.ndarray:
        return self.load + self.fill + self.stream + self.drain


@dataclass(frozen=True)
class Traffic:
    """Words moved for one GEMM (× its count), as SCALE-Sim's access reports count them.

    SRAM: reads of the input (ifmap) and filter SRAMs by the array, writes of
    outputs (partial sums included) into the output SRAM. DRAM: words
    fetched into the input and filter SRAMs and written back from the
    output SRAM. ``bandwidth_needed``: DRAM words per cycle for zero stalls;
    ``stall_cycles``: extra cycles at the config's ``dram_bandwidth``.

    Behind chapter 09, "The roofline and the TPU".
    """

    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int
    dram_ifmap_reads: int
    dram_filter_reads: int
    dram_ofmap_writes: int
    word_bytes: int
    bandwidth_needed: float
    stall_cycles: int

    @property
    def sram_reads(self) -> dict[str, int]:
        return {"ifmap": self.sram_ifmap_reads, "filter": self.sram_filter_reads}

    @property
    def sram_writes(self) -> dict[str, int]:
        return {"ofmap": self.sram_ofmap_writes}

    @property
    def dram_bytes(self) -> dict[str, int]:
        b = self.word_bytes
        return {"ifmap": self.dram_ifmap_reads * b, "filter": self.dram_filter_reads * b,
                "ofmap": self.dram_ofmap_writes * b}


@dataclass(frozen=True)
class SystolicResult:
    """One GEMM (a layer) on the array, from the closed form or the step simulator.

    ``cycles = load_cycles + fill_cycles + stream_cycles + drain_cycles``
    under ``timing="tpu"``, one less under ``timing="scalesim"`` (SCALE-Sim's
    total is the index of the last cycle); a ``count`` > 1 multiplies every
    total. ``total_cycles`` adds DRAM stalls. ``mapping_efficiency`` and
    ``compute_utilization`` are SCALE-Sim's per-fold averages;
    ``utilization`` is its "overall utilisation", MACs ÷ (total cycles × PEs).
    ``folds``, ``output`` (the (M, N) product), ``trace``, ``x`` and ``w``
    come from the step simulator (``None`` from the closed form, which
    gives per-fold arrays through ``fold_table``).

    Behind chapter 09, "The roofline and the TPU".
    """

    config: SystolicConfig
    gemm: Gemm
    cycles: int
    load_cycles: int
    fill_cycles: int
    stream_cycles: int
    drain_cycles: int
    n_folds: int
    mapping_efficiency: float
    compute_utilization: float
    traffic: Traffic
    folds: Folds | None = field(default=None, repr=False)
    output: np.ndarray | None = field(default=None, repr=False)
    trace: object | None = field(default=None, repr=False)
    x: np.ndarray | None = field(default=None, repr=False)
    w: np.ndarray | None = field(default=None, repr=False)

    @property
    def macs(self) -> int:
        return self.gemm.macs

    @property
    def total_cycles(self) -> int:
        """Cycles including DRAM stalls."""
        return self.cycles + self.traffic.stall_cycles

    @property
    def utilization(self) -> float:
        """MACs ÷ (total cycles × PEs) (a zero-cycle total counts as one)."""
        return self.macs / (max(self.total_cycles, 1) * self.config.n_pes)

    @property
    def seconds(self) -> float:
        return self.total_cycles / (self.config.clock_mhz * 1e6)

    def row(self) -> dict:
        """The layer as one JSON-able row of a SCALE-Sim-style report."""
        t = self.traffic
        return {"name": self.gemm.name, "M": self.gemm.M, "K": self.gemm.K, "N": self.gemm.N,
                "count": self.gemm.count, "folds": self.n_folds * self.gemm.count, "cycles": self.total_cycles,
                "overall_util": self.utilization, "mapping_eff": self.mapping_efficiency,
                "compute_util": self.compute_utilization, "sram_reads": t.sram_reads, "sram_writes": t.sram_writes,
                "dram_bytes": t.dram_bytes, "bandwidth_needed": t.bandwidth_needed, "stall_cycles": t.stall_cycles,
                "seconds": self.seconds}


@dataclass(frozen=True)
class NetworkResult:
    """Many GEMMs (a network's layers) run one after the other on the same array.

    Behind chapter 09, "The roofline and the TPU".
    """

    config: SystolicConfig
    layers: tuple[SystolicResult, ...]

    @property
    def cycles(self) -> int:
        return sum(r.total_cycles for r in self.layers)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def utilization(self) -> float:
        return self.macs / (max(self.cycles, 1) * self.config.n_pes)

    @property
    def seconds(self) -> float:
        return self.cycles / (self.config.clock_mhz * 1e6)

    def rows(self) -> list[dict]:
        return [r.row() for r in self.layers]


__all__ = ["Folds", "NetworkResult", "SystolicResult", "Traffic"]
