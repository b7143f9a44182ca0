"""The instructor's flow with nbgrader itself, end to end, on a temporary course folder.

For each chapter tested: ``effdl assign COURSE ID --nbgrader`` →
``nbgrader generate_assignment`` (its release version compared with ``effdl
assign``'s student version) → students' submissions → ``nbgrader
autograde`` → the scores read back from nbgrader's gradebook
(``nbgrader.api.Gradebook``) → ``nbgrader generate_feedback``:

- ``reference``: the chapter's own solutions, full marks;
- ``stubs``: the release version untouched, 0 on every graded cell (and no crash);
- ``wrong``: one plausible mistake (:data:`WRONG`), the other answers right: partial marks;
- ``overfit``: right only on the inputs of the visible check (it counts the calls
  the visible check makes) for one exercise other than the wrong one, the other
  answers right: passes the student's own run, fails the hidden tests at
  autograde, so partial marks — the hidden tests really are put back and run.

Autograding executes each submission in full (the whole chapter, in a fresh
kernel), which is most of the suite's time. Chapters 01 and 02 (the normal
suite's) take all four students. With ``EFFDL_CLASSROOM_CHAPTERS=all``
(``make classroom-check``, and ``make test``, which CI runs) every other chapter
takes ``wrong`` and ``overfit`` only: between them each exercise's reference
answer passes its hidden tests under nbgrader at least once (the overfitted
exercise is never the wrong one), a wrong answer loses exactly its points and an
overfitted one fails at the hidden tests; what ``reference`` and ``stubs`` add
(full marks on a whole notebook, an untouched stub scores 0 without a crash) is
nbgrader's own behaviour and does not depend on the chapter, so two chapters
show it. This halves the classroom time of CI.
The courses are graded by two worker threads side by side
(``EFFDL_CLASSROOM_WORKERS``), nbgrader and its kernels on one thread each:
a chapter's kernel keeps a core busy only part of the time.

A second course (chapter 00) takes the bad submissions: a file that is not
JSON, a deleted check cell, a deleted answer cell, an edited check cell;
``effdl assign`` re-run on a graded course changes nothing.

nbgrader comes with the ``dev`` install (the ``classroom`` extra): without it
these tests fail, they never skip.
"""
import copy
import hashlib
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from effdl import assign, book, cli

BOOK = book.load_book()
_ids = os.environ.get("EFFDL_CLASSROOM_CHAPTERS", "01 02").split()
CHAPTER_IDS = [c.id for c in BOOK.chapters] if _ids == ["all"] else _ids
STUDENTS = ("reference", "stubs", "wrong", "overfit")
ALL_STUDENTS_CHAPTERS = ("01", "02")          # the others take wrong and overfit (module docstring)


def students(chapter_id: str) -> tuple:
    """The submissions autograded for a chapter (see the module docstring for why not all four everywhere)."""
    return STUDENTS if chapter_id in ALL_STUDENTS_CHAPTERS else ("wrong", "overfit")

# One plausible mistake per chapter: the body a student writes in place of the stub, for one exercise.
WRONG = {
    "my_conv_counts": "return out_ch * in_ch * kernel * kernel, out_ch * out_h * out_w * in_ch * kernel * kernel"
                      "  # no bias",
    "my_round_fixed": "step = 2.0 ** -frac_bits\nreturn np.round(x / step) * step  # does not saturate",
    "my_threshold_mask": "return weight > quality * weight.std()  # forgot the magnitude",
    "my_nearest_centroid": "distance = np.abs(np.asarray(weight)[..., None] - np.asarray(codebook))\n"
                           "return distance.shape[-1] - 1 - distance[..., ::-1].argmin(axis=-1)  # ties go up",
    "my_relative_index": "gaps, values, run = [], [], 0\nfor w in weight:\n    if w == 0:\n        run += 1\n"
                         "        continue\n    gaps.append(run)  # no filler when a gap outgrows the index bits\n"
                         "    values.append(w)\n    run = 0\nreturn np.array(gaps, dtype=int), np.array(values)",
    "my_rounding_shift": "return v >> shift  # rounds towards minus infinity",
    "my_twn": "delta = 0.7 * weight.abs().mean()\nkeep = weight.abs() > delta\n"
              "alpha = weight.abs().mean()  # the mean of all weights, not of the kept ones\n"
              "return torch.where(keep, torch.sign(weight) * alpha, torch.zeros_like(weight))",
    "my_tt_params": "return sum(n * m for n, m in zip(in_factors, out_factors))  # forgot the ranks",
    "my_winograd_f23": "return np.correlate(d, g, 'valid')  # right values, 6 multiplications",
    "my_fc_intensity": "return batch_size * n_in * n_out / (n_in * n_out * n_bits_weight / 8)  # a MAC is 2 ops",
    "my_cycles": "return int(np.maximum(entries, 1).sum(axis=1).max())  # ignores the broadcast queue",
    "my_staleness": "return [0] * len(order)  # as if synchronous",
    "my_loss_scale_update": "if found_inf:\n    return scale / 2, 0\nreturn scale, good_steps + 1  # never grows",
    "my_distillation_loss": "log_p_s = torch.log_softmax(student_logits / temperature, dim=1)\n"
                            "log_p_t = torch.log_softmax(teacher_logits / temperature, dim=1)\n"
                            "kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean()\n"
                            "hard = torch.nn.functional.cross_entropy(student_logits, labels)\n"
                            "return alpha * kl + (1 - alpha) * hard  # forgot T squared",
    "my_training_days": "return total_flops / (peak_tflops * 1e12) / 86400  # forgot the utilization",
    "my_geomean_speedup": "return sum(b / t for b, t in zip(baseline_times, new_times)) / len(new_times)"
                          "  # arithmetic mean",
    "my_matmul_intensity": "return 2 * m * k * n / (bytes_per_element * (m * k + k * n))  # forgot the output",
    "my_separable_cost": "out = (size + 2 * (kernel // 2) - kernel) // stride + 1\n"
                         "return kernel * kernel * in_ch + in_ch * out_ch, in_ch * out_ch * out * out"
                         "  # forgot the depthwise MACs",
    "my_kv_cache_bytes": "return 2 * spec.n_layer * spec.n_head * spec.head_dim * spec.bytes_per_value * context"
                         " * batch_size  # query heads, not key/value heads",
    "my_smooth_scales": "return act_max ** (1 - alpha) / weight.abs().amax(dim=0) ** alpha  # alpha on the wrong side",
    "my_nm_bytes": "kept = rows * cols // m * n\nreturn -(-kept * n_bits_value // 8)  # forgot the indices",
    "my_expected_speedup": "return (1 - alpha ** n_draft) / ((1 - alpha) * (n_draft * cost_ratio + 1))"
                           "  # k tokens per round, not k + 1",
}

OVERFIT = '''
from effdl.exercises import {check} as _visible_check

_calls = [0]


def _counted(*args, **kwargs):
    _calls[0] += 1
    return _reference(*args, **kwargs)


_visible_check(_counted)         # the visible check's inputs: the only ones this answer gets right
_seen, _calls[0] = _calls[0], 0


def {function}(*args, **kwargs):
    _calls[0] += 1
    if _calls[0] > _seen:
        raise AssertionError("overfitted: wrong on inputs the visible check never tried")
    return _reference(*args, **kwargs)
'''


def _read(path):
    return nbformat.read(path, as_version=4)


def _submissions(source, release) -> dict:
    """The four students' notebooks (see the module docstring), made from nbgrader's release version."""
    exercises = assign.find_exercises(source)
    reference = assign.solution_bodies(source)
    wrong, = [ex for ex in exercises if ex.function in WRONG]
    subs = {"reference": assign.fill_answers(release, reference), "stubs": release,
            "wrong": assign.fill_answers(release, {**reference, wrong.grade_id: WRONG[wrong.function]})}
    first = overfit_exercise(exercises)
    overfit = assign.fill_answers(release, reference)
    cell = overfit.cells[first.answer]
    cell.source = re.sub(rf"^def {first.function}\(", "def _reference(", cell.source, flags=re.M)
    cell.source += "\n" + OVERFIT.format(check=first.check_function, function=first.function)
    subs["overfit"] = overfit
    return subs


def overfit_exercise(exercises):
    """The exercise the overfitted student answers: the first one that is not :data:`WRONG`'s."""
    return next(ex for ex in exercises if ex.function not in WRONG)


def _run_in_process(nb, ex) -> str:
    """Run an exercise's answer and check cells of ``nb`` here, after the setup cell's imports; the check's result."""
    setup = next(c for c in nb.cells if c.cell_type == "code")
    namespace = {}
    exec("\n".join(line for line in setup.source.split("\n") if re.match(r"(import|from) \S+", line)), namespace)
    exec(nb.cells[ex.answer].source, namespace)
    return exec(nb.cells[ex.check].source, namespace)


@pytest.mark.parametrize("chapter", [pytest.param(c, id=c.id) for c in BOOK.chapters])
def test_wrong_and_overfitted_answers_fail_where_they_should(chapter):
    """Fast, without nbgrader, for every chapter: the plausible mistake fails its visible check; the
    overfitted answer passes the visible check and fails the hidden tests (the source's check cell)."""
    source = _read(chapter.path)
    student = assign.student_version(source)
    exercises = assign.find_exercises(source)
    assert sum(ex.function in WRONG for ex in exercises) == 1, "one plausible mistake per chapter in WRONG"
    subs = _submissions(source, student)
    wrong = next(ex for ex in exercises if ex.function in WRONG)
    with pytest.raises(AssertionError):
        _run_in_process(subs["wrong"], wrong)
    first = overfit_exercise(exercises)
    _run_in_process(subs["overfit"], first)                        # the visible check passes
    hidden = copy.deepcopy(subs["overfit"])
    hidden.cells[first.check] = source.cells[first.check]
    with pytest.raises(AssertionError, match="overfitted"):
        _run_in_process(hidden, first)


def _write_submission(root: Path, student: str, stem: str, nb_or_text) -> Path:
    path = root / "submitted" / student / stem / f"{stem}.ipynb"
    path.parent.mkdir(parents=True)
    if isinstance(nb_or_text, str):
        path.write_text(nb_or_text)
    else:
        nbformat.write(nb_or_text, path)
    return path


def _hashes(root: Path, *folders: str) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for f in folders for p in sorted((root / f).rglob("*")) if p.is_file()}


@dataclass
class Course:
    root: Path
    chapter: book.Chapter
    stem: str
    source: object            # the instructor version nbgrader read
    release: object           # nbgrader's student version
    submitted: dict           # student → sha256 of the submitted file, as written
    autograde: object         # the CompletedProcess of `nbgrader autograde`
    feedback: object
    scores: dict              # from the gradebook


def _new_course(root: Path, chapter_id: str, *, env: dict | None = None):
    """`effdl assign ROOT ID --nbgrader` then `nbgrader generate_assignment`: (chapter, stem, source, release).

    Both are the instructor's commands, run as subprocesses (so that worker threads can build courses side by side).
    """
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        pytest.fail("nbgrader is not installed: pip install -e '.[classroom]' (make setup installs it); "
                    "the classroom tests fail rather than skip, so that CI always runs them.")

    run = subprocess.run([sys.executable, "-m", "effdl", "assign", str(root), chapter_id, "--nbgrader"],
                         capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    assert run.returncode == 0, run.stdout + run.stderr
    chapter = BOOK.chapter(chapter_id)
    stem = Path(chapter.notebook).stem
    run = assign.run_nbgrader(root, ["generate_assignment", stem], env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    return chapter, stem, _read(root / "source" / stem / f"{stem}.ipynb"), _read(root / "release" / stem / f"{stem}.ipynb")


def _graded_course(root: Path, chapter_id: str, env: dict | None) -> Course:
    """The whole flow for one chapter: course, submissions, autograde, feedback, scores."""
    chapter, stem, source, release = _new_course(root, chapter_id, env=env)
    for student, nb in _submissions(source, release).items():
        if student in students(chapter_id):
            _write_submission(root, student, stem, nb)
    submitted = _hashes(root, "submitted")
    autograde = assign.run_nbgrader(root, ["autograde", stem], env=env)
    feedback = assign.run_nbgrader(root, ["generate_feedback", stem], env=env)
    return Course(root, chapter, stem, source, release, submitted, autograde, feedback,
                  assign.gradebook_scores(root, stem))


# Autograding is most of this file's time, and a chapter's kernel keeps one core busy only part of the time
# (imports, Python, small tensors). So the courses of all selected chapters are graded by WORKERS threads side by
# side, each course's nbgrader and kernels on one thread each (OMP/MKL), and each chapter's tests wait for theirs.
WORKERS = int(os.environ.get("EFFDL_CLASSROOM_WORKERS", "2"))
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
_graded: dict = {}


def _schedule(session, tmp_path_factory) -> dict:
    """Start grading every chapter that a selected test asks for (once per session); chapter id → Future."""
    if not _graded:
        wanted = {item.callspec.params["course"] for item in session.items
                  if hasattr(item, "callspec") and "course" in item.callspec.params}
        pool = ThreadPoolExecutor(max_workers=max(1, WORKERS))
        env = ONE_THREAD if WORKERS > 1 else None
        for chapter_id in (c for c in CHAPTER_IDS if c in wanted):
            _graded[chapter_id] = pool.submit(_graded_course, tmp_path_factory.mktemp(f"course_{chapter_id}"),
                                              chapter_id, env)
        pool.shutdown(wait=False)
    return _graded


@pytest.fixture(scope="module", params=CHAPTER_IDS)
def course(request, tmp_path_factory):
    return _schedule(request.session, tmp_path_factory)[request.param].result()


def test_release_version_is_effdl_assigns_student_version(course):
    """Same cells, same stubs, hidden tests removed; nbgrader also clears every output. (effdl assign
    writes student_version of the chapter: test_assign.py.)"""
    ours = assign.student_version(course.source)
    assert [(c.cell_type, c.source) for c in course.release.cells] == [(c.cell_type, c.source) for c in ours.cells]
    assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in course.release.cells] == \
        [c.metadata.get("nbgrader", {}).get("grade_id") for c in ours.cells]
    assert all(not c.outputs for c in course.release.cells if c.cell_type == "code")
    folded = [i for i, c in enumerate(course.release.cells) if c.metadata.get("jupyter", {}).get("source_hidden")]
    assert not folded, f"the student's stubs must be open in nbgrader's release; folded cells {folded}"
    text = "\n".join(c.source for c in course.release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, marker
    for ex in assign.find_exercises(course.source):
        assert f"seed={assign.HIDDEN_SEED})" not in course.release.cells[ex.check].source, "a hidden test is left"
        assert course.release.cells[ex.answer].source != course.source.cells[ex.answer].source


def test_autograde_gives_exactly_the_expected_scores(course):
    assert course.autograde.returncode == 0, course.autograde.stdout + course.autograde.stderr
    exercises = assign.find_exercises(course.source)
    points = {course.source.cells[ex.check].metadata["nbgrader"]["grade_id"]: ex.points for ex in exercises}
    wrong = next(f"{ex.grade_id}_check" for ex in exercises if ex.function in WRONG)
    overfit = f"{overfit_exercise(exercises).grade_id}_check"
    expected = {
        "reference": points,
        "stubs": dict.fromkeys(points, 0.0),
        "wrong": {**points, wrong: 0.0},
        "overfit": {**points, overfit: 0.0},
    }
    assert course.scores == {s: expected[s] for s in students(course.chapter.id)}


def test_hidden_tests_are_put_back_and_run_at_autograde(course):
    """The autograded check cells hold the hidden tests; the overfitted answer passes the visible check
    (the student's own run) and fails only on the hidden seed's inputs."""
    exercises = assign.find_exercises(course.source)
    graded = {s: _read(course.root / "autograded" / s / course.stem / f"{course.stem}.ipynb")
              for s in students(course.chapter.id)}
    first = overfit_exercise(exercises)
    for ex in exercises:         # each reference answer passes its hidden tests in some submission
        check_id = course.source.cells[ex.check].metadata["nbgrader"]["grade_id"]
        right = "reference" if "reference" in graded else ("wrong" if ex.function not in WRONG else "overfit")
        cell = next(c for c in graded[right].cells if c.metadata.get("nbgrader", {}).get("grade_id") == check_id)
        assert assign.BEGIN_HIDDEN in cell.source and f"seed={assign.HIDDEN_SEED})" in cell.source
        assert not [o for o in cell.outputs if o.output_type == "error"]
    check_id = f"{first.grade_id}_check"
    cell = next(c for c in graded["overfit"].cells if c.metadata.get("nbgrader", {}).get("grade_id") == check_id)
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert [e.evalue for e in errors] == ["overfitted: wrong on inputs the visible check never tried"]
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors[0].traceback))       # without ANSI colours
    assert re.search(rf"^-+> +\d+ .*seed={assign.HIDDEN_SEED}\)", traceback, re.M), "not the hidden test's call"


def test_feedback_is_an_html_report_per_student(course):
    assert course.feedback.returncode == 0, course.feedback.stdout + course.feedback.stderr
    assert all(course.scores[s] for s in students(course.chapter.id)), "no grades to report"
    for student in students(course.chapter.id):
        html = (course.root / "feedback" / student / course.stem / f"{course.stem}.html").read_text()
        score = sum(course.scores[student].values())
        max_score = sum(ex.points for ex in assign.find_exercises(course.source))
        assert f"Score: {score:.1f} / {max_score:.1f}" in html


def test_submissions_are_never_changed(course):
    assert _hashes(course.root, "submitted") == course.submitted


# ------------------------------------------------------------------ bad submissions (chapter 00)
@pytest.fixture(scope="module")
def bad_course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course_bad")
    chapter, stem, source, release = _new_course(root, "00")
    exercises = assign.find_exercises(source)
    reference = assign.fill_answers(release, assign.solution_bodies(source))
    no_check, no_answer = copy.deepcopy(reference), copy.deepcopy(reference)
    del no_check.cells[exercises[1].check]
    del no_answer.cells[exercises[1].answer]
    wrong, = [ex for ex in exercises if ex.function in WRONG]
    edited = assign.fill_answers(release, {**assign.solution_bodies(source), wrong.grade_id: WRONG[wrong.function]})
    edited.cells[wrong.check].source = 'print("all checks passed")'
    paths = {"reference": reference, "not_json": '{"cells": [', "no_check": no_check, "no_answer": no_answer,
             "edited_check": edited}
    paths = {s: _write_submission(root, s, stem, nb) for s, nb in paths.items()}
    submitted = _hashes(root, "submitted")
    autograde = assign.run_nbgrader(root, ["autograde", stem])
    return dict(root=root, stem=stem, source=source, exercises=exercises, wrong=wrong, paths=paths,
                submitted=submitted, autograde=autograde, scores=assign.gradebook_scores(root, stem))


def test_bad_submissions_get_nbgraders_documented_treatment(bad_course):
    from nbgrader.api import Gradebook

    exercises, run, scores = bad_course["exercises"], bad_course["autograde"], bad_course["scores"]
    ids = [f"{ex.grade_id}_check" for ex in exercises]
    full = {i: ex.points for i, ex in zip(ids, exercises)}
    # a file that is not JSON: autograde reports it, grades everyone else, and exits with status 1
    assert run.returncode == 1
    assert f"There was an error processing assignment '{bad_course['stem']}' for student 'not_json'" in run.stderr
    assert scores["not_json"] == dict.fromkeys(ids, 0.0)
    with Gradebook(f"sqlite:///{bad_course['root'] / 'gradebook.db'}") as gb:
        assert gb.find_submission(bad_course["stem"], "not_json").needs_manual_grade
    assert scores["reference"] == full
    # a deleted check cell is put back (OverwriteCells.add_missing_cells in effdl's nbgrader_config.py) and graded
    assert scores["no_check"] == full
    graded = _read(bad_course["root"] / "autograded" / "no_check" / bad_course["stem"] / f"{bad_course['stem']}.ipynb")
    assert any("was missing from the submission" in c.source for c in graded.cells)
    # a deleted answer cell: its check fails
    assert scores["no_answer"] == {**full, ids[1]: 0.0}
    # an edited check cell is restored from the source version, so the wrong answer still fails
    wrong_id = f"{bad_course['wrong'].grade_id}_check"
    assert scores["edited_check"] == {**full, wrong_id: 0.0}
    # never a lost submission
    assert _hashes(bad_course["root"], "submitted") == bad_course["submitted"]


def test_check_submission_names_each_problem(bad_course):
    paths, exercises = bad_course["paths"], bad_course["exercises"]
    assert assign.check_submission(paths["reference"]) == []
    problem, = assign.check_submission(paths["not_json"])
    assert "is not a readable notebook (NotJSONError" in problem and "kept as it is" in problem
    problem, = assign.check_submission(paths["no_check"])
    assert f"check cell '{exercises[1].grade_id}_check' was deleted: nbgrader autograde puts it back" in problem
    problem, = assign.check_submission(paths["no_answer"])
    assert f"answer cell '{exercises[1].grade_id}' was deleted" in problem
    problem, = assign.check_submission(paths["edited_check"])
    assert f"check cell '{bad_course['wrong'].grade_id}_check' was edited" in problem
    assert assign._main(["check", str(paths["reference"]), str(paths["not_json"])]) == 1


def test_effdl_assign_on_a_graded_course_loses_nothing(bad_course, capsys):
    root, stem = bad_course["root"], bad_course["stem"]
    folders = ("submitted", "autograded", "source", "release")
    before = {**_hashes(root, *folders), "config": (root / "nbgrader_config.py").read_text(),
              "gradebook": hashlib.sha256((root / "gradebook.db").read_bytes()).hexdigest()}
    assert cli.main(["assign", str(root), "00", "--nbgrader"]) == 0       # unchanged chapter: nothing written
    source = root / "source" / stem / f"{stem}.ipynb"
    edited = _read(source)
    edited.cells[0].source += "\n(edited by the instructor)"
    nbformat.write(edited, source)
    assert cli.main(["assign", str(root), "00", "--nbgrader"]) == 2       # a changed source: refused
    err = capsys.readouterr().err
    assert "exists and differs from the chapter in book.yml" in err and "Nothing was written" in err
    nbformat.write(bad_course["source"], source)
    after = {**_hashes(root, *folders), "config": (root / "nbgrader_config.py").read_text(),
             "gradebook": hashlib.sha256((root / "gradebook.db").read_bytes()).hexdigest()}
    assert after == before
