#!/usr/bin/env python
"""Execute every chapter of book.yml once, on a copy, and record seconds vs budget.

Writes benchmarks/results/chapter_times.json. The chapters in chapters/ are
not modified (they are executed from a temporary copy with their folder as
working directory). `make test` reports the same times under nbval.
"""
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from effdl.book import load_book

OUT = Path(__file__).resolve().parent / "results" / "chapter_times.json"


def main() -> None:
    os.environ["EFFDL_QUIET"] = "1"
    os.environ.pop("EFFDL_DATA", None)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c in load_book().chapters:
            copy = Path(tmp) / c.path.name
            shutil.copy(c.path, copy)
            nb = nbformat.read(copy, as_version=4)
            start = time.perf_counter()
            NotebookClient(nb, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": str(c.path.parent)}}).execute()
            seconds = time.perf_counter() - start
            rows[c.id] = {"title": c.title, "seconds": round(seconds, 1), "budget_s": c.budget_s,
                          "within_budget": seconds <= c.budget_s}
            print(f"chapter {c.id} {c.title}: {seconds:.1f} s (budget {c.budget_s} s)")
    OUT.write_text(json.dumps({"machine": f"{os.cpu_count()} cores, {platform.machine()}",
                               "chapters": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
