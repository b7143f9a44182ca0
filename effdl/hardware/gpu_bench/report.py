"""Every measurement of the appendix in one run that keeps whatever it gets.

:func:`gpu_report` runs the sections of :data:`SECTIONS` one after another.
Each runs in its own ``try``: a build without cuSPARSELt, a GPU older than
Ampere or an out-of-memory on a small card stores ``{"error": "…"}`` for that
section (or for one shape or format inside it) and the run goes on. One line
per section is printed with its time, and with ``out=`` the JSON is written
after every section (to a temporary file, then renamed over the old one), so
a run that dies leaves every finished section on disk and names the one it
died in.

Hang guard: each section has ``section_timeout_s``. At that time a
``SIGALRM`` raises in the main thread, between two CUDA calls, and the
section is recorded as timed out; a kernel that never returns cannot be
interrupted that way, so :data:`HARD_GRACE_S` later ``faulthandler`` prints
every thread's stack to the process's stderr and ends the process (the JSON
on disk still holds the finished sections).
"""
from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from ... import __version__ as effdl_version
from ...training.mixed_precision import autocast_compare
from ...validation import Bool, Instance, Interval, validate_params
from .device import _require_cuda, device_info
from .kernels import MATMUL_DTYPES, copy_bandwidth, int8_matmul, matmul_throughput, sparse_matmul
from .training_step import training_step_times


SECTIONS = ("device", "copy", "matmul", "int8", "sparse", "training_step", "autocast")
SECTION_TIMEOUT_S = 120.0
HARD_GRACE_S = 30.0              # after the soft limit, before faulthandler ends the process
STARTED = "started, did not finish: the process ended during this section"


class _SectionTimeout(BaseException):
    """Raised by the alarm; a BaseException, so no ``except Exception`` on the way up swallows it."""


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:500]


def _attempt(fn, **known):
    """``fn()``, or ``{**known, "error": …}`` when it raises (a timeout still ends the whole section)."""
    try:
        return fn()
    except Exception as err:                     # noqa: BLE001 - any failure of one part is recorded, not fatal
        return {**known, "error": _describe(err)}


def _sections(quick: bool) -> list[tuple[str, object]]:
    """(name, zero-argument function) for each section, in :data:`SECTIONS` order."""
    n = 4096 if quick else 8192
    shapes = [(4096, 4096, 4096)] if quick else [(16384, 16384, 16384), (8192, 8192, 8192), (16384, 4096, 4096)]
    return [
        ("device", device_info),
        ("copy", lambda: copy_bandwidth(n_bytes=(1 << 28) if quick else (1 << 30))),
        ("matmul", lambda: {d: _attempt(lambda d=d: matmul_throughput(d, n=n), dtype=d, n=n) for d in MATMUL_DTYPES}),
        ("int8", lambda: int8_matmul(m=n)),
        ("sparse", lambda: [_attempt(lambda s=s: sparse_matmul(m=s[0], k=s[1], n=s[2]), m=s[0], k=s[1], n=s[2])
                            for s in shapes]),
        ("training_step", lambda: training_step_times(steps=5 if quick else 10)),
        ("autocast", lambda: {"arch": "lenet5", "epochs": 2, **autocast_compare(dtype="fp16", epochs=2)}),
    ]


class _HangGuard:
    """Soft limit by ``SIGALRM`` (main thread only), hard limit by ``faulthandler`` (any thread)."""

    def __init__(self, name: str, seconds: float):
        self.name, self.seconds = name, seconds
        self.alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
        self.dumping = False

    def _ring(self, signum, frame):
        raise _SectionTimeout(f"section {self.name!r} ran past its {self.seconds:g} s limit")

    def __enter__(self):
        try:           # the process's own stderr: a notebook's sys.stderr has no file descriptor
            faulthandler.dump_traceback_later(self.seconds + HARD_GRACE_S, exit=True, file=sys.__stderr__)
            self.dumping = True
        except (AttributeError, ValueError, OSError, RuntimeError):
            pass
        if self.alarm:
            self.previous = signal.signal(signal.SIGALRM, self._ring)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        if self.dumping:
            faulthandler.cancel_dump_traceback_later()
        return False


def _write_json(path: Path, report: dict) -> None:
    """Write ``report`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(report, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _status(result) -> str:
    if isinstance(result, dict) and "error" in result:
        return "error: " + result["error"]
    parts = result.values() if isinstance(result, dict) else result if isinstance(result, list) else []
    failed = sum(isinstance(p, dict) and "error" in p for p in parts)
    return f"ok, {failed} of {len(parts)} parts failed" if failed else "ok"


@validate_params(quick=Bool(), out=Instance((str, os.PathLike), "a path", optional=True),
                 section_timeout_s=Interval(float, 0, None, closed="neither"), verbose=Bool())
def gpu_report(*, quick: bool = False, out=None, section_timeout_s: float = SECTION_TIMEOUT_S,
               verbose: bool = True) -> dict:
    """Every measurement of the appendix on this machine's GPU, as a JSON-able dict, section by section.

    Sections (:data:`SECTIONS`): ``device`` (name, capability, versions),
    ``copy``, ``matmul`` (8192³ per format), ``int8`` (both B layouts),
    ``sparse`` (2:4 at 16384³, 8192³ and 16384×4096×4096), ``training_step``
    (:func:`small_cnn`, four precisions) and ``autocast`` (chapter 12's
    LeNet-5 with ``torch.autocast``). A failed section (or part) holds
    ``{"error": "…"}``; ``section_seconds`` times each. ``quick=True``
    uses 4096³ products, a 256 MiB copy and one sparse shape, a smoke
    test. ``out``: a JSON file rewritten after every section. ``verbose``
    prints one line per section.

    Taught in chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("gpu_report")
    out = None if out is None else Path(out)
    started = time.perf_counter()
    report = {"effdl": effdl_version, "quick": quick, "date": time.strftime("%Y-%m-%d", time.gmtime()),
              "section_seconds": {}}
    for name, measure in _sections(quick):
        report[name] = {"error": STARTED}
        if out is not None:
            _write_json(out, report)
        t0 = time.perf_counter()
        try:
            with _HangGuard(name, section_timeout_s):
                report[name] = measure()
        except (Exception, _SectionTimeout) as err:   # noqa: BLE001 - recorded; the next section still runs
            report[name] = {"error": _describe(err)}
        report["section_seconds"][name] = round(time.perf_counter() - t0, 2)
        torch.cuda.empty_cache()
        if verbose:
            print(f"gpu_report: {name:<13} {report['section_seconds'][name]:6.1f} s  {_status(report[name])}",
                  flush=True)
        if out is not None:
            _write_json(out, report)
    report["seconds"] = round(time.perf_counter() - started, 2)
    if out is not None:
        _write_json(out, report)
    return report
