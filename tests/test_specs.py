"""effdl.hardware.specs: the chips' numbers against their sources, derived figures, lookups, bad input."""
import dataclasses

import pytest

from effdl.hardware import specs


# (chip, precision, TOPS, GB/s) as FACTS.md gives them (TPU paper Table 2; lecture; P40 datasheet)
@pytest.mark.parametrize("name, precision, tops, gbs", [
    ("TPU", "int8", 92.0, 34.0), ("K80", "fp32", 2.8, 160.0), ("Haswell", "int8", 2.6, 51.0),
    ("Haswell", "fp32", 1.3, 51.0), ("P100", "fp16", 21.0, 720.0), ("P100", "fp32", 10.6, 720.0),
    ("V100", "fp16", 120.0, 900.0), ("V100", "fp32", 15.0, 900.0), ("P40", "int8", 47.0, 346.0),
    ("Cloud TPU v2", "bf16", 180.0, None)])
def test_peaks_and_bandwidths_are_the_cited_ones(name, precision, tops, gbs):
    chip = specs.get_chip(name)
    assert chip.peak_tops(precision) == tops
    assert chip.peak_ops(precision) == tops * 1e12
    assert chip.bandwidth_gbs == gbs
    assert chip.source


def test_tpu_peak_is_its_macs_times_two_times_its_clock():
    tpu = specs.get_chip("TPU")
    assert tpu.macs == 256 * 256
    recomputed = tpu.macs * 2 * tpu.clock_mhz * 1e6 / 1e12
    assert recomputed == pytest.approx(91.7504)
    assert abs(recomputed - tpu.peak_tops()) / tpu.peak_tops() < 0.005      # the paper rounds to 92
    assert tpu.on_chip_mib == 28.0 and tpu.tdp_w == 75.0 and tpu.memory == "8 GiB DDR3"


def test_ridge_and_efficiency_are_derived_not_stored():
    tpu, k80, cpu = (specs.get_chip(n) for n in ("TPU", "K80", "Haswell"))
    assert tpu.ridge() == pytest.approx(92e12 / 34e9)
    assert k80.ridge() == pytest.approx(2.8e12 / 160e9)
    assert cpu.ridge("fp32") == pytest.approx(1.3e12 / 51e9)
    assert cpu.ridge("fp32") == cpu.ridge() < cpu.ridge("int8")     # the paper's roof is the fp32 peak
    assert tpu.tops_per_watt() == pytest.approx(92 / 75)
    assert tpu.tops_per_watt() > 30 * k80.tops_per_watt()
    assert specs.get_chip("P100").tops_per_watt() == pytest.approx(21 / 300)
    assert specs.get_chip("Cloud TPU v2").tops_per_watt() is None


@pytest.mark.parametrize("alias, name", [("tpu", "TPU"), (" TPU v1 ", "TPU"), ("cpu", "Haswell"),
                                         ("E5-2699 v3", "Haswell"), ("gpu", "K80"), ("v100", "V100"),
                                         ("tpu v2", "Cloud TPU v2"), ("P40", "P40")])
def test_get_chip_aliases(alias, name):
    assert specs.get_chip(alias) is specs.CHIPS[name]
    assert specs.get_chip(specs.CHIPS[name]) is specs.CHIPS[name]


def test_every_chip_of_the_issue_is_there_and_frozen():
    assert set(specs.CHIPS) == {"TPU", "K80", "Haswell", "P40", "P100", "V100", "Cloud TPU v2"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        specs.CHIPS["TPU"].clock_mhz = 1000.0
    rows = specs.chip_table()
    assert [r["name"] for r in rows] == list(specs.CHIPS)
    tpu_row = next(r for r in rows if r["name"] == "TPU")
    assert tpu_row["ridge"] == pytest.approx(specs.get_chip("TPU").ridge())
    assert next(r for r in rows if r["name"] == "Cloud TPU v2")["ridge"] is None


@pytest.mark.parametrize("name, exc, match", [
    ("TPU v9", ValueError, "name must be one of"), ("", ValueError, "name must be one of"),
    (3, TypeError, "name must be a chip name"), (None, TypeError, "name must be a chip name")])
def test_get_chip_bad_input(name, exc, match):
    with pytest.raises(exc, match=match):
        specs.get_chip(name)


def test_precision_and_bandwidth_errors():
    with pytest.raises(ValueError, match="precision must be one of"):
        specs.get_chip("K80").peak_tops("int8")
    with pytest.raises(TypeError, match="precision must be a string"):
        specs.get_chip("TPU").peak_tops(8)
    with pytest.raises(ValueError, match="known memory bandwidth"):
        specs.get_chip("Cloud TPU v2").ridge()


def test_haswell_roof_is_the_tpu_papers_floating_point_peak():
    """Jouppi et al., ISCA 2017, Fig. 6 draws Haswell at 1.3 TOPS with its ridge at 13 operations per
    weight byte: ≈ 26 in this book's convention (a multiply-add is 2 operations), not the 51 of its int8 rate."""
    from effdl.hardware import specs
    chip = specs.get_chip("Haswell")
    assert chip.default_precision == "fp32" and chip.peak_tops() == 1.3
    ridge = chip.peak_tops() * 1e12 / (chip.bandwidth_gbs * 1e9)
    assert 25 <= ridge <= 26.5, ridge
