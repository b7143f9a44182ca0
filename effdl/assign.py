"""Student versions of the chapters (``effdl assign``), in nbgrader's format.

Used by every chapter's closing exercises and by the instructors' page of the
book (``chapters/instructors.md``). The format is nbgrader's (Jupyter's
assignment tool, https://nbgrader.readthedocs.io, cell metadata schema 3), so
an instructor can hand the chapters to nbgrader directly or use
:func:`write_assignment` without it. A graded exercise is two code cells:

- an **answer** cell, ``metadata.nbgrader = {solution: true, grade: false,
  locked: false, grade_id, schema_version: 3, task: false}``: a function
  whose body sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``;
- a **check** cell, ``{grade: true, solution: false, locked: true, points,
  grade_id, …}``: a call to a property check of :mod:`effdl.exercises`
  (fresh random inputs, never a printed number), followed by the same check
  with another seed (:data:`HIDDEN_SEED`) between ``### BEGIN HIDDEN TESTS``
  and ``### END HIDDEN TESTS``.

:func:`student_version` does to a chapter what ``nbgrader
generate_assignment`` does with this package's stub (:data:`CODE_STUB`):
each solution region becomes the stub at the region's indentation (so the
``def`` line stays and the function raises ``NotImplementedError``), hidden
tests are removed, and the outputs of the answer and check cells are
cleared; every other cell keeps its stored output, figures included.
:func:`tag_exercises` (maintainers) turns a chapter whose exercise cells
still hold answer and check together into this format, hidden tests
included.
"""
from __future__ import annotations

import copy
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from . import exercises
from .book import ROOT, Book, load_book


BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
# What replaces a solution region in a code cell. nbgrader's default is the
# first line and a bare `raise NotImplementedError()`; ours says what to do.
# The nbgrader_config.py written by write_assignment(..., nbgrader=True) sets
# nbgrader's stub to the same text, so both tools give the same notebooks.
CODE_STUB = ("# YOUR CODE HERE\n"
             'raise NotImplementedError("exercise not answered yet: replace this line with your code")')
TEXT_STUB = "YOUR ANSWER HERE"
# The seed of the hidden tests: every check of effdl.exercises takes `seed=`
# and its default differs from this one, so a hidden test sees other inputs.
HIDDEN_SEED = 1
SCHEMA_VERSION = 3
_CHECK_CALL = re.compile(r"\b(check_\w+)\(")
_DEF = re.compile(r"^\s*def (\w+)\(", re.M)


class ExerciseError(ValueError):
    """A chapter's exercise cells are not in the format described in the module docstring."""


@dataclass(frozen=True)
class Exercise:
    """One graded exercise of a chapter: the indexes of its two cells in ``nb.cells``."""

    answer: int
    check: int
    grade_id: str
    points: float
    function: str | None       # the function the reader writes, e.g. "my_magnitude_mask"
    check_function: str | None  # the effdl.exercises check it calls, e.g. "check_magnitude_mask"


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_answer(cell) -> bool:
    return cell.cell_type == "code" and (BEGIN_SOLUTION in cell.source or bool(_nbgrader(cell).get("solution")))


def _split_combined(source: str) -> tuple[str, str] | None:
    """Split an answer cell that also holds its check: (answer, check), or None if there is no check.

    The check starts at the first non-blank top-level line after the last
    ``### END SOLUTION`` that sits inside a function (an indented marker).
    """
    lines = source.split("\n")
    ends = [i for i, line in enumerate(lines) if END_SOLUTION in line]
    if not ends or not lines[ends[-1]].startswith((" ", "\t")):
        return None
    for i in range(ends[-1] + 1, len(lines)):
        if lines[i].strip() and not lines[i].startswith((" ", "\t")):
            answer, check = "\n".join(lines[:i]).rstrip(), "\n".join(lines[i:]).strip()
            return (answer, check) if _CHECK_CALL.search(check) else None
    return None


def _with_seed(line: str, seed: int) -> str:
    """``line`` with ``seed=seed`` added to each ``check_*(…)`` call that has no ``seed=`` yet."""
    out, pos = [], 0
    for call in _CHECK_CALL.finditer(line):
        if call.start() < pos:
            continue                                    # a check call nested in an earlier one's arguments
        depth, end = 1, call.end()
        while end < len(line) and depth:
            depth += {"(": 1, ")": -1}.get(line[end], 0)
            end += 1
        if depth:
            raise ExerciseError(f"unbalanced parentheses in the check call {line!r}.")
        args = line[call.end():end - 1]
        if not re.search(r"\bseed\s*=", args):
            out += [line[pos:end - 1], ", " if args.strip() else "", f"seed={seed})"]
        else:
            out.append(line[pos:end])
        pos = end
    return "".join(out) + line[pos:]


def hidden_tests(check_source: str, seed: int = HIDDEN_SEED) -> str:
    """The hidden-test region for a check cell: its check calls again with ``seed=seed``.

    >>> print(hidden_tests("print(check_staleness(staleness))"))
    ### BEGIN HIDDEN TESTS
    print(check_staleness(staleness, seed=1))
    ### END HIDDEN TESTS
    """
    calls = [_with_seed(line, seed) for line in check_source.split("\n") if _CHECK_CALL.search(line)]
    if not calls:
        raise ExerciseError(f"no check_* call to repeat in {check_source[:80]!r}.")
    return "\n".join([BEGIN_HIDDEN, *calls, END_HIDDEN])


def find_exercises(nb) -> list[Exercise]:
    """The graded exercises of a notebook, in order.

    Raises :class:`ExerciseError` when an answer cell is not followed by a
    code cell that calls a ``check_*`` function (or holds that call itself,
    before :func:`tag_exercises`).
    """
    found = []
    for i, cell in enumerate(nb.cells):
        if not _is_answer(cell):
            continue
        name = _DEF.search(cell.source)
        function = name.group(1) if name else None
        if _split_combined(cell.source) is not None:
            check = i                                   # not split yet: answer and check in one cell
        else:
            check = i + 1
            if check >= len(nb.cells) or nb.cells[check].cell_type != "code":
                raise ExerciseError(f"cell {i} holds a solution but the next cell is not a code cell "
                                    "calling a check.")
        call = _CHECK_CALL.search(nb.cells[check].source)
        if call is None:
            raise ExerciseError(f"cell {check} should call a check_* function of effdl.exercises; "
                                f"got {nb.cells[check].source[:80]!r}.")
        meta = _nbgrader(nb.cells[check])
        grade_id = _nbgrader(cell).get("grade_id") or (function or f"exercise_{len(found) + 1}")
        found.append(Exercise(i, check, grade_id, float(meta.get("points", 0)), function, call.group(1)))
    return found


def tag_exercises(nb, *, points: int = 1):
    """Put a notebook's exercises into the nbgrader format (maintainers); return the notebook.

    Splits each cell holding both an answer and its check into two cells,
    appends hidden tests (:func:`hidden_tests`) to each check cell that has
    none, and writes the nbgrader metadata of both cells. Changed check
    cells lose their outputs and need re-executing: run ``effdl execute ID``.
    Idempotent.
    """

    i = 0
    while i < len(nb.cells):
        cell = nb.cells[i]
        if _is_answer(cell):
            split = _split_combined(cell.source)
            if split is not None:
                cell.source = split[0]
                cell.outputs, cell.execution_count = [], None
                nb.cells.insert(i + 1, new_code_cell(split[1]))
        i += 1
    for ex in find_exercises(nb):
        answer, check = nb.cells[ex.answer], nb.cells[ex.check]
        if BEGIN_HIDDEN not in check.source:
            check.source = check.source.rstrip() + "\n" + hidden_tests(check.source)
            check.outputs, check.execution_count = [], None
        answer.metadata["nbgrader"] = {"grade": False, "grade_id": ex.grade_id, "locked": False,
                                       "schema_version": SCHEMA_VERSION, "solution": True, "task": False}
        old = _nbgrader(check)
        check.metadata["nbgrader"] = {"grade": True, "grade_id": f"{ex.grade_id}_check", "locked": True,
                                      "points": old.get("points", points), "schema_version": SCHEMA_VERSION,
                                      "solution": False, "task": False}
    return nb


def validate(nb) -> list[str]:
    """Problems that keep a notebook's exercises from working with nbgrader and :func:`student_version`.

    An empty list means: at least two graded exercises, after the notebook's
    last ``Exercises`` heading, each an answer cell with solution metadata
    followed by a locked check cell with points that calls a function of
    :mod:`effdl.exercises` taking ``seed=`` and holds hidden tests; unique
    grade ids; no solution or hidden-test markers outside such cells.
    """

    try:
        found = find_exercises(nb)
    except ExerciseError as err:
        return [str(err)]
    problems = []
    if len(found) < 2:
        problems.append(f"{len(found)} graded exercise(s); a chapter needs at least 2.")
    headings = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                and re.search(r"^#+ .*Exercises", c.source, re.M)]
    ids = []
    for ex in found:
        answer, check = _nbgrader(nb.cells[ex.answer]), _nbgrader(nb.cells[ex.check])
        where = f"exercise {ex.grade_id!r} (cell {ex.answer})"
        if ex.answer == ex.check:
            problems.append(f"{where}: answer and check share a cell; run tag_exercises.")
            continue
        if not headings or ex.answer < headings[-1]:
            problems.append(f"{where} comes before the chapter's Exercises heading.")
        if not (answer.get("solution") and not answer.get("grade") and not answer.get("locked")
                and answer.get("schema_version") == SCHEMA_VERSION and answer.get("grade_id")):
            problems.append(f"{where}: the answer cell lacks nbgrader solution metadata.")
        if BEGIN_SOLUTION not in nb.cells[ex.answer].source:
            problems.append(f"{where}: the answer cell has no {BEGIN_SOLUTION!r} region.")
        if not (check.get("grade") and not check.get("solution") and check.get("locked")
                and check.get("points", 0) > 0 and check.get("schema_version") == SCHEMA_VERSION
                and check.get("grade_id")):
            problems.append(f"{where}: the check cell lacks nbgrader grade metadata (grade, locked, points).")
        check_fn = getattr(exercises, ex.check_function or "", None)
        if not callable(check_fn):
            problems.append(f"{where}: {ex.check_function} is not a function of effdl.exercises.")
        elif "seed" not in inspect.signature(check_fn).parameters:
            problems.append(f"{where}: {ex.check_function} takes no seed= argument for hidden tests.")
        if BEGIN_HIDDEN not in nb.cells[ex.check].source:
            problems.append(f"{where}: the check cell has no {BEGIN_HIDDEN!r} region; run tag_exercises.")
        ids += [answer.get("grade_id"), check.get("grade_id")]
    if len(ids) != len(set(ids)):
        problems.append(f"grade ids are not unique: {ids}.")
    graded = {i for ex in found for i in (ex.answer, ex.check)}
    for i, cell in enumerate(nb.cells):
        if i not in graded and any(m in cell.source for m in (BEGIN_SOLUTION, BEGIN_HIDDEN)):
            problems.append(f"cell {i} has solution or hidden-test markers but is not an exercise cell.")
    return problems


def _replace_regions(source: str, begin: str, end: str, stub: str | None) -> str:
    """Replace each ``begin`` … ``end`` line region (markers included) by ``stub`` at the marker's indent."""
    out, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise ExerciseError(f"nested {begin!r} in {source[:60]!r}.")
            inside = True
            indent = line[:len(line) - len(line.lstrip())]
            out += [indent + s for s in stub.split("\n")] if stub is not None else []
        elif end in line:
            if not inside:
                raise ExerciseError(f"{end!r} without {begin!r} in {source[:60]!r}.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ExerciseError(f"{begin!r} without {end!r} in {source[:60]!r}.")
    return "\n".join(out)


def student_version(nb):
    """A copy of ``nb`` as handed to students (see the module docstring); ``nb`` is not changed."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        meta = _nbgrader(cell)
        touched = bool(meta.get("solution") or meta.get("grade"))
        if BEGIN_SOLUTION in cell.source or END_SOLUTION in cell.source:
            stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
            cell.source = _replace_regions(cell.source, BEGIN_SOLUTION, END_SOLUTION, stub)
            touched = True
        elif meta.get("solution"):                     # a solution cell without markers: all of it
            cell.source = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
        if BEGIN_HIDDEN in cell.source or END_HIDDEN in cell.source:
            cell.source = _replace_regions(cell.source, BEGIN_HIDDEN, END_HIDDEN, None).strip("\n")
            touched = True
        if touched and cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    return nb


NBGRADER_CONFIG = f'''"""nbgrader settings for this course folder, written by `effdl assign --nbgrader`.

With them `nbgrader generate_assignment NN_topic` writes the same student
notebooks as `effdl assign`.
"""
c = get_config()  # noqa: F821 (nbgrader provides it)
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}
c.ClearSolutions.text_stub = {TEXT_STUB!r}
'''


def write_assignment(out_dir: Path | str, chapter_ids: list[str] | None = None, *,
                     nbgrader: bool = False) -> list[Path]:
    """Write student versions of chapters (default: all of ``book.yml``) into ``out_dir``; return the paths.

    Each chapter becomes ``out_dir/NN_topic.ipynb``. With ``nbgrader=True``
    the folder is laid out as an nbgrader course instead: the instructor
    versions (with solutions) in ``out_dir/source/NN_topic/NN_topic.ipynb``
    and an ``nbgrader_config.py``, for ``nbgrader generate_assignment``.
    Raises :class:`ExerciseError` if a chapter's exercises are malformed,
    ``ValueError`` if ``out_dir`` is the chapters folder itself.
    """


    b = load_book()
    chapters = b.chapters if not chapter_ids else [b.chapter(str(i)) for i in chapter_ids]
    out = Path(out_dir).resolve()
    if out == (ROOT / "chapters").resolve():
        raise ValueError(f"out_dir must not be the chapters folder itself; got {str(out_dir)!r}.")
    written = []
    for c in chapters:
        nb = nbformat.read(c.path, as_version=4)
        if len(find_exercises(nb)) < 2:
            raise ExerciseError(f"chapter {c.id} has fewer than 2 graded exercises.")
        stem = Path(c.notebook).stem
        if nbgrader:
            dst = out / "source" / stem / f"{stem}.ipynb"
        else:
            dst, nb = out / f"{stem}.ipynb", student_version(nb)
        dst.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dst)
        written.append(dst)
    if nbgrader:
        (out / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    return written


def chapter_exercises(chapter_id: str) -> list[Exercise]:
    """The graded exercises of a chapter of ``book.yml``."""


    return find_exercises(nbformat.read(load_book().chapter(chapter_id).path, as_version=4))


def _main(argv: list[str] | None = None) -> int:
    """``python -m effdl.assign tag ID …``: tag chapters' exercise cells in place (maintainers)."""



    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "tag":
        print("usage: python -m effdl.assign tag ID [ID ...]   (then: effdl execute ID ...)")
        return 2
    for cid in args[1:]:
        path = load_book().chapter(cid).path
        nb = tag_exercises(nbformat.read(path, as_version=4))
        nbformat.write(nb, path)
        problems = validate(nb)
        print(f"chapter {cid}: {len(find_exercises(nb))} exercises tagged"
              + ("".join(f"\n  problem: {p}" for p in problems) if problems else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())


def instructor_table(book: Book | None = None) -> str:
    """The instructors' page's table (Markdown): per chapter its time budget, graded exercises, GPU."""
    book = load_book() if book is None else book
    rows = ["| chapter | runs in (2 CPU cores, budget) | graded exercises | points | needs a GPU |",
            "|---|---|---|---|---|"]
    for c in book.chapters:
        exercises = find_exercises(nbformat.read(c.path, as_version=4))
        points = sum(ex.points for ex in exercises)
        # a chapter built on the GPU benchmarks still runs (and passes its tests) on a CPU, measuring nothing
        gpu = "optional: measures only on CUDA" if "effdl.hardware.gpu_bench" in c.modules else "no"
        rows.append(f"| {c.id} {c.title} | {c.budget_s} s | {len(exercises)} | {points:g} | {gpu} |")
    return "\n".join(rows)
