"""The whole test suite under several CPU kernel selections: does the book depend on the CPU?

    .venv/bin/python benchmarks/portability.py            # all settings (about an hour on 2 cores)
    .venv/bin/python benchmarks/portability.py --only 1   # one setting, by its number

Runs what ``make test`` runs (unit tests, doctests, every chapter under strict
nbval) once per setting, each in a fresh process with its environment:

- PyTorch's kernel dispatch (``ATEN_CPU_CAPABILITY``: ``default`` is the
  generic code every x86-64 CPU runs, ``avx2`` what a CPU without AVX-512
  gets);
- MKL's and oneDNN's instruction sets (``MKL_ENABLE_INSTRUCTIONS``,
  ``ONEDNN_MAX_CPU_ISA``): other BLAS and convolution code paths, and
  oneDNN's int8 GEMM without VNNI;
- 1 or 2 threads (``OMP_NUM_THREADS``): another summation order.

The browser tests run in the first setting only: they check the HTML book and
JupyterLab's widgets, not arithmetic. Writes ``results/portability.json`` and
prints the table that ``benchmarks/README.md`` shows.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from effdl.hardware.specs import cpu_model

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "portability.json"
COMMAND = ["-m", "pytest", "tests", "effdl", "chapters", "--doctest-modules", "--nbval", "--nbval-current-env",
           "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", "-q", "-p", "no:randomly"]
SETTINGS = [
    ("this CPU's own kernels, 2 threads (+ browser tests)", {"OMP_NUM_THREADS": "2"}, True),
    ("generic kernels (ATEN_CPU_CAPABILITY=default), 1 thread", {"ATEN_CPU_CAPABILITY": "default",
                                                                 "OMP_NUM_THREADS": "1"}, False),
    ("AVX2 kernels (ATEN_CPU_CAPABILITY=avx2), 2 threads", {"ATEN_CPU_CAPABILITY": "avx2",
                                                            "OMP_NUM_THREADS": "2"}, False),
    ("AVX2 kernels, MKL SSE4.2, oneDNN SSE4.1, 1 thread", {"ATEN_CPU_CAPABILITY": "avx2",
                                                           "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                                                           "ONEDNN_MAX_CPU_ISA": "SSE41",
                                                           "OMP_NUM_THREADS": "1"}, False),
]


def counts(summary_line: str) -> dict:
    """``{"passed": 12, "failed": 0, ...}`` from pytest's last line ("12 passed, 1 skipped in 3.2s")."""
    found = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)",
                                              summary_line)}
    if "error" in found:
        found["errors"] = found.pop("error")
    return {k: found.get(k, 0) for k in ("passed", "failed", "errors", "skipped", "xfailed")}


def run_setting(label: str, env_extra: dict, browser: bool, log_dir: Path) -> dict:
    env = {**os.environ, **env_extra}
    args = COMMAND + ([] if browser else ["--ignore=tests/test_browser.py"])
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = log_dir / (re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:60] + ".log")
    log.write_text(proc.stdout + proc.stderr)
    lines = [l for l in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed)", l)]
    kernels = re.search(r"torch \S+, (\S+) kernels, (\d+) threads", proc.stdout)
    return {"setting": label, "env": env_extra, "browser_tests": browser, "returncode": proc.returncode,
            **counts(lines[-1] if lines else ""), "seconds": round(seconds),
            "torch_kernels": kernels.group(1) if kernels else None,
            "threads": int(kernels.group(2)) if kernels else None,
            "failures": re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.M), "log": str(log)}


def table(rows: list[dict]) -> str:
    out = ["| setting | torch kernels | passed | failed | errors | skipped | time |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['setting']} | {r['torch_kernels']} | {r['passed']:,} | {r['failed']} | {r['errors']} | "
                   f"{r['skipped']} | {r['seconds'] // 60} min {r['seconds'] % 60:02d} s |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=int, nargs="*", help="setting numbers (1-based) to run")
    args = parser.parse_args(argv)
    chosen = [SETTINGS[i - 1] for i in args.only] if args.only else SETTINGS
    log_dir = ROOT / "_build" / "portability"
    log_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, env_extra, browser in chosen:
        print(f"running: {label}", flush=True)
        rows.append(run_setting(label, env_extra, browser, log_dir))
        print(f"  {rows[-1]['passed']} passed, {rows[-1]['failed']} failed, {rows[-1]['errors']} errors "
              f"in {rows[-1]['seconds']} s", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    OUT.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "commit": commit, "cpu": cpu_model(),
                               "cores": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    print(table(rows))
    return 0 if all(r["returncode"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
