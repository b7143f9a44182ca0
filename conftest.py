"""pytest set-up for the whole repository: unit tests in tests/, chapters under nbval.

- Chapters run with EFFDL_QUIET=1 (no progress bars in outputs) and without
  EFFDL_DATA, so a re-run reproduces the outputs stored from the embedded data.
- With --nbval, every notebook in book.yml must be collected (a missing one
  fails the run) and each chapter's execution time is reported against its
  book.yml budget at the end (reported, not asserted: timing is not a test).
- data/ is hashed before and after the session; any change fails the run,
  because nothing a test or chapter does may write there.
"""
import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ["EFFDL_QUIET"] = "1"
os.environ.pop("EFFDL_DATA", None)
os.environ.setdefault("MPLBACKEND", "Agg")

_chapter_seconds = defaultdict(float)
_data_before = {}


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


def pytest_terminal_summary(terminalreporter):
    if not _chapter_seconds:
        return
    from effdl.book import load_book
    budgets = {c.notebook: c.budget_s for c in load_book(check_files=False).chapters}
    tr = terminalreporter
    tr.section("chapter execution time (2-core budget from book.yml)")
    rows = {}
    for path, seconds in sorted(_chapter_seconds.items()):
        budget = budgets.get(path)
        flag = "  OVER BUDGET" if budget and seconds > budget else ""
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
