#!/usr/bin/env python
"""Time `nbgrader autograde` of every chapter's reference submission against its budget + 30 s.

Autograding executes a student's notebook top to bottom, so each chapter's
time is about its execution time plus nbgrader's start and the kernel's.
Per chapter, in a temporary course folder: `effdl assign --nbgrader`,
`nbgrader generate_assignment`, one submission with the chapter's own
solutions (effdl.assign.fill_answers), then `nbgrader autograde --student
reference`, timed as a whole command; its score is read back from the
gradebook (full marks, or the row says so). Writes
benchmarks/results/classroom.json. Needs nbgrader (the `classroom` extra).

    .venv/bin/python benchmarks/classroom_times.py [ID ...]
"""
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from effdl import assign
from effdl.book import load_book

OUT = Path(__file__).resolve().parent / "results" / "classroom.json"
SLACK_S = 30          # the allowance over a chapter's budget_s for nbgrader's and the kernel's start


def autograde_reference(chapter) -> dict:
    stem = Path(chapter.notebook).stem
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        assign.write_assignment(course, [chapter.id], nbgrader=True)
        run = assign.run_nbgrader(course, ["generate_assignment", stem])
        if run.returncode:
            raise RuntimeError(run.stderr[-2000:])
        source = nbformat.read(course / "source" / stem / f"{stem}.ipynb", as_version=4)
        release = nbformat.read(course / "release" / stem / f"{stem}.ipynb", as_version=4)
        submission = course / "submitted" / "reference" / stem / f"{stem}.ipynb"
        submission.parent.mkdir(parents=True)
        nbformat.write(assign.fill_answers(release, assign.solution_bodies(source)), submission)
        start = time.perf_counter()
        run = assign.run_nbgrader(course, ["autograde", stem, "--student", "reference"])
        seconds = time.perf_counter() - start
        scores = assign.gradebook_scores(course, stem).get("reference", {})
    points = sum(ex.points for ex in assign.find_exercises(source))
    return {"title": chapter.title, "seconds": round(seconds, 1), "budget_s": chapter.budget_s,
            "limit_s": chapter.budget_s + SLACK_S, "within_limit": seconds <= chapter.budget_s + SLACK_S,
            "score": sum(scores.values()), "max_score": points, "autograde_exit_status": run.returncode}


def main(ids: list[str]) -> None:
    os.environ["EFFDL_QUIET"] = "1"
    os.environ.pop("EFFDL_DATA", None)
    book = load_book()
    chapters = [book.chapter(i) for i in ids] if ids else book.chapters
    rows = {}
    for c in chapters:
        rows[c.id] = autograde_reference(c)
        r = rows[c.id]
        print(f"chapter {c.id} {c.title}: autograde {r['seconds']:.1f} s (limit {r['limit_s']} s), "
              f"score {r['score']:g}/{r['max_score']:g}", flush=True)
    OUT.write_text(json.dumps({
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        "what": "wall time of `nbgrader autograde ID --student reference` (nbgrader 0.9.6), chapter's solutions",
        "chapters": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
