"""Reading GPU runs: the opt-in switch, the recorded runs, and their rows next to NVIDIA's datasheets.

A chapter shows GPU figures in one of three ways (:func:`gpu_mode`):
"recorded" by default — the runs of ``benchmarks/gpu_appendix.py`` stored
as ``benchmarks/results/gpu_*.json`` (:func:`recorded_runs`) beside the
cited datasheet peaks (:data:`DATASHEET`) — so that a chapter's stored
outputs are the same on a CPU-only and on a CUDA machine; "live" only when
the reader sets ``EFFDL_GPU=1`` on a machine with CUDA; "no-cuda" when it is
set without one.

Training steps of different networks are never one series:
:func:`step_time_columns` labels every column with its run *and* its model.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ...validation import Bool, Instance, ListOf, Options, validate_params
from .kernels import INT8_LAYOUTS, MATMUL_DTYPES
from .report import SECTIONS


GPU_ENV = "EFFDL_GPU"            # "1": chapters measure this machine's GPU instead of showing recorded runs
RESULTS_DIR = Path(__file__).resolve().parents[3] / "benchmarks" / "results"
# NVIDIA's datasheet peaks (SXM boards), dense: the datasheets list Tensor Core rates "with
# sparsity", twice these. H100: NVIDIA H100 Tensor Core GPU datasheet (2022); H200: NVIDIA H200
# Tensor Core GPU datasheet (2023): the same compute as the H100, faster HBM3e.
DATASHEET = {
    "H100 SXM": {"source": "NVIDIA H100 Tensor Core GPU datasheet (2022)", "bib": "nvidia2022h100",
                 "bandwidth_tbs": 3.35, "int8_tops": 1979.0,
                 "tflops": {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5}},
    "H200 SXM": {"source": "NVIDIA H200 Tensor Core GPU datasheet (2023)", "bib": "nvidia2023h200",
                 "bandwidth_tbs": 4.8, "int8_tops": 1979.0,
                 "tflops": {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5}},
}
REPORT = Instance(dict, "a dict from gpu_report()")
CHIP = Options(tuple(DATASHEET))


@validate_params(environ=Instance(Mapping, "a mapping of environment variables", optional=True))
def gpu_mode(environ: Mapping | None = None) -> str:
    """"recorded" (the default), "live" (``EFFDL_GPU=1`` and a CUDA device) or "no-cuda" (``EFFDL_GPU=1``, none).

    ``environ``: the environment to read (None: ``os.environ``). Only the
    switch decides whether a chapter measures; CUDA being present never
    does, so stored outputs do not depend on the machine.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    env = os.environ if environ is None else environ
    if env.get(GPU_ENV, "").strip() != "1":
        return "recorded"
    return "live" if torch.cuda.is_available() else "no-cuda"


@validate_params(folder=Instance((str, os.PathLike), "a folder path", optional=True),
                 section=Options(SECTIONS, optional=True), include_quick=Bool())
def recorded_runs(folder=None, *, section: str | None = None, include_quick: bool = False) -> list[dict]:
    """The runs recorded as ``gpu_*.json`` in ``folder`` (None: ``benchmarks/results``), by file name.

    Each is :func:`gpu_report`'s dict plus ``"file"`` (its name). Smoke-test
    runs (``"quick": true``) are left out unless ``include_quick``;
    ``section``: only runs in which that section succeeded. A missing folder
    gives ``[]``; a file that is not a JSON object raises ``ValueError``.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    folder = RESULTS_DIR if folder is None else Path(folder)
    runs = []
    for path in sorted(folder.glob("gpu_*.json")) if folder.is_dir() else []:
        try:
            run = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"recorded_runs: {path} is not valid JSON ({err}).") from None
        if not isinstance(run, dict):
            raise ValueError(f"recorded_runs: {path} must hold a JSON object from gpu_report(); "
                             f"got {type(run).__name__}.")
        if run.get("quick") and not include_quick:
            continue
        if section is not None and not (isinstance(run.get(section), dict) and "error" not in run[section]):
            continue
        runs.append({**run, "file": path.name})
    return runs


def _ok(part) -> bool:
    return isinstance(part, dict) and "error" not in part


@validate_params(run=REPORT)
def run_label(run: dict) -> str:
    """A run's column header: the device's name and the date it was measured.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    device = run.get("device")
    name = device.get("name", "unknown GPU") if _ok(device) else "unknown GPU"
    return f"{name} ({run.get('date', 'undated')})"


def _peaks(chip: str) -> dict:
    sheet = DATASHEET[chip]
    return {"bandwidth": sheet["bandwidth_tbs"], **sheet["tflops"], "int8": sheet["int8_tops"]}


def _failed(key: str, section: str, part: dict) -> dict:
    return {"key": key, "measurement": f"{section}: failed ({part['error'][:60]})", "unit": "", "kind": None,
            "value": "failed"}


def _measured_rows(report: dict) -> list[dict]:
    """(key, measurement, unit, peak kind, value) rows of one report; a failed part is one "failed" row."""
    rows = []
    copy = report["copy"]
    rows.append({"key": "copy", "measurement": "device-to-device copy (read + write)", "unit": "TB/s",
                 "kind": "bandwidth", "value": copy["gbs"] / 1e3} if _ok(copy) else _failed("copy", "copy", copy))
    matmul = report["matmul"]
    if not _ok(matmul):
        rows.append(_failed("matmul", "matmul", matmul))
    else:
        for d, r in matmul.items():
            key = f"matmul.{r.get('n')}.{d}"
            rows.append({"key": key, "measurement": f"matmul {r['n']}³ {d}", "unit": "TFLOP/s", "kind": d,
                         "value": r["tflops"]} if _ok(r) else _failed(key, f"matmul {d}", r))
    i8 = report["int8"]
    if not _ok(i8):
        rows.append(_failed("int8", "int8", i8))
    else:
        for layout, words in INT8_LAYOUTS.items():
            rows.append({"key": f"int8.{i8['m']}.{i8['k']}.{i8['n']}.{layout}", "unit": "TOPS", "kind": "int8",
                         "measurement": f"matmul {i8['m']}×{i8['k']}×{i8['n']} int8 (torch._int_mm), {words}",
                         "value": i8["int8_tops"][layout]})
    sparse = report["sparse"]
    for s in sparse if isinstance(sparse, list) else [sparse]:
        shape = f"{s.get('m')}×{s.get('k')}×{s.get('n')}"
        key = f"sparse.{shape}.{s.get('backend')}"
        rows.append({"key": key, "measurement": f"2:4 sparse fp16 {shape} ({s['backend']}), speed-up over dense",
                     "unit": "× dense", "kind": None, "value": s["speedup"]} if _ok(s) else
                    _failed(key, f"2:4 sparse {shape}" if "m" in s else "2:4 sparse", s))
    step = report["training_step"]
    if not _ok(step):
        rows.append(_failed("training_step", "training step", step))
    else:
        model = step.get("model", {"name": "model not recorded"})
        for mode, ms in step["step_ms"].items():
            rows.append({"key": f"step.{model['name']}.{step['batch_size']}.{mode}", "unit": "ms", "kind": None,
                         "measurement": f"training step of {_model_words(model)}, batch {step['batch_size']}, {mode}",
                         "value": ms})
    auto = report["autocast"]
    if not _ok(auto):
        rows.append(_failed("autocast", "autocast", auto))
    else:
        for name in (k for k in auto if k not in ("arch", "epochs")):
            rows.append({"key": f"autocast.{name}", "unit": "s", "kind": None, "value": auto[name]["seconds"],
                         "measurement": f"LeNet-5 on MNIST, {auto.get('epochs', 2)} epochs, "
                                        f"{'fp32' if name == 'fp32' else 'torch.autocast ' + name} (wall clock)"})
    return rows


def _model_words(model: dict) -> str:
    params = f" ({model['n_params'] / 1e6:.2f} M parameters)" if "n_params" in model else ""
    return f"{model['name']}{params}"


@validate_params(report=Instance(dict, "a dict from gpu_report()", optional=True), chip=CHIP)
def report_rows(report: dict | None = None, chip: str = "H200 SXM") -> list[dict]:
    """A measurement report (from :func:`gpu_report`) as table rows ``{"key", "measurement", "value", "unit",
    "peak"}``, ``peak`` being ``chip``'s datasheet figure where the datasheet has one (None otherwise).

    A failed section or part is one row whose ``value`` is "failed". With
    ``report=None``: the datasheet's rows alone, ``value`` None.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    peaks = _peaks(chip)
    if report is None:
        labels = {"bandwidth": ("memory bandwidth", "TB/s"), "int8": ("matmul int8", "TOPS")}
        rows = []
        for kind, peak in peaks.items():
            measurement, unit = labels.get(kind, (f"matmul {kind}", "TFLOP/s"))
            rows.append({"key": kind, "measurement": measurement, "unit": unit, "peak": peak, "value": None})
        return rows
    missing = set(SECTIONS) - set(report)
    if missing:
        raise ValueError(f"report_rows: report must hold the sections of gpu_report() {list(SECTIONS)}; "
                         f"got one without {sorted(missing)}.")
    rows = _measured_rows(report)
    for row in rows:
        row["peak"] = peaks.get(row.pop("kind"))
    return rows


@validate_params(runs=ListOf(REPORT, nonempty=False), chip=CHIP)
def comparison_table(runs: list[dict], chip: str = "H200 SXM") -> tuple[list[dict], dict]:
    """``(rows, columns)`` for ``markdown_table``: every measurement of ``runs`` next to ``chip``'s datasheet peak.

    One row per measurement (the same measurement in two runs shares a row,
    and a part that failed in one run shows "failed" there), one column per
    run (``run_0``, …, headed by :func:`run_label`). Without runs: the
    datasheet's peaks alone.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    columns = {"measurement": "measurement", "unit": "unit", "peak": f"{chip}, datasheet peak"}
    if not runs:
        return report_rows(None, chip), columns
    rows: dict[str, dict] = {}
    for i, run in enumerate(runs):
        columns[f"run_{i}"] = run_label(run)
        for r in report_rows(run, chip):
            row = rows.setdefault(r["key"], {})
            if "measurement" not in row or (row["failed"] and r["value"] != "failed"):   # a success names the row
                row.update(measurement=r["measurement"], unit=r["unit"], peak=r["peak"], failed=r["value"] == "failed")
            row[f"run_{i}"] = r["value"]
    return [{k: v for k, v in row.items() if k != "failed"} for row in rows.values()], columns


@validate_params(run=REPORT)
def format_rates(run: dict) -> dict[str, float]:
    """A run's matmul rates by format: TFLOP/s for fp32, tf32, bf16, fp16; TOPS for "int8" (B column-major,
    the layout the datasheet's rate assumes) and "int8, B row-major". Failed parts are left out.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    rates = {d: r["tflops"] for d, r in run.get("matmul", {}).items() if d in MATMUL_DTYPES and _ok(r)} \
        if _ok(run.get("matmul")) else {}
    i8 = run.get("int8")
    if _ok(i8):
        rates["int8"] = i8["int8_tops"]["b_col_major"]
        rates["int8, B row-major"] = i8["int8_tops"]["b_row_major"]
    return rates


@validate_params(runs=ListOf(REPORT, nonempty=False))
def step_time_columns(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Training-step milliseconds per precision mode, one column per run, headed by the run *and* its model.

    Figures of two networks never share a column: the header names the
    model and its parameter count (a run without a model name says so).
    Runs whose training-step section failed are left out.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    columns = {}
    for run in runs:
        step = run.get("training_step")
        if _ok(step):
            model = step.get("model", {"name": "model not recorded"})
            columns[f"{run_label(run)}: {_model_words(model)}, batch {step['batch_size']}"] = dict(step["step_ms"])
    return columns
