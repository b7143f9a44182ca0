"""Energy and area per operation, and a first-order inference energy model.

Taught in chapter 0 (why memory, not arithmetic, dominates) and chapter 1
(narrower numbers cost less energy). Two sources, one per column
(:data:`ENERGY_SOURCE`, :data:`AREA_SOURCE`): the energies are Horowitz,
"Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm
(Han et al., NIPS 2015, Fig. 1 rounds the same numbers); the areas are not
Horowitz's — the course lecture gives them from synthesis with Synopsys Design
Compiler in TSMC 45 nm.

>>> operation_energy("dram_read_32b") / operation_energy("fp32_mult")
172.97297297297297
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effdl.validation import Interval, Options, validate_params


@dataclass(frozen=True)
class Operation:
    """One row of the energy table: energy in pJ, area in µm² (None: not given).

    Behind chapter 00, "Why efficiency".
    """

    name: str
    description: str
    energy_pj: float
    area_um2: float | None


ENERGY_SOURCE = "Horowitz, 'Computing's energy problem', ISSCC 2014, energy table (45 nm, 0.9 V)"
AREA_SOURCE = ("Han, CS231n 2017, lecture 15 (Efficient Methods and Hardware for Deep Learning): "
               "areas from synthesis with Synopsys Design Compiler, TSMC 45 nm")
# energy_pj: Horowitz's table (ENERGY_SOURCE); area_um2: the lecture's synthesis (AREA_SOURCE).
# The memory reads are per 32-bit word; the SRAM is an 8 KB array.
_TABLE = (
    Operation("int8_add", "8b int add", 0.03, 36),
    Operation("int16_add", "16b int add", 0.05, 67),
    Operation("int32_add", "32b int add", 0.1, 137),
    Operation("fp16_add", "16b FP add", 0.4, 1360),
    Operation("fp32_add", "32b FP add", 0.9, 4184),
    Operation("int8_mult", "8b int mult", 0.2, 282),
    Operation("int32_mult", "32b int mult", 3.1, 3495),
    Operation("fp16_mult", "16b FP mult", 1.1, 1640),
    Operation("fp32_mult", "32b FP mult", 3.7, 7700),
    Operation("sram_read_32b", "32b SRAM read (8 KB)", 5.0, None),
    Operation("dram_read_32b", "32b DRAM read", 640.0, None),
)
ENERGY_TABLE = {op.name: op for op in _TABLE}

# Arithmetic types with both a multiplier and an adder in the table.
ARITHMETIC = ("fp32", "fp16", "int32", "int8")
WEIGHT_MEMORY = {"dram": "dram_read_32b", "sram": "sram_read_32b"}
OPERATION = Options(tuple(ENERGY_TABLE))
COUNT = Interval(float, 0, None)                 # a number of operations per inference, >= 0


@validate_params(op=OPERATION)
def operation_energy(op: str) -> float:
    """Energy of one operation in pJ (:data:`ENERGY_SOURCE`: Horowitz, ISSCC 2014, 45 nm).

    Parameters
    ----------
    op : str
        One of ``ENERGY_TABLE``'s keys: ``int8_add int16_add int32_add
        fp16_add fp32_add int8_mult int32_mult fp16_mult fp32_mult
        sram_read_32b dram_read_32b``.

    >>> operation_energy("fp32_add")
    0.9

    Taught in chapter 00, "Why efficiency".
    """
    return ENERGY_TABLE[op].energy_pj


@validate_params(op=OPERATION)
def operation_area(op: str) -> float | None:
    """Area of one operator in µm² (:data:`AREA_SOURCE`: synthesis in TSMC 45 nm); ``None`` for the memory reads.

    >>> operation_area("int8_mult")
    282

    Taught in chapter 01, "Number representations".
    """
    return ENERGY_TABLE[op].area_um2


@validate_params()
def energy_table() -> list[dict]:
    """The table as rows for display and plots.

    Each row: ``name``, ``description``, ``energy_pj``, ``area_um2``, and the
    name's parts: ``family`` ("int", "fp", "sram", "dram"), ``bits`` (operand
    or word width) and ``op`` ("add", "mult", "read").

    Taught in chapter 00, "Why efficiency".
    """
    rows = []
    for o in _TABLE:
        head, op = o.name.split("_", 1)
        if op == "read_32b":
            family, bits, op = head, 32, "read"
        else:
            family = "fp" if head.startswith("fp") else "int"
            bits = int(head[len(family):])
        rows.append({"name": o.name, "description": o.description, "energy_pj": o.energy_pj,
                     "area_um2": o.area_um2, "family": family, "bits": bits, "op": op})
    return rows


@validate_params(arithmetic=Options(ARITHMETIC))
def mac_energy(arithmetic: str) -> float:
    """Energy of one multiply-accumulate in pJ: one mult plus one add of ``arithmetic``.

    ``"int8"`` is an 8-bit mult plus an 8-bit add (0.23 pJ); a real int8 unit
    accumulates in 32 bits, which would make it 0.2 + 0.1 = 0.3 pJ.

    Behind chapter 00, "Why efficiency".
    """
    return ENERGY_TABLE[f"{arithmetic}_mult"].energy_pj + ENERGY_TABLE[f"{arithmetic}_add"].energy_pj


@validate_params(macs=COUNT, weight_reads=COUNT, arithmetic=Options(ARITHMETIC),
                 weight_memory=Options(tuple(WEIGHT_MEMORY)), n_bits_weight=Interval(int, 1, 32))
def inference_energy(macs: Any, weight_reads: Any, *, arithmetic: str = "fp32",
                     weight_memory: str = "dram", n_bits_weight: int = 32) -> dict:
    """First-order energy of one inference, split into compute and weight memory.

    ``compute = macs × (mult + add energy of arithmetic)`` and
    ``memory = weight_reads × (energy of a 32-bit read of weight_memory) ×
    n_bits_weight / 32``.

    Simplifying assumptions (state them wherever the numbers are shown):

    - each weight is read once per inference from ``weight_memory`` (batch
      1, no cache in between), so ``weight_reads`` is the number of weights;
      a larger count models weights fetched more than once;
    - activations, partial sums, instruction fetch, control and leakage cost
      nothing (activations are taken to live in registers / on chip);
    - a narrower weight costs its share of a 32-bit access (n_bits_weight / 32),
      i.e. weights are packed densely into 32-bit words;
    - every MAC is one multiply and one add in ``arithmetic``; no MAC is
      skipped (dense layers).

    Parameters
    ----------
    macs : int or float
        Multiply-accumulates per inference, >= 0.
    weight_reads : int or float
        Weights fetched from ``weight_memory`` per inference, >= 0.
    arithmetic : {"fp32", "fp16", "int32", "int8"}, default "fp32"
    weight_memory : {"dram", "sram"}, default "dram"
        ``"sram"`` is the 8 KB SRAM of the table (5 pJ per 32 bits);
        ``"dram"`` 640 pJ per 32 bits.
    n_bits_weight : int, default 32
        Bits per stored weight, 1..32.

    Returns
    -------
    dict
        ``compute_uj``, ``memory_uj``, ``total_uj`` (µJ per inference),
        ``memory_fraction`` (memory / total, 0 if total is 0), ``mac_pj`` and
        ``weight_read_pj`` (the per-item energies used), and the inputs
        ``arithmetic``, ``weight_memory``, ``n_bits_weight``.

    Examples
    --------
    AlexNet-like: 724 M MACs, 61 M weights read once each from DRAM.

    >>> e = inference_energy(724e6, 61e6)
    >>> round(e["compute_uj"]), round(e["memory_uj"]), round(e["memory_fraction"], 3)
    (3330, 39040, 0.921)

    Taught in chapter 00, "Why efficiency".
    """
    mac_pj = mac_energy(arithmetic)
    weight_read_pj = ENERGY_TABLE[WEIGHT_MEMORY[weight_memory]].energy_pj * n_bits_weight / 32
    compute_uj = macs * mac_pj * 1e-6  # 1 pJ = 1e-6 µJ
    memory_uj = weight_reads * weight_read_pj * 1e-6
    total_uj = compute_uj + memory_uj
    return {
        "compute_uj": compute_uj,
        "memory_uj": memory_uj,
        "total_uj": total_uj,
        "memory_fraction": memory_uj / total_uj if total_uj > 0 else 0.0,
        "mac_pj": mac_pj,
        "weight_read_pj": weight_read_pj,
        "arithmetic": arithmetic,
        "weight_memory": weight_memory,
        "n_bits_weight": n_bits_weight,
    }
