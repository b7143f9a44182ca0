"""Chapters 14 and 16: training chips against FACTS.md, the microprocessor trend data, the exercises
(the GPU benchmarks: tests/test_gpu_bench.py)."""
import hashlib
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from effdl import exercises
from effdl.data import DATA_DIR, DataError
from effdl.hardware import gpu_bench, roofline, specs, trends
from effdl.training import mixed_precision


# ------------------------------------------------------------------------ chips
# (chip, fp32 TFLOPS, 16-bit TFLOPS or None, GB/s, memory) as FACTS.md "Training hardware" gives them;
# the K40's and M40's bandwidths are not in FACTS.md and are checked against their cited source below.
@pytest.mark.parametrize("name, fp32, half, gbs, memory", [
    ("K40", 5.04, None, 288.0, "12 GB GDDR5"), ("M40", 6.8, None, 288.0, "24 GB GDDR5"),
    ("P100", 10.6, 21.0, 720.0, "16 GB HBM2"), ("V100", 15.0, 120.0, 900.0, "16 GB HBM2"),
    ("KNL", 7.0, None, 400.0, "16 GB MCDRAM (on package)"), ("Cloud TPU v2", None, 180.0, None, None)])
def test_training_chips_are_the_cited_ones(name, fp32, half, gbs, memory):
    chip = specs.get_chip(name)
    assert chip is specs.TRAINING_CHIPS[name]
    if fp32 is not None:
        assert chip.peak_tops("fp32") == fp32
    if half is not None:
        assert max(v for p, v in chip.peaks if p in ("fp16", "bf16")) == half
    assert chip.bandwidth_gbs == gbs and chip.memory == memory
    assert chip.source.strip()


def test_numbers_outside_facts_name_their_source():
    k40, m40, knl = (specs.get_chip(n) for n in ("K40", "M40", "KNL"))
    assert "288 GB/s" in k40.source and "Microway" in k40.source and "BD-06902-001" in k40.source
    assert "288 GB/s" in m40.source and "2015" in m40.source
    assert "June 2016" in knl.source
    assert (k40.year, m40.year, knl.year) == (2013, 2015, 2016)
    # the K40's 5.04 TFLOPS is its board spec's 2880 cores × 2 × 875 MHz boost clock
    assert k40.macs * 2 * k40.clock_mhz * 1e6 / 1e12 == pytest.approx(k40.peak_tops("fp32"))


def test_training_chip_table_and_pod():
    rows = specs.training_chip_table()
    assert [r["name"] for r in rows] == ["K40", "M40", "P100", "KNL", "V100", "Cloud TPU v2"]
    assert [r["year"] for r in rows] == sorted(r["year"] for r in rows)
    v100 = next(r for r in rows if r["name"] == "V100")
    assert v100["low_precision"] == "fp16" and v100["low_precision_tflops"] == 120.0
    assert v100["fp32_ridge"] == pytest.approx(15e12 / 900e9)
    assert next(r for r in rows if r["name"] == "Cloud TPU v2")["fp32_ridge"] is None
    assert all(r["source"] for r in rows)
    pod = specs.pod_pflops(specs.CLOUD_TPU_V2_POD_SIZE)
    assert pod == pytest.approx(64 * 180 / 1000)
    assert abs(pod - specs.CLOUD_TPU_V2_POD_PFLOPS) / specs.CLOUD_TPU_V2_POD_PFLOPS < 0.005   # the lecture rounds
    assert specs.pod_pflops(2, "V100", "fp32") == pytest.approx(0.03)
    # chapter 9's registry is unchanged
    assert set(specs.CHIPS) == {"TPU", "K80", "Haswell", "P40", "P100", "V100", "Cloud TPU v2"}


@pytest.mark.parametrize("alias, name", [("k40", "K40"), (" M40 ", "M40"), ("knights landing", "KNL"),
                                         ("Xeon Phi", "KNL"), ("tpu v2", "Cloud TPU v2")])
def test_training_chip_aliases(alias, name):
    assert specs.get_chip(alias).name == name


def test_training_time_oracle():
    macs = 3.857973248e9                                       # ResNet-50 forward multiply-adds
    assert specs.training_flops(macs, 1.2e6, 90) == pytest.approx(6 * macs * 1.2e6 * 90)
    assert specs.training_time_s(1.2e17, 120.0, 0.5) == pytest.approx(2000.0)
    assert specs.training_time_s(0.0, 1.0) == 0.0


@pytest.mark.parametrize("call, exc, match", [
    (lambda: specs.training_time_s(1e15, 10.0, 0.0), ValueError,
     r"training_time_s: utilization must be a real number in \(0, 1\]"),
    (lambda: specs.training_time_s(1e15, 10.0, 1.5), ValueError, "utilization must be a real number in"),
    (lambda: specs.training_time_s(1e15, 0.0, 0.5), ValueError, "peak_tflops must be a real number in"),
    (lambda: specs.training_time_s(1e15, 10.0, True), TypeError, "utilization must be a real number"),
    (lambda: specs.training_flops(-1.0, 10), ValueError, "training_flops: macs_per_example must be a real number in"),
    (lambda: specs.training_flops(1.0, "10"), TypeError, "n_examples must be a real number"),
    (lambda: specs.pod_pflops(0), ValueError, "n_devices must be an integer in"),
    (lambda: specs.pod_pflops(64, "TPU v9"), ValueError, "pod_pflops: chip must be one of"),
    (lambda: specs.get_chip("K41"), ValueError, "get_chip: name must be one of")])
def test_training_hardware_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------------ trends
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_trends_load_and_their_story():
    t = trends.load_trends()
    assert {k: len(v) for k, v in t.items()} == {"transistors": 99, "single_thread": 74, "frequency": 101,
                                                "power": 101, "cores": 90}
    first = t["transistors"]
    assert first.years[0] == 1971.875 and first.values[0] == pytest.approx(2.308, abs=1e-3)   # Intel 4004
    for s in t.values():
        assert (s.years[1:] >= s.years[:-1]).all() and (s.values > 0).all()
    # transistors double every ~2 years before and after 2005; frequency stops; cores start growing
    for window in ((1971, 2005), (2005, 2022)):
        assert 1.7 < trends.doubling_time(t["transistors"], *window) < 2.4
    assert trends.growth_per_year(t["frequency"], 1971, 2005) > 1.25
    assert trends.growth_per_year(t["frequency"], 2005, 2022) < 1.01
    assert trends.doubling_time(t["frequency"], 2005, 2022) == math.inf
    assert trends.growth_per_year(t["single_thread"], 2005, 2022) < trends.growth_per_year(
        t["single_thread"], 1985, 2005) - 0.2
    assert trends.growth_per_year(t["cores"], 2005, 2022) > 1.2
    # growth_per_year is the least-squares slope: an exact exponential gives its rate back
    years = np.arange(2000.0, 2010.0)
    exp = trends.Series("x", "u", "x", years, 3.0 * 1.5 ** (years - 2000))
    assert trends.growth_per_year(exp, 2000, 2010) == pytest.approx(1.5)


def test_trends_corrupt_copy_is_refused_and_data_untouched(tmp_path):
    real = DATA_DIR / trends.TRENDS_FILE
    before = _sha(real)
    (tmp_path / "trends").mkdir()
    shutil.copy(DATA_DIR / "MANIFEST", tmp_path / "MANIFEST")
    copy = tmp_path / trends.TRENDS_FILE
    text = real.read_text()
    copy.write_text(text.replace("2.30824152676", "2.30824152677", 1))          # same size, one digit changed
    with pytest.raises(DataError, match="is altered"):
        trends.load_trends(data_dir=tmp_path)
    copy.write_text(text[: len(text) // 2])                                       # truncated
    with pytest.raises(DataError, match="truncated or altered"):
        trends.load_trends(data_dir=tmp_path)
    copy.unlink()
    with pytest.raises(DataError, match="is missing"):
        trends.load_trends(data_dir=tmp_path)
    # a malformed file whose manifest row was updated with it: the parser names the line
    bad = text.replace("transistors,thousands,1971.875,2.30824152676", "transistors,thousands,1971.875,-2", 1)
    copy.write_text(bad)
    manifest = (tmp_path / "MANIFEST").read_text().replace(_sha(real), _sha(copy))
    manifest = manifest.replace(f"\t{real.stat().st_size}\t", f"\t{copy.stat().st_size}\t")
    (tmp_path / "MANIFEST").write_text(manifest)
    with pytest.raises(DataError, match=r"line 2: value must be a finite positive number"):
        trends.load_trends(data_dir=tmp_path)
    assert _sha(real) == before


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace("series,unit,year,value", "series,year,value", 1), "header must be"),
    (lambda t: t.replace("cores,logical cores,2021.9,64", "gpus,logical cores,2021.9,64"), "series must be one of"),
    (lambda t: t.replace("frequency,MHz,2011.16,3470", "frequency,GHz,2011.16,3470"), "frequency must be in 'MHz'"),
    (lambda t: t.replace("power,W,2011.16,130", "power,W,2011.16,lots"), "must be numbers"),
    (lambda t: t.replace("power,W,2011.16,130", "power,W,1911.16,130"), "year must be in"),
    (lambda t: t.replace("power,W,2011.16,130", "power,W,2011.16,nan"), "finite positive"),
    (lambda t: t.replace("power,W,2011.16,130", "power,W,2011.16"), "expected 4 fields"),
    (lambda t: "\n".join(l for l in t.splitlines() if not l.startswith("cores,")), "series 'cores' has no points"),
    (lambda t: "", "header must be")])
def test_parse_trends_errors(edit, match):
    text = (DATA_DIR / trends.TRENDS_FILE).read_text()
    with pytest.raises(DataError, match=match):
        trends.parse_trends(edit(text), source="copy.csv")


def test_convert_rupp_round_trip(tmp_path):
    text = (DATA_DIR / trends.TRENDS_FILE).read_text()
    t = {}
    for line in text.splitlines()[1:]:
        name, _, year, value = line.split(",")
        t.setdefault(name, []).append(f"{year}  {value}")
    for name, (_, _, filename) in trends.SERIES.items():
        lines = t[name][:3] + ["####"] + [t[name][3] + "   # a comment"] + t[name][4:]
        (tmp_path / filename).write_text("\n".join(lines) + "\n")
    assert trends.convert_rupp(tmp_path).replace("  ", "") == text
    (tmp_path / "cores.dat").unlink()
    with pytest.raises(FileNotFoundError, match="cores.dat"):
        trends.convert_rupp(tmp_path)


def test_trend_helpers_bad_input():
    s = trends.load_trends()["cores"]
    with pytest.raises(ValueError, match="end must be after start"):
        s.window(2010, 2000)
    with pytest.raises(ValueError, match="at least two different years"):
        trends.growth_per_year(s, 1960, 1971)
    with pytest.raises(TypeError, match="series must be"):
        trends.growth_per_year([1, 2], 2000, 2010)
    with pytest.raises(ValueError, match="name must be one of"):
        trends.series_label("gpus")
    with pytest.raises(TypeError, match="text must be"):
        trends.parse_trends(b"series,unit,year,value")


# --------------------------------------------------------------------- exercises
def test_exercise_checks_accept_answers_and_reject_mistakes():
    def days(flops, peak, u):
        if not 0 < u <= 1:
            raise ValueError("utilization")
        return flops / (peak * 1e12 * u) / 86400

    assert "passed" in exercises.check_training_days(days, seed=3)
    with pytest.raises(AssertionError, match="seconds, not days"):
        exercises.check_training_days(lambda f, p, u: f / (p * 1e12 * u))
    assert "passed" in exercises.check_tensor_core_fp32_mma(
        lambda a, b, c: a.half().float() @ b.half().float() + c, seed=3)
    with pytest.raises(AssertionError):
        exercises.check_tensor_core_fp32_mma(
            lambda a, b, c: mixed_precision.tensor_core_mma(a, b, c, accumulate="fp16"))
    assert "passed" in exercises.check_two_four_mask(gpu_bench.two_four_mask, seed=3)
    with pytest.raises(AssertionError, match="exactly 2"):
        exercises.check_two_four_mask(lambda w: w.abs() > w.abs().median())
    assert "passed" in exercises.check_matmul_intensity(
        lambda m, k, n, b: roofline.fc_work(k, n, m, n_bits_weight=8 * b, n_bits_act=8 * b).intensity("dram"), seed=3)
    with pytest.raises(AssertionError, match="intensity is off"):
        exercises.check_matmul_intensity(lambda m, k, n, b: m * k * n / (b * (m * k + k * n + m * n)))
