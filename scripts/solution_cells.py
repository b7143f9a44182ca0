"""Fold the exercises' reference solutions in the chapters (maintainers).

    python scripts/solution_cells.py              # every chapter of book.yml
    python scripts/solution_cells.py 08 12 16     # these chapters only
    python scripts/solution_cells.py --check      # list solution cells left open; exit 1 if any

Each answer cell of an exercise (``effdl.assign``'s format) gets the metadata
of ``effdl.book.hide_solutions``: myst-nb's ``hide-input`` tag with "Show
solution" / "Hide solution" prompts (the HTML book folds the code behind a
toggle) and ``jupyter.source_hidden`` (JupyterLab shows the cell collapsed).
Only metadata changes: the code, the outputs and nbgrader's metadata stay, so
the notebook tests and ``effdl assign`` see the same cells, and no chapter
needs re-executing. ``effdl assign`` unfolds the answer cells of the student
versions it writes (``effdl.book.show_solutions``).

A notebook is written only if it changed, and only if nobody else wrote it
since it was read (same modification time and size; otherwise it is left
alone and reported): it is replaced in one step (a temporary file, then
``os.replace``).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat

from effdl import book


def fold(path: Path) -> str:
    """Fold ``path``'s solution cells in place; return what happened, in a few words."""
    before = path.stat()
    nb = nbformat.read(path, as_version=4)
    changed = book.hide_solutions(nb)
    if not changed:
        return "already folded"
    text = nbformat.writes(nb)
    text += "" if text.endswith("\n") else "\n"          # as nbformat.write does
    now = path.stat()
    if (now.st_mtime_ns, now.st_size) != (before.st_mtime_ns, before.st_size):
        return "CHANGED BY SOMEONE ELSE while being read: left alone, run again"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, before.st_mode & 0o777)
    os.replace(tmp, path)
    return f"{changed} solution cell(s) folded"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    ids = [a for a in argv if a != "--check"]
    b = book.load_book()
    chapters = [b.chapter(i) for i in ids] if ids else b.chapters
    open_cells = 0
    for c in chapters:
        if check:
            left = book.solutions_not_hidden(nbformat.read(c.path, as_version=4))
            open_cells += len(left)
            print(f"chapter {c.id}: " + (f"solution cells not folded: {left}" if left else "ok"))
        else:
            print(f"chapter {c.id}: {fold(c.path)}")
    return 1 if open_cells else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
