"""effdl.assign and the chapters' exercises: nbgrader format, student versions, checks that can fail."""
import copy
import inspect
import re
import sys

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from effdl import assign, book, cli

CHAPTERS = book.load_book().chapters
# Chapters still being written when the format arrived: their exercise cells
# hold answer and check together. `python -m effdl.assign tag 05 11 12`
# then `effdl execute 05 11 12` converts them; then empty this set (the
# strict xfail fails as soon as a listed chapter passes).
UNTAGGED: set[str] = set()


def _read(chapter):
    return nbformat.read(chapter.path, as_version=4)


def _imports(nb):
    """The chapter's setup-cell imports, executed: the names answer cells may use."""
    setup = next(c for c in nb.cells if c.cell_type == "code")
    lines = [line for line in setup.source.split("\n") if re.match(r"(import|from) \S+", line)]
    namespace = {}
    exec("\n".join(lines), namespace)
    return namespace


def _chapter_param(c):
    marks = [pytest.mark.xfail(strict=True, reason="exercise cells not tagged yet")] if c.id in UNTAGGED else []
    return pytest.param(c, id=c.id, marks=marks)


# ------------------------------------------------------------------ every chapter
@pytest.mark.parametrize("chapter", [_chapter_param(c) for c in CHAPTERS])
def test_chapter_exercises_are_in_nbgrader_format(chapter):
    nb = _read(chapter)
    assert assign.validate(nb) == []
    last = max(i for ex in assign.find_exercises(nb) for i in (ex.answer, ex.check))
    assert all(c.cell_type == "markdown" or not c.outputs for c in nb.cells[last + 1:]), \
        "graded exercises close the chapter: after them only questions and empty work cells"


@pytest.mark.parametrize("chapter", [pytest.param(c, id=c.id) for c in CHAPTERS])
def test_check_cells_print_their_verdict(chapter):
    """nbgrader reads a graded cell's ``execute_result`` as a partial-credit number (and warns when it is not
    one), so each check call is printed: its verdict is a stdout stream, and the stored output holds it."""
    nb = nbformat.read(chapter.path, as_version=4)
    for ex in assign.find_exercises(nb):
        cell = nb.cells[ex.check]
        calls = [line for line in cell.source.split("\n") if "check_" in line and not line.startswith("#")]
        assert calls and all(line.startswith("print(check_") for line in calls), cell.source
        assert [o.output_type for o in cell.outputs] == ["stream"], f"cell {ex.check}: {cell.outputs}"
        assert cell.outputs[0].text.count("\n") == len(calls)


@pytest.mark.parametrize("chapter", [pytest.param(c, id=c.id) for c in CHAPTERS])
def test_student_version_stubs_solutions_and_hides_tests(chapter):
    nb = _read(chapter)
    before = copy.deepcopy(nb)
    student = assign.student_version(nb)
    assert nb == before, "student_version must not change its input"
    assert len(student.cells) == len(nb.cells)
    exercises = {i for ex in assign.find_exercises(nb) for i in (ex.answer, ex.check)}
    for i, (src, out) in enumerate(zip(nb.cells, student.cells)):
        for marker in (assign.BEGIN_SOLUTION, assign.END_SOLUTION, assign.BEGIN_HIDDEN, assign.END_HIDDEN):
            assert marker not in out.source
        if i not in exercises:
            assert out == src, f"cell {i} is not an exercise cell and must be unchanged"
            continue
        assert out.outputs == [] and out.execution_count is None
        solution = re.findall(rf"{assign.BEGIN_SOLUTION}\n(.*?)\n\s*{assign.END_SOLUTION}", src.source, re.S)
        for line in "\n".join(solution).split("\n"):
            if line.strip() and not line.strip().startswith("#"):
                assert line not in out.source.split("\n"), f"cell {i} still shows the solution line {line!r}"
        for hidden in re.findall(rf"{assign.BEGIN_HIDDEN}\n(.*?)\n{assign.END_HIDDEN}", src.source, re.S):
            assert hidden not in out.source
    for ex in assign.find_exercises(nb):
        answer = student.cells[ex.answer].source
        if ex.function:          # the signature and the stub at the body's indentation stay
            assert re.search(rf"^def {ex.function}\(.*\):\n    # YOUR CODE HERE\n    raise NotImplementedError\(",
                             answer, re.M), answer


def _run_exercise(nb, ex):
    namespace = _imports(nb)
    exec(nb.cells[ex.answer].source, namespace)
    exec(nb.cells[ex.check].source, namespace)


_EXERCISES = [pytest.param(c, k, id=f"{c.id}-{k}") for c in CHAPTERS for k in range(2)]


@pytest.mark.parametrize("chapter, k", _EXERCISES)
def test_solution_passes_its_check_and_hidden_tests(chapter, k):
    nb = _read(chapter)
    ex = assign.find_exercises(nb)[k]
    _run_exercise(nb, ex)        # the check cell, hidden tests included, raises if the solution fails


@pytest.mark.parametrize("chapter, k", _EXERCISES)
def test_student_stub_fails_with_a_helpful_message(chapter, k):
    nb = _read(chapter)
    student = assign.student_version(nb)
    ex = assign.find_exercises(nb)[k]
    with pytest.raises(NotImplementedError, match="exercise not answered yet: replace this line"):
        _run_exercise(student, ex)


def _fingerprint(x):
    """A comparable summary of an argument a check passed to the reader's function."""
    import numpy as np
    import torch

    if isinstance(x, torch.Tensor):
        x = x.detach().double().numpy()
    if isinstance(x, np.ndarray) and x.dtype == object:     # e.g. chapter 8's numbers that count multiplications
        x = np.vectorize(lambda v: float(getattr(v, "value", v)), otypes=[float])(x)
    if isinstance(x, np.ndarray) and x.dtype != object:
        x = np.asarray(x, dtype=float)
        return ("array", x.shape, float(x.sum()), float(np.abs(x).max(initial=0)))
    if isinstance(x, dict):
        return ("dict", tuple(sorted((repr(k), _fingerprint(v)) for k, v in x.items())))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(_fingerprint(v) for v in x))
    assert " at 0x" not in repr(x), f"no content-based fingerprint for {type(x).__name__}"
    return repr(x)


@pytest.mark.parametrize("chapter, k", _EXERCISES)
def test_hidden_tests_draw_other_inputs(chapter, k):
    """The hidden tests re-run a check with another seed: that must give the solution other inputs."""
    from effdl import exercises

    nb = _read(chapter)
    ex = assign.find_exercises(nb)[k]
    namespace = _imports(nb)
    exec(nb.cells[ex.answer].source, namespace)
    solution, check = namespace[ex.function], getattr(exercises, ex.check_function)

    def inputs(seed):
        import random

        import numpy as np

        seen = []
        torch.manual_seed(0), np.random.seed(0), random.seed(0)     # only `seed` may tell the two runs apart

        def recorder(*args, **kwargs):
            seen.append(_fingerprint((args, kwargs)))
            return solution(*args, **kwargs)

        check(recorder, seed=seed)
        return seen

    default = inspect.signature(check).parameters["seed"].default
    assert default != assign.HIDDEN_SEED, f"{ex.check_function}'s default seed is the hidden tests' seed"
    assert f"seed={assign.HIDDEN_SEED})" in nb.cells[ex.check].source
    visible, hidden = inputs(default), inputs(assign.HIDDEN_SEED)
    assert visible and hidden and visible != hidden, f"{ex.check_function} ignores its seed"
    assert visible == inputs(default), f"{ex.check_function} is not deterministic for a given seed"


WRONG_ANSWERS = {
    # a plausible mistake for each check, which it must catch with a hint
    "check_conv_counts": (lambda c, k, r, h, w: (k * c * r * r, k * h * w * c * r * r), "bias"),
    "check_energy_per_image": (lambda macs, w, b, mem: (macs * 4.6 + w * 640.0) / 1e6, "batch|differs"),
    "check_decode_float": (lambda bits, e, m: float(int(bits, 2)), "exponent|sign|decode"),
    "check_round_fixed": (lambda x, m, n: __import__("numpy").round(x * 2 ** n) / 2 ** n, "saturates"),
    "check_nearest_centroid": (lambda w, c: abs(w[..., None] - c)[..., ::-1].argmin(-1), "nearest|lower"),
    "check_truncated_svd": (lambda w, r: (w[:r] * 0 + 1, w[:, :r] * 0), "best rank|differ"),
    "check_tt_params": (lambda ins, outs, ranks: sum(n * m for n, m in zip(ins, outs)), "core|dense"),
    "check_winograd_f23": (lambda d, g: __import__("numpy").correlate(d, g, "valid"), "needs only 4"),
    "check_fixed_point_frac_bits": (lambda x, n_bits: n_bits - 1, "does not cover|finest"),
    "check_fake_quantize_ste": (lambda x, s, z, lo, hi: (torch.clamp(torch.round(x / s) + z, lo, hi) - z) * s,
                                "pass straight through"),
    "check_rounding_shift": (lambda v, shift: v >> shift, "even neighbour"),
    "check_split_ranges": (lambda n, w: [(i * (n // w), n if i == w - 1 else (i + 1) * (n // w)) for i in range(w)],
                           "unbalanced|first processes"),
    "check_staleness": (lambda order: [0] * len(order), "expected"),
    "check_loss_scale_update": (lambda scale, good, inf: (scale / 2, 0) if inf else (scale, good + 1), "2000th"),
    "check_underflow_fraction": (lambda g, scale: float(((g * scale).half() == 0).float().mean()), "float16"),
}


@pytest.mark.parametrize("seed", ["default", "hidden"])
@pytest.mark.parametrize("name", sorted(WRONG_ANSWERS))
def test_new_checks_catch_a_wrong_answer(name, seed):
    from effdl import exercises

    fn, hint = WRONG_ANSWERS[name]
    kwargs = {"seed": assign.HIDDEN_SEED} if seed == "hidden" else {}
    with pytest.raises(AssertionError, match=hint):
        getattr(exercises, name)(fn, **kwargs)


def test_winograd_conv_check_counts_multiplications():
    import numpy as np
    from scipy.signal import correlate2d

    from effdl import exercises

    def direct(x, g):            # right values, direct method: 9 multiplications per output
        out = np.zeros((x.shape[0] - 2, x.shape[1] - 2), dtype=x.dtype)
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = (x[i:i + 3, j:j + 3] * g).sum()
        return out

    assert np.allclose(direct(np.eye(5), np.ones((3, 3))), correlate2d(np.eye(5), np.ones((3, 3)), "valid"))
    with pytest.raises(AssertionError, match="at most 16 multiplications"):
        exercises.check_winograd_conv(direct)
    with pytest.raises(AssertionError, match="valid output"):
        exercises.check_winograd_conv(lambda x, g: correlate2d(x, g, "same"))


# ------------------------------------------------------------------ the machinery, on small notebooks
def _toy(combined=False, tagged=True):
    cells = [new_markdown_cell("# T\n\nText."), new_code_cell("x = 1", outputs=[new_output("stream", text="1\n")]),
             new_markdown_cell("## Exercises\n\n1. Write f, then g.")]
    for name in ("f", "g"):
        answer = f"def {name}(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
        check = (f"check_magnitude_mask({name})\n### BEGIN HIDDEN TESTS\ncheck_magnitude_mask({name}, seed=3)\n"
                 "### END HIDDEN TESTS")
        cells += [new_code_cell(answer + "\n\n" + check)] if combined else [new_code_cell(answer), new_code_cell(check)]
    nb = new_notebook(cells=cells)
    return assign.tag_exercises(nb) if tagged else nb


def test_tag_exercises_splits_and_is_idempotent():
    nb = _toy(combined=True, tagged=False)
    assert [ex.answer == ex.check for ex in assign.find_exercises(nb)] == [True, True]
    assert any("share a cell" in p for p in assign.validate(nb))
    assign.tag_exercises(nb)
    assert len(nb.cells) == 7 and assign.validate(nb) == [], assign.validate(nb)
    assert nb.cells[3].source.endswith("### END SOLUTION") and nb.cells[4].source.startswith("check_magnitude_mask(f)")
    again = assign.tag_exercises(copy.deepcopy(nb))
    assert again == nb
    grade = nb.cells[4].metadata["nbgrader"]
    assert grade["grade"] and grade["locked"] and grade["points"] == 1 and grade["schema_version"] == 3


@pytest.mark.parametrize("combined", [True, False])
def test_tag_exercises_adds_hidden_tests(combined):
    nb = _toy(combined=combined, tagged=False)
    for cell in nb.cells:                    # exercises written without hidden tests, checks printed
        if assign.BEGIN_HIDDEN in cell.source:
            cell.source = cell.source.split("\n" + assign.BEGIN_HIDDEN)[0].replace("check_magnitude_mask(f)",
                                                                                 "print(check_magnitude_mask(f))")
            cell.outputs = [new_output("stream", text="old\n")]
    if not combined:
        assign.tag_exercises(nb)             # already split: only the hidden tests are missing
        nb.cells[4].source = nb.cells[4].source.split("\n" + assign.BEGIN_HIDDEN)[0]
        assert any("no '### BEGIN HIDDEN TESTS' region" in p for p in assign.validate(nb))
    assign.tag_exercises(nb)
    assert assign.validate(nb) == [], assign.validate(nb)
    assert nb.cells[4].source == ("print(check_magnitude_mask(f))\n### BEGIN HIDDEN TESTS\n"
                                  "print(check_magnitude_mask(f, seed=1))\n### END HIDDEN TESTS")
    assert nb.cells[4].outputs == [] and nb.cells[6].outputs == [], "changed check cells need re-executing"
    assert nb.cells[6].source.endswith("check_magnitude_mask(g, seed=1)\n### END HIDDEN TESTS")
    assert assign.tag_exercises(copy.deepcopy(nb)) == nb
    assert assign.student_version(nb).cells[4].source == "print(check_magnitude_mask(f))"


@pytest.mark.parametrize("check, hidden", [
    ("check_a(f)", "check_a(f, seed=1)"),
    ("check_a()", "check_a(seed=1)"),
    ("print(check_a(g(x), k=(1, 2)))  # note", "print(check_a(g(x), k=(1, 2), seed=1))  # note"),
    ("check_a(f, seed=3)", "check_a(f, seed=3)"),
    ("x = check_a(f); y = check_b(g)", "x = check_a(f, seed=1); y = check_b(g, seed=1)"),
    ("check_a(check_b(f))", "check_a(check_b(f), seed=1)"),
    ("n = 3\ncheck_a(f, n)", "check_a(f, n, seed=1)"),
])
def test_hidden_tests_repeat_the_checks_with_the_hidden_seed(check, hidden):
    assert assign.hidden_tests(check) == f"{assign.BEGIN_HIDDEN}\n{hidden}\n{assign.END_HIDDEN}"


@pytest.mark.parametrize("check, match", [("print(f(2))", "no check_"), ("check_a(f", "unbalanced")])
def test_hidden_tests_bad_checks(check, match):
    with pytest.raises(assign.ExerciseError, match=match):
        assign.hidden_tests(check)


def test_validate_wants_checks_that_take_a_seed(monkeypatch):
    from effdl import exercises

    nb = _toy()
    monkeypatch.setattr(exercises, "check_magnitude_mask", lambda fn: "ok")
    assert any("takes no seed=" in p for p in assign.validate(nb))


def test_student_version_of_a_toy_notebook():
    student = assign.student_version(_toy())
    assert student.cells[1].outputs, "outputs of other cells stay"
    assert student.cells[3].source == "def f(x):\n    " + assign.CODE_STUB.replace("\n", "\n    ")
    assert student.cells[4].source == "check_magnitude_mask(f)"
    namespace = {}
    exec(student.cells[3].source, namespace)
    with pytest.raises(NotImplementedError, match="exercise not answered yet"):
        namespace["f"](1)


def test_validate_reports_problems():
    nb = _toy()
    del nb.cells[4].metadata["nbgrader"]
    assert any("grade metadata" in p for p in assign.validate(nb))
    nb = _toy()
    nb.cells[1].source = "### BEGIN HIDDEN TESTS\nx = 1\n### END HIDDEN TESTS"
    assert any("not an exercise cell" in p for p in assign.validate(nb))
    nb = _toy()
    nb.cells[1].source = "x = 1  ### BEGIN SOLUTION"
    assert any("next cell is not a code cell" in p for p in assign.validate(nb))
    nb = _toy()
    del nb.cells[5:]
    assert any("at least 2" in p for p in assign.validate(nb))
    nb = _toy()
    nb.cells[4].source = "print(f(2))"
    assert any("check_* function" in p for p in assign.validate(nb))
    nb = _toy()
    nb.cells[4].source = nb.cells[4].source.replace("check_magnitude_mask", "check_nothing")
    assert any("not a function of effdl.exercises" in p for p in assign.validate(nb))


def test_write_assignment_and_cli(tmp_path, capsys):
    assert cli.main(["assign", str(tmp_path / "class"), "08", "00"]) == 0
    written = sorted(p.name for p in (tmp_path / "class").iterdir())
    assert written == ["00_why_efficiency.ipynb", "08_winograd.ipynb"]
    assert "wrote" in capsys.readouterr().out
    student = nbformat.read(tmp_path / "class" / "08_winograd.ipynb", as_version=4)
    assert student == assign.student_version(_read(book.load_book().chapter("08")))
    assert cli.main(["assign", str(tmp_path / "course"), "08", "--nbgrader"]) == 0
    source = tmp_path / "course" / "source" / "08_winograd" / "08_winograd.ipynb"
    unfolded = _read(book.load_book().chapter("08"))
    assert book.show_solutions(unfolded) > 0             # the book folds its solutions; the course source does not
    assert nbformat.read(source, as_version=4) == unfolded
    assert "ClearSolutions.code_stub" in (tmp_path / "course" / "nbgrader_config.py").read_text()


@pytest.mark.parametrize("args, match", [
    (["assign", str(book.ROOT / "chapters")], "must not be the chapters folder"),
    (["assign", "/tmp/x", "99"], "chapter_id must be one of"),
])
def test_assign_cli_errors(args, match, capsys):
    assert cli.main(args) == 2
    assert re.search(match, capsys.readouterr().err)


# ------------------------------------------------------------------ student versions run
@pytest.mark.parametrize("chapter_id", ["00", "01"])
def test_student_version_executes_up_to_the_exercises(chapter_id, tmp_path):
    """Fast chapters: every cell before the first exercise runs clean; each check cell then fails
    with the stub's NotImplementedError, and nothing else fails."""
    from nbclient import NotebookClient

    path, = assign.write_assignment(tmp_path, [chapter_id])
    nb = nbformat.read(path, as_version=4)
    exercises = assign.find_exercises(nb)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    checks = {ex.check for ex in exercises}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if i in checks:
            assert [e.ename for e in errors] == ["NotImplementedError"], f"cell {i}: {errors}"
            assert "exercise not answered yet" in errors[0].evalue
        else:
            assert not errors, f"cell {i} failed in the student version: {errors}"


# ------------------------------------------------------------------ nbgrader's preprocessors or our writer
@pytest.mark.parametrize("chapter", [pytest.param(c, id=c.id) for c in CHAPTERS])
def test_nbgrader_preprocessors_and_our_writer_give_the_same_student_version(chapter):
    nb = _read(chapter)
    assert assign.student_version(nb, use_nbgrader=True) == assign.student_version(nb, use_nbgrader=False)


def test_same_student_version_on_edge_cases():
    nb = _toy()
    nb.metadata["celltoolbar"] = "Create Assignment"            # nbgrader drops it
    nb.cells.append(new_code_cell("x = 2", metadata={"nbgrader": {"solution": True, "grade": False,
                                                                  "grade_id": "whole", "locked": False}}))
    nb.cells.append(new_markdown_cell("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"))
    ours, theirs = assign.student_version(nb, use_nbgrader=False), assign.student_version(nb, use_nbgrader=True)
    assert ours == theirs
    assert "celltoolbar" not in ours.metadata
    assert ours.cells[-2].source == assign.CODE_STUB and ours.cells[-1].source == "Why?\n" + assign.TEXT_STUB


def test_student_version_without_nbgrader_uses_its_own_writer(monkeypatch):
    monkeypatch.setitem(sys.modules, "nbgrader.preprocessors", None)      # `import` now raises ImportError
    assert assign._nbgrader_preprocessors() is None
    toy = _toy()
    assert assign.student_version(toy) == assign.student_version(toy, use_nbgrader=False)
    with pytest.raises(ImportError, match=r"needs nbgrader: pip install -e '.\[classroom\]'"):
        assign.student_version(toy, use_nbgrader=True)


@pytest.mark.parametrize("use_nbgrader", [True, False])
@pytest.mark.parametrize("source, match", [
    ("### BEGIN SOLUTION\nx = 1", "without"),
    ("x = 1\n### END SOLUTION", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "nested"),
    ("### BEGIN HIDDEN TESTS\nx = 1\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS", "nested"),
])
def test_unbalanced_markers_give_one_message_either_way(source, match, use_nbgrader):
    with pytest.raises(assign.ExerciseError, match=match):
        assign.student_version(new_notebook(cells=[new_code_cell(source)]), use_nbgrader=use_nbgrader)


# ------------------------------------------------------------------ write_assignment: bad input, nothing lost
def test_write_assignment_refuses_a_folder_in_use(tmp_path, capsys):
    handout = tmp_path / "handout"
    handout.mkdir()
    (handout / "alice_notes.ipynb").write_text("{}")
    assert cli.main(["assign", str(handout), "08"]) == 2
    assert "must be a new or empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in handout.iterdir()) == ["alice_notes.ipynb"]
    path, = assign.write_assignment(handout, ["08"], overwrite=True)
    assert sorted(p.name for p in handout.iterdir()) == ["08_winograd.ipynb", "alice_notes.ipynb"]
    assert (handout / "alice_notes.ipynb").read_text() == "{}"
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ValueError, match="must be a folder; got .*a file"):
        assign.write_assignment(tmp_path / "a_file", ["08"])
    with pytest.raises(ValueError, match="chapter_id must be one of"):
        assign.write_assignment(tmp_path / "new", ["08", "99"])
    assert not (tmp_path / "new").exists(), "nothing is written before every chapter id is known"


def test_write_assignment_into_a_course(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    (course / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty and has no nbgrader_config.py"):
        assign.write_assignment(course, ["08"], nbgrader=True)
    (course / "notes.txt").unlink()
    first, = assign.write_assignment(course, ["08"], nbgrader=True)
    config = (course / "nbgrader_config.py").read_text()
    assert "c.Execute.timeout = 450" in config and "add_missing_cells = True" in config
    submitted = course / "submitted" / "alice" / "08_winograd" / "08_winograd.ipynb"
    submitted.parent.mkdir(parents=True)
    submitted.write_text("alice's work")
    (course / "nbgrader_config.py").write_text(config + 'c.CourseDirectory.course_id = "course101"\n')
    assign.write_assignment(course, ["08", "00"], nbgrader=True)   # adds chapter 00, keeps the rest
    assert (course / "nbgrader_config.py").read_text().endswith('"course101"\n'), "the instructor's config stays"
    assert submitted.read_text() == "alice's work"
    assert (course / "source" / "00_why_efficiency" / "00_why_efficiency.ipynb").exists()
    edited = nbformat.read(first, as_version=4)
    edited.cells[0].source += " (my edit)"
    nbformat.write(edited, first)
    with pytest.raises(ValueError, match="exists and differs from the chapter in book.yml.*Nothing was written"):
        assign.write_assignment(course, ["08"], nbgrader=True)
    assert nbformat.read(first, as_version=4) == edited
    assign.write_assignment(course, ["08"], nbgrader=True, overwrite=True)
    unfolded = _read(book.load_book().chapter("08"))
    book.show_solutions(unfolded)
    assert nbformat.read(first, as_version=4) == unfolded
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    with pytest.raises(ValueError, match="does not set ClearSolutions.code_stub"):
        assign.write_assignment(course, ["08"], nbgrader=True)


# ------------------------------------------------------------------ submissions
@pytest.mark.parametrize("chapter", [pytest.param(c, id=c.id) for c in CHAPTERS])
def test_reference_submission_is_the_chapters_solution(chapter):
    nb = _read(chapter)
    filled = assign.fill_answers(assign.student_version(nb), assign.solution_bodies(nb))
    for ex in assign.find_exercises(nb):
        unmarked = [line for line in nb.cells[ex.answer].source.split("\n") if "### " not in line]
        assert filled.cells[ex.answer].source == "\n".join(unmarked)


def test_fill_answers_errors():
    student = assign.student_version(_toy())
    with pytest.raises(assign.ExerciseError, match="grade_id must be an answer cell's"):
        assign.fill_answers(student, {"nope": "return 1"})
    done = assign.fill_answers(student, {"f": "return 1"})
    with pytest.raises(assign.ExerciseError, match="no longer holds the stub"):
        assign.fill_answers(done, {"f": "return 2"})


def test_check_submission(tmp_path):
    nb = _read(book.load_book().chapter("08"))
    path = tmp_path / "08_winograd.ipynb"
    nbformat.write(assign.student_version(nb), path)
    assert assign.check_submission(path) == []
    assert "not the name of a chapter's notebook" in assign.check_submission(tmp_path / "mine.ipynb")[0]
    path.write_text("{}")
    assert "is not a readable notebook (ValidationError" in assign.check_submission(path)[0]


# ------------------------------------------------------------------ the instructors' page
def test_instructors_page_table_is_current_and_staged(tmp_path):
    import yaml

    text = book.INSTRUCTORS_MD.read_text()
    block = re.search(r"<!-- instructors:start -->\n(.*?)\n<!-- instructors:end -->", text, re.S)
    assert block, "chapters/instructors.md lacks the table markers"
    assert block.group(1).strip() == assign.instructor_table().strip(), \
        "the instructors' table is stale: paste `python -c 'from effdl.assign import instructor_table; " \
        "print(instructor_table())'`"
    stage = book.stage_book(book.load_book(), tmp_path / "stage")
    toc = yaml.safe_load((stage / "_toc.yml").read_text())
    assert {"caption": "For instructors", "chapters": [{"file": "instructors"}]} in toc["parts"]
    assert (stage / "instructors.md").read_text() == text
    assert "(instructors.md)" in (stage / "index.md").read_text()
    block = re.search(r"<!-- exercises:start -->\n(.*?)\n<!-- exercises:end -->", text, re.S)
    assert block and block.group(1).strip() == assign.exercise_table().strip(), \
        "the instructors' exercise table is stale: paste `python -c 'from effdl.assign import exercise_table; " \
        "print(exercise_table())'`"


def test_every_exercise_function_follows_the_my_rule():
    """The function a student writes is ``my_<thing>`` in every chapter (never the package's own name)."""
    bad = [(c.id, ex.function) for c in book.load_book().chapters for ex in assign.chapter_exercises(c.id)
           if not (ex.function or "").startswith("my_")]
    assert not bad, f"exercise functions not named my_*: {bad}"
