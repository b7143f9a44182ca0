"""pytest set-up for the whole repository: unit tests in tests/, chapters under nbval.

- Chapters run with EFFDL_QUIET=1 (no progress bars in outputs) and without
  EFFDL_DATA, so a re-run reproduces the outputs stored from the embedded data.
- With --nbval, every notebook in book.yml must be collected (a missing one
  fails the run) and each chapter's execution time is reported against its
  book.yml budget at the end (reported, not asserted: timing is not a test).
- data/ is hashed before and after the session; any change fails the run,
  because nothing a test or chapter does may write there.
- ``ATEN_CPU_CAPABILITY`` (PyTorch's kernel selection, used to check that the
  book does not depend on the CPU's vector extensions) must name kernels this
  CPU has: torch otherwise silently runs others, so the run stops at once with
  one line instead of checking something else than asked.
- The end of the run summarises the chapters' times against their budgets and
  whether the browser tests ran.
"""
import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
os.environ["EFFDL_QUIET"] = "1"
os.environ.pop("EFFDL_DATA", None)
os.environ.setdefault("MPLBACKEND", "Agg")

_chapter_seconds = defaultdict(float)
_browser_outcomes = defaultdict(int)
_session_setting = {}
_data_before = {}


def cpu_capability_problem(requested: str | None, running: str) -> str | None:
    """A one-line complaint when ``ATEN_CPU_CAPABILITY=requested`` is not what torch runs (``running``)."""
    if not requested:
        return None
    if requested.strip().upper() != running.upper():
        return (f"ATEN_CPU_CAPABILITY={requested} is not available here: torch runs its {running} kernels "
                f"instead. Use default, avx2 (or avx512 where the CPU has it), or unset it.")
    return None


def pytest_configure(config):
    import warnings

    import torch
    with warnings.catch_warnings():        # torch warns "ignoring invalid value"; the line below says more
        warnings.simplefilter("ignore")
        running = torch.backends.cpu.get_cpu_capability()
    problem = cpu_capability_problem(os.environ.get("ATEN_CPU_CAPABILITY"), running)
    if problem:
        raise pytest.UsageError(problem)
    _session_setting.update(kernels=running, threads=torch.get_num_threads())   # before any test changes them


def _hash_data():
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((ROOT / "data").rglob("*")) if p.is_file()}


def pytest_sessionstart(session):
    _data_before.update(_hash_data())


def pytest_collection_modifyitems(session, config, items):
    if not (config.getoption("--nbval", default=False) or config.getoption("--nbval-lax", default=False)):
        return
    if config.getoption("--chapters-subset", default=False):
        return
    from effdl.book import load_book
    collected = {Path(str(item.fspath)).resolve() for item in items}
    missing = [c.notebook for c in load_book().chapters if c.path.resolve() not in collected]
    if missing:
        raise RuntimeError(f"book.yml chapters not collected by nbval: {missing}. "
                           "Run pytest on the chapters/ folder (see README).")


def pytest_addoption(parser):
    parser.addoption("--chapters-subset", action="store_true",
                     help="allow running only some chapters under nbval")


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _chapter_seconds[path] += report.duration
    if path.endswith(("test_browser.py", "test_browser_reading.py", "test_browser_flipbooks.py")) and (report.when == "call" or report.outcome != "passed"):
        _browser_outcomes[report.outcome] += 1


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    import torch
    tr.section("effdl summary")
    tr.write_line(f"torch {torch.__version__}, {_session_setting.get('kernels')} kernels, "
                  f"{_session_setting.get('threads')} threads")
    if _browser_outcomes:
        tr.write_line("browser tests ran: " + ", ".join(f"{n} {k}" for k, n in sorted(_browser_outcomes.items())))
    else:
        tr.write_line("browser tests: not run in this session")
    if not _chapter_seconds:
        return
    from effdl.book import load_book
    budgets = {c.notebook: c.budget_s for c in load_book(check_files=False).chapters}
    tr.write_line("chapter execution time against the 2-core budget in book.yml:")
    rows = {}
    for path, seconds in sorted(_chapter_seconds.items()):
        budget = budgets.get(path)
        # a chapter should run in under half its budget on a quiet machine, leaving room for a loaded one
        flag = ("  OVER BUDGET" if budget and seconds > budget
                else "  (over half the budget)" if budget and seconds > budget / 2 else "")
        tr.write_line(f"{path:45s} {seconds:7.1f} s / {budget} s{flag}")
        rows[path] = {"seconds": round(seconds, 1), "budget_s": budget}
    out = ROOT / "_build" / "chapter_times.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")


def pytest_sessionfinish(session, exitstatus):
    if not _data_before:
        return
    after = _hash_data()
    changed = sorted(k for k in set(_data_before) | set(after) if _data_before.get(k) != after.get(k))
    if changed:
        print(f"\nERROR: the test session changed files in data/: {changed}")
        session.exitstatus = 1
