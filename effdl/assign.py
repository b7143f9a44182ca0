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
generate_assignment`` does with this package's stub (:data:`CODE_STUB`),
with nbgrader's own preprocessors where nbgrader is installed (the
``classroom`` extra) and its own writer otherwise: each solution region
becomes the stub at the region's indentation (so the ``def`` line stays and
the function raises ``NotImplementedError``), hidden tests are removed, and
the outputs of the answer and check cells are cleared; every other cell
keeps its stored output, figures included. :func:`tag_exercises`
(maintainers) turns a chapter whose exercise cells still hold answer and
check together into this format, hidden tests included.

For a course run with nbgrader: :func:`write_assignment` lays out the
course folder, :func:`check_submission` says what in a student's notebook
nbgrader will not grade as handed out, :func:`solution_bodies` and
:func:`fill_answers` make submissions (the reference one, for a check of
the set-up), :func:`run_nbgrader` and :func:`gradebook_scores` run nbgrader
and read its grades (``tests/test_classroom.py``, ``make classroom-check``).

Longer than 600 lines because the exercises' cell format, the student versions written from it and
nbgrader's course, submissions and gradebook read back are the two sides of one format.
"""
from __future__ import annotations

import copy
import inspect
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from . import exercises
from .book import ROOT, Book, load_book, show_solutions
from .validation import Bool, Dict, Instance, Interval, ListOf, PositiveInt, Seed, Text, validate_params


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


@validate_params(check_source=Text(), seed=Seed())
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


@validate_params(nb=Instance(nbformat.NotebookNode, 'a notebook (nbformat.NotebookNode)'))
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


@validate_params(nb=Instance(nbformat.NotebookNode, 'a notebook (nbformat.NotebookNode)'), points=PositiveInt())
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


@validate_params(nb=Instance(nbformat.NotebookNode, 'a notebook (nbformat.NotebookNode)'))
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


def _regions(source: str, begin: str, end: str) -> list[tuple[int, int]]:
    """The (first, last) line numbers of each ``begin`` … ``end`` region of ``source``, markers included.

    Raises :class:`ExerciseError` on a nested, unclosed or unopened region.
    """
    regions, first = [], None
    for i, line in enumerate(source.split("\n")):
        if begin in line:
            if first is not None:
                raise ExerciseError(f"nested {begin!r} in {source[:60]!r}.")
            first = i
        elif end in line:
            if first is None:
                raise ExerciseError(f"{end!r} without {begin!r} in {source[:60]!r}.")
            regions.append((first, i))
            first = None
    if first is not None:
        raise ExerciseError(f"{begin!r} without {end!r} in {source[:60]!r}.")
    return regions


def _replace_regions(source: str, begin: str, end: str, stub: str | None) -> str:
    """Replace each ``begin`` … ``end`` line region (markers included) by ``stub`` at the marker's indent."""
    lines, out, pos = source.split("\n"), [], 0
    for first, last in _regions(source, begin, end):
        indent = lines[first][:len(lines[first]) - len(lines[first].lstrip())]
        out += lines[pos:first] + ([indent + s for s in stub.split("\n")] if stub is not None else [])
        pos = last + 1
    return "\n".join(out + lines[pos:])


def _nbgrader_preprocessors() -> list | None:
    """nbgrader's ``ClearSolutions`` and ``ClearHiddenTests`` with this module's stubs; None without nbgrader."""
    try:    # deferred: nbgrader is optional (the `classroom` extra) and takes seconds to import
        from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
    except ImportError:
        return None
    # enforce_metadata=False: clear every marked region whatever its cell's metadata, as this module's writer
    # does; validate() and write_assignment() check the metadata with messages that name the exercise.
    return [ClearSolutions(code_stub={"python": CODE_STUB}, text_stub=TEXT_STUB, enforce_metadata=False),
            ClearHiddenTests(enforce_metadata=False)]


def _clear_regions(nb) -> None:
    """This module's writer: what nbgrader's ClearSolutions and ClearHiddenTests do, in place."""
    for cell in nb.cells:
        if BEGIN_SOLUTION in cell.source or END_SOLUTION in cell.source:
            stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
            cell.source = _replace_regions(cell.source, BEGIN_SOLUTION, END_SOLUTION, stub)
        elif _nbgrader(cell).get("solution"):          # a solution cell without markers: all of it
            cell.source = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
        cell.source = _replace_regions(cell.source, BEGIN_HIDDEN, END_HIDDEN, None)
    nb.metadata.pop("celltoolbar", None)


@validate_params(nb=Instance(nbformat.NotebookNode, 'a notebook (nbformat.NotebookNode)'), use_nbgrader=Bool(optional=True))
def student_version(nb, *, use_nbgrader: bool | None = None):
    """A copy of ``nb`` as handed to students (see the module docstring); ``nb`` is not changed.

    The regions are cleared by nbgrader's own preprocessors (``ClearSolutions``
    and ``ClearHiddenTests``, set to this module's stubs) when nbgrader is
    installed, and by this module's writer otherwise; both give the same
    notebook (``tests/test_assign.py`` checks every chapter). ``use_nbgrader``
    forces one: True raises ``ImportError`` without nbgrader, False never
    imports it. Raises :class:`ExerciseError` on nested or unbalanced markers,
    with the same message either way.
    """
    preprocessors = None if use_nbgrader is False else _nbgrader_preprocessors()
    if use_nbgrader and preprocessors is None:
        raise ImportError("use_nbgrader=True needs nbgrader: pip install -e '.[classroom]'.")
    nb = copy.deepcopy(nb)
    show_solutions(nb)                                  # the book folds the solutions; a student's stub is open
    exercise_cells = []
    for cell in nb.cells:
        markers = [_regions(cell.source, *pair) for pair in ((BEGIN_SOLUTION, END_SOLUTION), (BEGIN_HIDDEN, END_HIDDEN))]
        meta = _nbgrader(cell)
        if any(markers) or meta.get("solution") or meta.get("grade"):
            exercise_cells.append(cell)
    if preprocessors is None:
        _clear_regions(nb)
    else:
        for p in preprocessors:
            nb, _ = p.preprocess(nb, {})
    for cell in exercise_cells:                         # their outputs showed the solution at work
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    return nb


def _nbgrader_config(execute_timeout_s: int) -> str:
    """The ``nbgrader_config.py`` that ``write_assignment(..., nbgrader=True)`` writes into a new course."""
    return f'''"""nbgrader settings for this course folder, written by `effdl assign --nbgrader`.

With them `nbgrader generate_assignment NN_topic` writes the same student
notebooks as `effdl assign` (chapters/instructors.md). Add your own settings
below (course id, exchange: see the instructors' page); `effdl assign` never
rewrites this file once it exists.
"""
c = get_config()  # noqa: F821 (nbgrader provides it)
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}
c.ClearSolutions.text_stub = {TEXT_STUB!r}
# Autograding executes the whole chapter; nbgrader's default limit of 30 s per cell is too short for some
# cells. This is the longest chapter budget in book.yml plus 30 s.
c.Execute.timeout = {execute_timeout_s}
# A student who deleted a check cell is still graded: autograde puts the cell back from the source version.
c.OverwriteCells.add_missing_cells = True
'''


# The course folders nbgrader writes into (its CourseDirectory defaults): effdl assign never touches them.
NBGRADER_STEPS = ("release", "submitted", "autograded", "feedback", "solution")


def _plan_course(out: Path, planned: dict[Path, object], overwrite: bool) -> dict[Path, object]:
    """The notebooks of ``planned`` to write into the course folder ``out``: refuses to replace work."""
    if out.is_dir() and any(out.iterdir()) and not (out / "nbgrader_config.py").is_file():
        raise ValueError(f"out_dir must be a new folder, an empty one or an nbgrader course (a folder with "
                         f"nbgrader_config.py); got {str(out)!r}, which exists, is not empty and has no "
                         f"nbgrader_config.py.")
    config = out / "nbgrader_config.py"
    if config.is_file() and "ClearSolutions.code_stub" not in config.read_text():
        raise ValueError(f"{config} does not set ClearSolutions.code_stub, so nbgrader's student versions "
                         f"would differ from effdl assign's: add the ClearSolutions lines of "
                         f"effdl.assign._nbgrader_config() to it.")
    todo = {}
    for dst, nb in planned.items():
        if dst.exists() and nbformat.read(dst, as_version=4) != nb and not overwrite:
            raise ValueError(
                f"{dst} exists and differs from the chapter in book.yml (the chapter changed, or it was edited "
                f"here). Nothing was written. To replace it, delete the folder {dst.parent} and run effdl assign "
                f"again (or pass overwrite=True), then `nbgrader generate_assignment {dst.parent.name} --force`; "
                f"{', '.join(NBGRADER_STEPS[1:])}/ and the gradebook are never touched.")
        if not dst.exists() or nbformat.read(dst, as_version=4) != nb:
            todo[dst] = nb
    return todo


@validate_params(out_dir=Instance((str, os.PathLike), 'a path'), chapter_ids=ListOf(Text(), optional=True), nbgrader=Bool(), overwrite=Bool())
def write_assignment(out_dir: Path | str, chapter_ids: list[str] | None = None, *,
                     nbgrader: bool = False, overwrite: bool = False) -> list[Path]:
    """Write student versions of chapters (default: all of ``book.yml``) into ``out_dir``; return the paths.

    Each chapter becomes ``out_dir/NN_topic.ipynb`` (:func:`student_version`).
    With ``nbgrader=True`` the folder is laid out as an nbgrader course
    instead: the instructor versions (with solutions) in
    ``out_dir/source/NN_topic/NN_topic.ipynb`` and, in a new course, an
    ``nbgrader_config.py`` (:func:`_nbgrader_config`), for ``nbgrader
    generate_assignment``.

    Nothing is lost: everything is checked before anything is written.
    Without ``nbgrader``, ``out_dir`` must be new or empty, unless
    ``overwrite`` (which replaces only the notebooks named above). With
    ``nbgrader``, ``out_dir`` must be new, empty or a course; a chapter already
    in ``source/`` is left alone when unchanged and, when it differs, replaced
    only with ``overwrite``; ``nbgrader_config.py`` once written is the
    instructor's, and nbgrader's own folders (``submitted/``, …) and gradebook
    are never touched. The paths returned include unchanged ones.

    Raises ``ValueError`` for an unknown chapter id, for ``out_dir`` the
    chapters folder or a file, and as above; :class:`ExerciseError` (a
    ``ValueError``) if a chapter's exercises fail :func:`validate`.
    """
    b = load_book()
    chapters = b.chapters if not chapter_ids else [b.chapter(str(i)) for i in chapter_ids]
    out = Path(out_dir).resolve()
    if out == (ROOT / "chapters").resolve():
        raise ValueError(f"out_dir must not be the chapters folder itself; got {str(out_dir)!r}.")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder; got {str(out_dir)!r}, which is a file.")
    planned = {}
    for c in chapters:
        nb = nbformat.read(c.path, as_version=4)
        problems = validate(nb)
        if problems:
            raise ExerciseError(f"chapter {c.id}'s exercises are not in nbgrader's format: " + " ".join(problems))
        stem = Path(c.notebook).stem
        if nbgrader:
            source = copy.deepcopy(nb)
            show_solutions(source)      # nbgrader's release keeps the source's metadata: the stub must be open
            planned[out / "source" / stem / f"{stem}.ipynb"] = source
        else:
            planned[out / f"{stem}.ipynb"] = student_version(nb)
    if nbgrader:
        todo = _plan_course(out, planned, overwrite)
    elif out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"out_dir must be a new or empty folder; got {str(out_dir)!r}, which holds "
                         f"{len(list(out.iterdir()))} entries (students' work, perhaps). Nothing was written: "
                         f"choose another folder, or pass overwrite=True to replace only the chapters' notebooks.")
    else:
        todo = planned
    for dst, nb in todo.items():
        dst.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dst)
    if nbgrader and not (out / "nbgrader_config.py").exists():
        (out / "nbgrader_config.py").write_text(_nbgrader_config(max(c.budget_s for c in b.chapters) + 30))
    return list(planned)


@validate_params(chapter_id=Text())
def chapter_exercises(chapter_id: str) -> list[Exercise]:
    """The graded exercises of a chapter of ``book.yml``."""


    return find_exercises(nbformat.read(load_book().chapter(chapter_id).path, as_version=4))


@validate_params(book=Instance(Book, 'an effdl.book.Book', optional=True))
def instructor_table(book: Book | None = None) -> str:
    """The instructors' page's table (Markdown): per chapter its time budget, graded exercises, GPU."""
    book = load_book() if book is None else book
    rows = ["| chapter | runs in (2 CPU cores, budget) | graded exercises | points | needs a GPU |",
            "|---|---|---|---|---|"]
    for c in book.chapters:
        exercises = find_exercises(nbformat.read(c.path, as_version=4))
        points = sum(ex.points for ex in exercises)
        # a chapter built on the GPU benchmarks still runs (and passes its tests) on a CPU, measuring nothing
        gpu = "optional: live only with EFFDL_GPU=1 and CUDA" if "effdl.hardware.gpu_bench" in c.modules else "no"
        rows.append(f"| {c.id} {c.title} | {c.budget_s} s | {len(exercises)} | {points:g} | {gpu} |")
    return "\n".join(rows)


@validate_params(book=Instance(Book, 'an effdl.book.Book', optional=True))
def exercise_table(book: Book | None = None) -> str:
    """The instructors' page's table of graded exercises (Markdown): the function, what its check tests, points.

    "What it tests" is the first paragraph of the check's docstring in :mod:`effdl.exercises`.
    """
    book = load_book() if book is None else book
    rows = ["| chapter | the student writes | its check (and hidden tests, another seed) tests | points |",
            "|---|---|---|---|"]
    for c in book.chapters:
        for ex in find_exercises(nbformat.read(c.path, as_version=4)):
            doc = inspect.getdoc(getattr(exercises, ex.check_function)) or ""
            what = re.sub(r"^Chapter \d+:\s*", "", " ".join(doc.split("\n\n")[0].split()))
            rows.append(f"| {c.id} | `{ex.function}` | {what.replace('|', chr(92) + '|')} | {ex.points:g} |")
    return "\n".join(rows)


# ------------------------------------------------------------------ an nbgrader course: submissions and grades
@validate_params(nb=Instance(nbformat.NotebookNode, 'a notebook (nbformat.NotebookNode)'))
def solution_bodies(nb) -> dict[str, str]:
    """The reference answers of an instructor version: answer cell grade_id → its solution region, dedented."""
    bodies = {}
    for ex in find_exercises(nb):
        source = nb.cells[ex.answer].source
        regions = _regions(source, BEGIN_SOLUTION, END_SOLUTION)
        if len(regions) != 1:
            raise ExerciseError(f"exercise {ex.grade_id!r} has {len(regions)} solution regions; expected 1.")
        (first, last), = regions
        bodies[ex.grade_id] = textwrap.dedent("\n".join(source.split("\n")[first + 1:last]))
    return bodies


@validate_params(nb=Instance(nbformat.NotebookNode, 'a notebook (nbformat.NotebookNode)'), answers=Dict())
def fill_answers(nb, answers: dict[str, str]):
    """A copy of a student version with the stub of each answer cell in ``answers`` replaced: a submission.

    ``answers`` maps an answer cell's grade_id to the code a student writes in
    place of :data:`CODE_STUB`, indented like the stub. Raises
    :class:`ExerciseError` for a grade_id the notebook lacks or whose cell no
    longer holds the stub.
    """
    nb = copy.deepcopy(nb)
    stub = CODE_STUB.split("\n")
    cells = {_nbgrader(c).get("grade_id"): c for c in nb.cells if _nbgrader(c).get("solution")}
    for grade_id, code in answers.items():
        if grade_id not in cells:
            raise ExerciseError(f"grade_id must be an answer cell's, one of {sorted(cells)}; got {grade_id!r}.")
        lines = cells[grade_id].source.split("\n")
        at = next((i for i in range(len(lines) - len(stub) + 1)
                   if [line.strip() for line in lines[i:i + len(stub)]] == stub), None)
        if at is None:
            raise ExerciseError(f"answer cell {grade_id!r} no longer holds the stub {stub[0]!r} ….")
        indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
        body = [indent + line if line.strip() else "" for line in code.strip("\n").split("\n")]
        cells[grade_id].source = "\n".join(lines[:at] + body + lines[at + len(stub):])
    return nb


def _chapter_of(path: Path):
    """The chapter of book.yml whose notebook has ``path``'s file name, or None."""
    return next((c for c in load_book().chapters if Path(c.notebook).name == path.name), None)


@validate_params(path=Instance((str, os.PathLike), 'a path'))
def check_submission(path: Path | str) -> list[str]:
    """What keeps a student's notebook from being graded as handed out; [] when nothing. Only reads ``path``.

    The chapter is the one whose notebook has the file's name. Reported: a
    file that is not a notebook (``nbgrader autograde`` logs the error, grades
    the other students, exits with status 1 and leaves the file in
    ``submitted/``), an answer cell deleted (its check then fails: 0 points), a
    check cell deleted (autograde puts it back and grades it, with the
    course's ``OverwriteCells.add_missing_cells = True``) or edited (autograde
    restores it from the source version).
    """
    path = Path(path)
    chapter = _chapter_of(path)
    if chapter is None:
        return [f"{path.name} is not the name of a chapter's notebook in book.yml: nbgrader grades only "
                f"notebooks named as released (an EXTRA notebook is not autograded)."]
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError, KeyError, AttributeError, nbformat.ValidationError) as err:  # NotJSONError: a ValueError
        return [f"{path} is not a readable notebook ({type(err).__name__}: {str(err)[:120]}): nbgrader autograde "
                f"cannot grade it and scores it 0; ask the student for the file again (the copy in submitted/ "
                f"is kept as it is)."]
    handed_out = student_version(nbformat.read(chapter.path, as_version=4), use_nbgrader=False)
    theirs = {_nbgrader(c).get("grade_id"): c for c in nb.cells if _nbgrader(c).get("grade_id")}
    problems = []
    for ex in find_exercises(handed_out):
        check = handed_out.cells[ex.check]
        check_id = _nbgrader(check)["grade_id"]
        if ex.grade_id not in theirs:
            problems.append(f"the answer cell {ex.grade_id!r} was deleted: {ex.function or 'the answer'} is "
                            f"not defined and its check scores 0.")
        if check_id not in theirs:
            problems.append(f"the check cell {check_id!r} was deleted: nbgrader autograde puts it back and "
                            f"grades it (OverwriteCells.add_missing_cells = True in nbgrader_config.py).")
        elif theirs[check_id].source != check.source:
            problems.append(f"the check cell {check_id!r} was edited: nbgrader autograde restores the "
                            f"original (hidden tests included) before grading.")
    return problems


@validate_params(course_dir=Instance((str, os.PathLike), 'a path'), args=ListOf(Text()),
                 timeout=Interval(float, 0, None, closed='neither', optional=True), env=Dict(optional=True))
def run_nbgrader(course_dir: Path | str, args: list[str], *,
                 timeout: float | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` (``args``: its command line after ``nbgrader``) in ``course_dir`` with this Python; output captured, exit status not checked.

    This interpreter's ``bin/`` goes first on ``PATH``: nbgrader runs the
    ``alembic`` executable installed beside it (otherwise "No such file or
    directory: 'alembic'"). ``env``: environment variables to set for
    nbgrader and the kernels it starts (e.g. ``{"OMP_NUM_THREADS": "1"}`` to
    grade two courses side by side on two cores), on top of this process's.
    """
    env = dict(os.environ, **(env or {}),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                          capture_output=True, text=True, timeout=timeout)


@validate_params(course_dir=Instance((str, os.PathLike), 'a path'), assignment_id=Text())
def gradebook_scores(course_dir: Path | str, assignment_id: str) -> dict[str, dict[str, float]]:
    """``{student_id: {grade_id: score}}`` for ``assignment_id``, read from the course's nbgrader gradebook.

    A score is nbgrader's: the manual score where a grader gave one, else the
    autograder's (0 for a cell it could not grade, which it flags for manual
    grading).
    """
    from nbgrader.api import Gradebook    # deferred: nbgrader is optional (the `classroom` extra)

    with Gradebook(f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}") as gb:
        return {sub.student.id: {g.name: g.score for notebook in sub.notebooks for g in notebook.grades}
                for sub in gb.assignment_submissions(assignment_id)}


def _main(argv: list[str] | None = None) -> int:
    """``python -m effdl.assign tag ID …`` (maintainers) or ``check NOTEBOOK …`` (instructors)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["check"] and args[1:]:
        bad = 0
        for path in args[1:]:
            problems = check_submission(path)
            bad += bool(problems)
            print(f"{path}: " + ("ok" if not problems else "".join(f"\n  problem: {p}" for p in problems)))
        return 1 if bad else 0
    if args[:1] != ["tag"]:
        print("usage: python -m effdl.assign tag ID [ID ...]   (maintainers; then: effdl execute ID ...)\n"
              "       python -m effdl.assign check NOTEBOOK [NOTEBOOK ...]   (a student's submission)")
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
