"""Tests for effdl.hardware.energy: the Horowitz table, hand-computed energies,
AlexNet-like numbers (DRAM dominates) and bad inputs."""
import doctest
import json

import pytest

import effdl.hardware.energy as en
from effdl.hardware.energy import (ENERGY_TABLE, energy_table, inference_energy, mac_energy, operation_area,
                                   operation_energy)


def test_docstring_examples():
    assert doctest.testmod(en).failed == 0


@pytest.mark.parametrize("op, pj, um2", [
    ("int8_add", 0.03, 36), ("int16_add", 0.05, 67), ("int32_add", 0.1, 137),
    ("fp16_add", 0.4, 1360), ("fp32_add", 0.9, 4184), ("int8_mult", 0.2, 282),
    ("int32_mult", 3.1, 3495), ("fp16_mult", 1.1, 1640), ("fp32_mult", 3.7, 7700),
    ("sram_read_32b", 5.0, None), ("dram_read_32b", 640.0, None),
])
def test_table_matches_horowitz(op, pj, um2):
    assert operation_energy(op) == pj and operation_area(op) == um2


def test_table_rows():
    rows = energy_table()
    assert [r["name"] for r in rows] == list(ENERGY_TABLE) and len(rows) == 11
    assert all(set(r) == {"name", "description", "energy_pj", "area_um2", "family", "bits", "op"} for r in rows)
    assert {(r["family"], r["bits"], r["op"]) for r in rows if r["name"] in ("fp16_mult", "dram_read_32b")} \
        == {("fp", 16, "mult"), ("dram", 32, "read")}
    json.dumps(rows)
    # the ordering the chapters teach: memory >> arithmetic, float > int, wide > narrow
    e = operation_energy
    assert e("dram_read_32b") / e("sram_read_32b") == 128
    assert e("int8_add") < e("int16_add") < e("int32_add") < e("fp16_add") < e("fp32_add")
    assert e("int8_mult") < e("fp16_mult") < e("int32_mult") < e("fp32_mult")


@pytest.mark.parametrize("arithmetic, pj", [("fp32", 4.6), ("fp16", 1.5), ("int32", 3.2), ("int8", 0.23)])
def test_mac_energy(arithmetic, pj):
    assert mac_energy(arithmetic) == pytest.approx(pj)


def test_inference_energy_hand_computed():
    # 1000 MACs, 100 weights. fp32 MAC 3.7 + 0.9 = 4.6 pJ -> 4600 pJ = 0.0046 µJ;
    # DRAM 100 × 640 pJ = 64000 pJ = 0.064 µJ.
    e = inference_energy(1000, 100)
    assert e["compute_uj"] == pytest.approx(0.0046)
    assert e["memory_uj"] == pytest.approx(0.064)
    assert e["total_uj"] == pytest.approx(0.0686)
    assert e["memory_fraction"] == pytest.approx(0.064 / 0.0686)
    assert (e["mac_pj"], e["weight_read_pj"]) == (pytest.approx(4.6), 640.0)
    assert (e["arithmetic"], e["weight_memory"], e["n_bits_weight"]) == ("fp32", "dram", 32)
    json.dumps(e)
    # int8 arithmetic, 8-bit weights in SRAM: 1000 × 0.23 pJ; 100 × 5 pJ × 8/32
    e = inference_energy(1000, 100, arithmetic="int8", weight_memory="sram", n_bits_weight=8)
    assert e["compute_uj"] == pytest.approx(230e-6)
    assert e["memory_uj"] == pytest.approx(125e-6)
    assert e["weight_read_pj"] == 1.25


def test_inference_energy_zero():
    e = inference_energy(0, 0)
    assert e["total_uj"] == 0.0 and e["memory_fraction"] == 0.0


def test_alexnet_dram_dominates():
    # AlexNet: 61 M weights, 724 M MACs (FACTS.md; Han et al.)
    dram = inference_energy(724e6, 61e6, weight_memory="dram")
    sram = inference_energy(724e6, 61e6, weight_memory="sram")
    assert dram["compute_uj"] == sram["compute_uj"] == pytest.approx(724e6 * 4.6e-6)
    assert dram["memory_uj"] == pytest.approx(39_040.0)  # 61e6 × 640 pJ = 39.04 mJ
    assert sram["memory_uj"] == pytest.approx(305.0)
    assert dram["memory_fraction"] > 0.9 and dram["memory_uj"] > 10 * dram["compute_uj"]
    assert sram["memory_fraction"] < 0.1
    # fewer bits per weight helps exactly in proportion
    q = inference_energy(724e6, 61e6, n_bits_weight=4)
    assert q["memory_uj"] == pytest.approx(dram["memory_uj"] / 8)


@pytest.mark.parametrize("op, exc", [("fp64_add", ValueError), ("FP32_ADD", ValueError), ("", ValueError),
                                     (None, TypeError), (3, TypeError)])
def test_operation_bad_names(op, exc):
    with pytest.raises(exc, match="^operation_energy: op must be"):
        operation_energy(op)
    with pytest.raises(exc, match="^operation_area: op must be"):
        operation_area(op)


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((-1, 0), {}, ValueError, r"^inference_energy: macs must be a real number in \[0"),
    ((0, -5), {}, ValueError, r"^inference_energy: weight_reads must be a real number in \[0"),
    ((True, 0), {}, TypeError, "^inference_energy: macs must be a real number"),
    (("1e6", 0), {}, TypeError, "^inference_energy: macs must be a real number"),
    ((1, float("inf")), {}, ValueError, "^inference_energy: weight_reads must be finite"),
    ((1, float("nan")), {}, ValueError, "^inference_energy: weight_reads must be finite"),
    ((1, 1), {"arithmetic": "int16"}, ValueError, "^inference_energy: arithmetic must be one of"),
    ((1, 1), {"arithmetic": 32}, TypeError, "^inference_energy: arithmetic must be a string"),
    ((1, 1), {"weight_memory": "hbm"}, ValueError, "^inference_energy: weight_memory must be one of"),
    ((1, 1), {"n_bits_weight": 0}, ValueError, r"^inference_energy: n_bits_weight must be an integer in \[1, 32\]"),
    ((1, 1), {"n_bits_weight": 64}, ValueError, "^inference_energy: n_bits_weight must be"),
    ((1, 1), {"n_bits_weight": 8.0}, TypeError, "^inference_energy: n_bits_weight must be an integer"),
    ((1, 1), {"n_bits_weight": True}, TypeError, "^inference_energy: n_bits_weight must be an integer"),
])
def test_inference_energy_bad_inputs(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        inference_energy(*args, **kwargs)


def test_inference_energy_keyword_only():
    with pytest.raises(TypeError):
        inference_energy(1, 1, "fp32")


def test_each_column_names_its_own_source():
    """Energies are Horowitz's (ISSCC 2014); the areas are the lecture's synthesis, not Horowitz's."""
    from effdl.hardware import energy as E
    assert "Horowitz" in E.ENERGY_SOURCE and "ISSCC 2014" in E.ENERGY_SOURCE
    assert "Horowitz" not in E.AREA_SOURCE and "Design Compiler" in E.AREA_SOURCE and "45 nm" in E.AREA_SOURCE
