"""The book's table of contents (``book.yml``), the HTML build and chapter execution.

``book.yml`` is the one table of contents: :func:`load_book` validates it,
:func:`readme_table` renders the README's chapter table from it,
:func:`build_html` turns it into a Jupyter Book 1 (Sphinx, offline) project
built from the chapters' stored outputs (their citations resolved against
``references.bib`` on one bibliography page), and :func:`execute_chapters`
re-executes chapters in place (maintainers, after changing one).

The exercises' reference solutions are collapsed for the reader, in the HTML
book (a "Show solution" toggle) and in JupyterLab (a collapsed cell):
:func:`hide_solutions` writes the cell metadata that does both,
``scripts/solution_cells.py`` applies it to the chapters and
:func:`solutions_not_hidden` finds a solution left open.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
import nbformat

from .validation import Bool, Dict, Instance, ListOf, PositiveInt, Text, validate_params


ROOT = Path(__file__).resolve().parents[1]
BOOK_YML = ROOT / "book.yml"
# The instructors' page (handing out, collecting and grading the exercises);
# the HTML book adds it after the chapters.
INSTRUCTORS_MD = ROOT / "chapters" / "instructors.md"
# The bibliography: every source the chapters cite ({cite:p}`key` in a markdown
# cell), rendered on one page of the HTML book after the chapters.
REFERENCES_BIB = ROOT / "references.bib"
BIBLIOGRAPHY_MD = ROOT / "chapters" / "bibliography.md"
# MyST syntax in markdown cells: Jupyter Book's defaults without ``linkify``,
# which turned names such as torch.ao into links to http://torch.ao.
MYST_EXTENSIONS = ["colon_fence", "dollarmath", "substitution", "tasklist"]
CHAPTER_KEYS = {"id", "title", "notebook", "modules", "budget_s"}
# The landing page's figure: the stored output of the chapter cell that calls this view.
LANDING_FIGURE = ("00", "viz.overview.energy_per_operation", "energy_per_operation.png")
# The book's own style sheet (staged as _static/effdl.css): code and printed output wrap at the
# content column instead of scrolling sideways, and tables of results are set a little smaller.
BOOK_CSS = """\
/* effdl: nothing wider than the content column. Code is set at GitHub's size (lines of up to
   about 84 characters fit the column); a longer line wraps at the column instead of scrolling.
   The same for code blocks in the prose. */
article.bd-article pre {
  font-size: 0.8em;
  white-space: pre-wrap;
  overflow-wrap: break-word;
}
/* tables of results: a little smaller and tighter than prose tables */
div.cell_output table {
  font-size: 0.85em;
}
div.cell_output table th, div.cell_output table td {
  padding: 0.25rem 0.45rem;
}
/* a long identifier in a table cell (the instructors' exercise table) may break rather than widen the table
   (Sphinx sets each word of inline code in a span.pre that does not wrap, which overflow-wrap alone does
   not undo) */
article.bd-article td code, article.bd-article td code span.pre {
  white-space: normal;
  overflow-wrap: anywhere;
}
"""


@dataclass(frozen=True)
class Chapter:
    id: str
    title: str
    notebook: str          # path relative to the repository root
    modules: tuple[str, ...]
    budget_s: int
    part: str
    summary: str = ""      # one line, on the landing page

    @property
    def path(self) -> Path:
        return ROOT / self.notebook


@dataclass(frozen=True)
class Part:
    id: str
    title: str
    chapters: tuple[Chapter, ...]
    planned: tuple[str, ...]


@dataclass(frozen=True)
class Book:
    title: str
    author: str
    parts: tuple[Part, ...]

    @property
    def chapters(self) -> list[Chapter]:
        return [c for p in self.parts for c in p.chapters]

    def chapter(self, chapter_id: str) -> Chapter:
        for c in self.chapters:
            if c.id == chapter_id:
                return c
        raise ValueError(f"chapter_id must be one of {[c.id for c in self.chapters]}; got {chapter_id!r}.")


class BookError(ValueError):
    """book.yml is malformed or disagrees with the files."""


@validate_params(path=Instance((str, os.PathLike), 'a path'), check_files=Bool())
def load_book(path: Path | str = BOOK_YML, *, check_files: bool = True) -> Book:
    """Parse and validate ``book.yml``.

    Checks: required keys, unique ids that prefix their notebook's file name,
    positive integer budgets, importable modules and (``check_files``) that
    every notebook exists.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise BookError(f"{path} is not readable YAML: {err}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("parts"), list):
        raise BookError(f"{path} must map 'title', 'author' and a list of 'parts'.")
    parts, seen = [], set()
    for p in raw["parts"]:
        chapters = []
        for c in p.get("chapters") or []:
            missing = CHAPTER_KEYS - set(c)
            if missing:
                raise BookError(f"{path}: chapter {c.get('id')!r} lacks {sorted(missing)}.")
            cid = str(c["id"])
            if cid in seen:
                raise BookError(f"{path}: chapter id {cid!r} appears twice.")
            seen.add(cid)
            if not Path(c["notebook"]).name.startswith(cid + "_") or not c["notebook"].endswith(".ipynb"):
                raise BookError(f"{path}: chapter {cid}'s notebook must be NN_name.ipynb with NN = id; "
                                f"got {c['notebook']!r}.")
            budget = c["budget_s"]
            if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
                raise BookError(f"{path}: chapter {cid}'s budget_s must be a positive integer; got {budget!r}.")
            for m in c["modules"]:
                if importlib.util.find_spec(m) is None:
                    raise BookError(f"{path}: chapter {cid} lists module {m!r}, which does not exist.")
            summary = c.get("summary", "")
            if not isinstance(summary, str) or "\n" in summary.strip():
                raise BookError(f"{path}: chapter {cid}'s summary must be one line of text; got {summary!r}.")
            chapter = Chapter(cid, c["title"], c["notebook"], tuple(c["modules"]), budget, p["id"],
                              summary.strip())
            if check_files and not chapter.path.is_file():
                raise BookError(f"{path}: chapter {cid}'s notebook {chapter.notebook} does not exist.")
            chapters.append(chapter)
        parts.append(Part(p["id"], p["title"], tuple(chapters), tuple(p.get("planned") or ())))
    return Book(raw.get("title", ""), raw.get("author", ""), tuple(parts))


@validate_params(book=Instance(Book, 'an effdl.book.Book', optional=True))
def readme_table(book: Book | None = None) -> str:
    """The README's chapter table (Markdown), generated from ``book.yml``."""
    book = load_book() if book is None else book
    rows = ["| part | chapter | notebook | budget (2 cores) |", "|---|---|---|---|"]
    for part in book.parts:
        for c in part.chapters:
            rows.append(f"| {part.title} | {c.id} {c.title} | [`{c.notebook}`]({c.notebook}) | {c.budget_s} s |")
        for title in part.planned:
            rows.append(f"| {part.title} | *{title} (planned)* | | |")
    return "\n".join(rows)


@validate_params(results_dir=Instance((str, os.PathLike), 'a path', optional=True))
def readme_measurements(results_dir: Path | None = None) -> str:
    """The README's table of measured install and test times (Markdown), from ``benchmarks/results``.

    ``fresh_install.json`` (``benchmarks/fresh_install.sh``: a fresh clone,
    the README's commands) and ``portability.json``
    (``benchmarks/portability.py``: the suite under several CPU kernel
    selections). A test keeps the README's copy equal to this.
    """
    folder = ROOT / "benchmarks" / "results" if results_dir is None else Path(results_dir)
    fresh = json.loads((folder / "fresh_install.json").read_text())
    port = json.loads((folder / "portability.json").read_text())

    def minutes(seconds: int) -> str:
        return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60:02d} s"

    def count(kind: str) -> int:          # from pytest's last line, e.g. "2390 passed, 2 skipped in 805.43s"
        found = re.search(rf"(\d+) {kind}", fresh["pytest"])
        return int(found.group(1)) if found else 0

    rows = [f"Measured on {fresh['machine']} ({fresh['date']}, commit {fresh['commit']}):", "",
            "| step (fresh clone) | time |", "|---|---|",
            f"| set-up (`make setup`: venv, torch, `pip install -e \".[dev]\"`, pip's cache warm) | "
            f"{minutes(fresh['setup_s'])} |",
            f"| `make test` after set-up ({count('passed'):,} passed, {count('failed')} failed, "
            f"{count('skipped')} skipped: unit, doctests, every chapter under nbval and through nbgrader, HTML build, browser) | "
            f"{minutes(fresh['test_s'])} |",
            f"| `make book` after set-up | {minutes(fresh['book_s'])} |", "",
            f"The same suite under other CPU kernel selections ({port['cpu']}, {port['date']}, "
            f"`benchmarks/portability.py`):", "",
            "| setting | passed | failed | time |", "|---|---|---|---|"]
    for r in port["rows"]:
        rows.append(f"| {r['setting']} | {r['passed']:,} | {r['failed'] + r['errors']} | {minutes(r['seconds'])} |")
    return "\n".join(rows)


# ------------------------------------------------------------------ HTML build
# How to run the book: the README's two commands (tests/test_book.py keeps them in step).
RUN_COMMANDS = ("make book", "make test")


def _landing_page(book: Book, figure: str | None = None) -> str:
    """The book's front page (MyST): what it teaches, for whom, how to run it, where to start, every
    chapter in one line, and ``figure`` (a file name next to the page) if given."""
    first = book.chapters[0] if book.chapters else None

    def link(c: Chapter) -> str:
        return f"[{c.id} {c.title}]({Path(c.notebook).stem}.ipynb)"

    by_id = {c.id: c for c in book.chapters}
    lines = [f"# {book.title}", "",
             "An interactive course on making deep learning cheaper: smaller models, fewer operations, cheaper",
             "arithmetic, and the hardware that runs them. Every algorithm is runnable, every hardware idea is",
             "simulated, and every number is computed in front of you by the `effdl` package or cited.", "",
             "## What this book teaches", "",
             "- **Algorithms for efficient inference**: pruning, weight sharing, Huffman coding (together:",
             "  Deep Compression), linear quantization, binary and ternary weights, low-rank factorization",
             "  and Winograd convolution, each implemented and measured on real networks.",
             "- **Hardware for efficient inference**: the roofline model, the TPU's systolic array and EIE,",
             "  each simulated cycle by cycle, so you can see where time and energy go.",
             "- **Training**: data, model and pipeline parallelism on real processes, mixed precision,",
             "  distillation and dense–sparse–dense training, and the chips built for training.",
             "- **What reproduced**: every headline number of the papers next to ours, judged by a criterion",
             "  stated before the result.", ""]
    if figure:
        lines += [f"```{{figure}} {figure}", ":alt: Energy per operation, from an integer add to a DRAM read",
                  ":width: 100%", "",
                  "Why efficiency: fetching a number from off-chip memory (DRAM) costs far more energy than",
                  "computing with it. The figure is drawn by `effdl` in the first chapter"
                  + (f", {link(first)}." if first else "."), "```", ""]
    lines += ["## Who it is for", "",
              "Students and engineers who know Python, have trained a small network with PyTorch and want to",
              "know what it costs to run and train one, and how to make it cheaper. No hardware background",
              "is assumed, and no GPU is needed: everything runs on a laptop CPU (a GPU is used when present).", "",
              "## How to run it", "",
              "You need Python 3.10 or newer with `venv`, `make` and access to PyPI; the data and the trained",
              "models ship with the repository. Two commands:", "",
              "```bash",
              f"{RUN_COMMANDS[0]}     # set up .venv, build this book: _build/html/index.html",
              f"{RUN_COMMANDS[1]}     # set up .venv, run every test (chapters included)",
              "```", "",
              "Then work through the chapters live, each a Jupyter notebook in `chapters/`:", "",
              "```bash",
              ".venv/bin/effdl lab     # JupyterLab on chapters/",
              "```", "",
              "## Start here", ""]
    path = [("00", "why size, speed and energy matter, and that memory, not arithmetic, dominates"),
            ("01", "the number formats every later chapter trades bits in"),
            ("02", "the first method: prune a network and keep its accuracy")]
    for k, (cid, why) in enumerate([(i, w) for i, w in path if i in by_id], start=1):
        lines.append(f"{k}. {link(by_id[cid])}: {why}.")
    lines += ["", "Then follow the parts in order, or jump to the one you need: each chapter opens with what",
              "you will be able to do by its end. Every chapter closes with exercises; their reference",
              "solutions are folded away under *Show solution*.", "",
              "## The chapters", ""]
    for part in book.parts:
        lines += [f"### {part.title}", ""]
        lines += [f"- {link(c)}" + (f": {c.summary}" if c.summary else "") for c in part.chapters]
        lines += [f"- {t} *(planned)*" for t in part.planned]
        lines.append("")
    if BIBLIOGRAPHY_MD.is_file():
        lines += ["The sources the chapters cite are on one page: [References]"
                  f"({BIBLIOGRAPHY_MD.name}).", ""]
    if INSTRUCTORS_MD.is_file():
        lines += ["## For instructors", "",
                  f"- [Handing out, collecting and grading the exercises]({INSTRUCTORS_MD.name})", ""]
    return "\n".join(lines)


@validate_params(book=Instance(Book, 'an effdl.book.Book'))
def landing_figure(book: Book) -> bytes:
    """The landing page's figure as PNG bytes: a chapter's stored output (:data:`LANDING_FIGURE`).

    Read from the notebook as stored (the notebook tests check those outputs); nothing is drawn
    again. Raises :class:`BookError` if the chapter no longer has that figure.
    """
    chapter_id, call, _ = LANDING_FIGURE
    nb = nbformat.read(book.chapter(chapter_id).path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and call in cell.source:
            for out in cell.get("outputs", []):
                png = out.get("data", {}).get("image/png")
                if png:
                    return base64.b64decode(png)
    raise BookError(f"chapter {chapter_id} has no stored figure from {call}; the landing page shows it "
                    f"(effdl.book.LANDING_FIGURE names another).")


# ------------------------------------------------------------------ the exercises' reference solutions
# An exercise's answer cell (nbgrader's solution metadata, or a ### BEGIN SOLUTION region: see
# effdl.assign) holds the reference solution. myst-nb's hide-input tag folds its code in the HTML
# book behind a toggle whose prompts the mystnb metadata names; jupyter.source_hidden folds it in
# JupyterLab and Notebook 7.
SOLUTION_TAG = "hide-input"
SOLUTION_PROMPTS = {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}
_SOLUTION_MARKER = "### BEGIN SOLUTION"
# a check cell's hidden tests (effdl.assign.hidden_tests): graded, not for the reader of the book
_HIDDEN_TESTS = re.compile(r"\n?^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*$",
                           re.M | re.S)


def _is_solution(cell) -> bool:
    return cell.cell_type == "code" and (bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))
                                         or _SOLUTION_MARKER in cell.source)


def _solution_hidden(cell) -> bool:
    meta = cell.get("metadata", {})
    return (SOLUTION_TAG in meta.get("tags", []) and meta.get("jupyter", {}).get("source_hidden") is True
            and all(meta.get("mystnb", {}).get(k) == v for k, v in SOLUTION_PROMPTS.items()))


@validate_params(nb=Instance(nbformat.NotebookNode, "a notebook (nbformat.NotebookNode)"))
def hide_solutions(nb) -> int:
    """Fold every reference solution of ``nb`` (in place): a "Show solution" toggle in the HTML book,
    a collapsed cell in JupyterLab. Return how many cells changed; idempotent. The code, the outputs
    and nbgrader's metadata are left as they are, so ``effdl assign`` and the notebook tests see the
    same cells.
    """
    changed = 0
    for cell in nb.cells:
        if not _is_solution(cell) or _solution_hidden(cell):
            continue
        meta = cell.setdefault("metadata", nbformat.NotebookNode())
        tags = meta.setdefault("tags", [])
        if SOLUTION_TAG not in tags:
            tags.append(SOLUTION_TAG)
        meta.setdefault("jupyter", nbformat.NotebookNode())["source_hidden"] = True
        meta.setdefault("mystnb", nbformat.NotebookNode()).update(SOLUTION_PROMPTS)
        changed += 1
    return changed


@validate_params(nb=Instance(nbformat.NotebookNode, "a notebook (nbformat.NotebookNode)"))
def show_solutions(nb) -> int:
    """Undo :func:`hide_solutions` on ``nb`` (in place): for a student's copy, whose answer cells hold
    a stub to fill in. Return how many cells changed."""
    changed = 0
    for cell in nb.cells:
        meta = cell.get("metadata", {})
        if not _is_solution(cell) or not (SOLUTION_TAG in meta.get("tags", []) or "jupyter" in meta
                                           or "mystnb" in meta):
            continue
        meta["tags"] = [t for t in meta.get("tags", []) if t != SOLUTION_TAG]
        if not meta["tags"]:
            del meta["tags"]
        meta.get("jupyter", {}).pop("source_hidden", None)
        for key in SOLUTION_PROMPTS:
            meta.get("mystnb", {}).pop(key, None)
        for key in ("jupyter", "mystnb"):
            if key in meta and not meta[key]:
                del meta[key]
        changed += 1
    return changed


@validate_params(nb=Instance(nbformat.NotebookNode, "a notebook (nbformat.NotebookNode)"))
def solutions_not_hidden(nb) -> list[int]:
    """The indexes of ``nb``'s reference-solution cells that :func:`hide_solutions` has not folded."""
    return [i for i, cell in enumerate(nb.cells) if _is_solution(cell) and not _solution_hidden(cell)]


_FAVICON = Path(__file__).resolve().parent / "book_favicon.svg"


def _extensions_without_thebe() -> list[str] | None:
    """Jupyter Book's Sphinx extensions plus the offline MathJax, without sphinx-thebe.

    The book is static and offline, so Thebe's live-code buttons (which load
    their JavaScript from a CDN) have no use, and sphinx-thebe declares its
    configuration twice on every page, a JavaScript error in the browser.
    None when jupyter-book is not installed.
    """
    try:
        # deferred: optional, only for the HTML build
        from jupyter_book.config import get_default_sphinx_config
    except ImportError:
        return None
    extensions = [e for e in get_default_sphinx_config()["extensions"] if e != "sphinx_thebe"]
    return extensions + ["sphinx-mathjax-offline", "sphinxcontrib.bibtex"]


@validate_params(book=Instance(Book, 'an effdl.book.Book'), stage=Instance((str, os.PathLike), 'a path'))
def stage_book(book: Book, stage: Path) -> Path:
    """Write a Jupyter Book 1 project for ``book`` into ``stage`` (config, TOC, pages)."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    config = {
        "title": book.title, "author": book.author, "only_build_toc_files": True,
        # Pages show the outputs stored in the notebooks, which the notebook
        # tests verified; nothing is executed while building.
        "execute": {"execute_notebooks": "off"},
        # citations resolve against references.bib, listed on the bibliography page
        "bibtex_bibfiles": [REFERENCES_BIB.name],
        # MathJax from a local copy (the package sphinx-mathjax-offline), so
        # the pages render their formulas without a network.
        "sphinx": {"extra_extensions": ["sphinx-mathjax-offline"],
                   "config": {"html_show_copyright": False, "suppress_warnings": ["mystnb.unknown_mime_type"],
                              # text/markdown outputs (the chapters' tables) parsed as MyST, with tables
                              "nb_render_markdown_format": "myst",
                              "myst_enable_extensions": MYST_EXTENSIONS,
                              # citations read "(Han et al., 2016)", not "[HMD16]"
                              "bibtex_reference_style": "author_year",
                              # the theme's colour mode; left empty, every page logs a console error
                              "html_context": {"default_mode": "light"}}},
        # a favicon of our own: without one the browser asks for /favicon.ico and gets a 404
        "html": {"use_repository_button": False, "favicon": _FAVICON.name},
    }
    extensions = _extensions_without_thebe()
    if extensions:
        config["sphinx"]["config"]["extensions"] = extensions
    toc = {"format": "jb-book", "root": "index", "parts": []}
    for part in book.parts:
        if not part.chapters:
            continue
        toc["parts"].append({"caption": part.title,
                             "chapters": [{"file": Path(c.notebook).stem} for c in part.chapters]})
        for c in part.chapters:
            _stage_notebook(c.path, stage / Path(c.notebook).name)
    shutil.copyfile(REFERENCES_BIB, stage / REFERENCES_BIB.name)
    shutil.copyfile(BIBLIOGRAPHY_MD, stage / BIBLIOGRAPHY_MD.name)
    toc["parts"].append({"caption": "References", "chapters": [{"file": BIBLIOGRAPHY_MD.stem}]})
    if INSTRUCTORS_MD.is_file():
        shutil.copyfile(INSTRUCTORS_MD, stage / INSTRUCTORS_MD.name)
        toc["parts"].append({"caption": "For instructors", "chapters": [{"file": INSTRUCTORS_MD.stem}]})
    (stage / _FAVICON.name).write_text(_FAVICON.read_text())
    (stage / "_static").mkdir()
    (stage / "_static" / "effdl.css").write_text(BOOK_CSS)     # Jupyter Book links every _static/*.css
    figure = LANDING_FIGURE[2]
    (stage / figure).write_bytes(landing_figure(book))
    (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (stage / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    (stage / "index.md").write_text(_landing_page(book, figure))
    return stage


def _stage_notebook(src: Path, dst: Path) -> None:
    """Copy a chapter for the static book, without its saved widget state, its solutions folded and
    its hidden tests left out.

    With widget state, the pages would load the widget manager from a CDN,
    which fails offline; each widget's starting state is shown as a static
    figure in the chapter instead. Each exercise's reference solution sits
    behind a "Show solution" toggle (:func:`hide_solutions`, also for a
    chapter whose cells do not carry the metadata yet); the check below it
    shows its visible call only (the hidden tests are for grading).
    """

    nb = nbformat.read(src, as_version=4)
    nb.metadata.pop("widgets", None)
    hide_solutions(nb)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            cell.source = _HIDDEN_TESTS.sub("", cell.source).rstrip()
    nbformat.write(nb, dst)


@validate_params(out_dir=Instance((str, os.PathLike), 'a path'), book=Instance(Book, 'an effdl.book.Book', optional=True), quiet=Bool())
def build_html(out_dir: Path | str = ROOT, *, book: Book | None = None, quiet: bool = False) -> Path:
    """Build the HTML book from stored outputs into ``out_dir/_build/html``; return its ``index.html``.

    The Jupyter Book project is staged in ``out_dir/_build/book-src``.
    """
    book = load_book() if book is None else book
    out_dir = Path(out_dir).resolve()
    stage = stage_book(book, out_dir / "_build" / "book-src")
    if importlib.util.find_spec("jupyter_book") is None:
        raise RuntimeError("jupyter-book is not installed; run `pip install -e \".[dev]\"`.")
    # the package has no __main__; call its command-line entry point in this interpreter
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", str(stage), "--path-output", str(out_dir)]
    run = subprocess.run(cmd, capture_output=quiet, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {run.returncode}):\n{(run.stdout or '')[-3000:]}"
                           f"{(run.stderr or '')[-3000:]}")
    index = out_dir / "_build" / "html" / "index.html"
    if not index.is_file():
        raise RuntimeError(f"jupyter-book finished but {index} is missing.")
    return index


# ------------------------------------------------------------ chapter execution
@validate_params(chapter_ids=ListOf(Text(), optional=True), timeout=PositiveInt())
def execute_chapters(chapter_ids: list[str] | None = None, *, timeout: int = 1200) -> dict[str, float]:
    """Execute chapters in place (stored outputs refreshed); return seconds per chapter.

    Runs with ``EFFDL_QUIET=1`` (no progress bars in stored outputs) and
    without ``EFFDL_DATA`` (the stored outputs are those of the embedded data).
    """
    from nbclient import NotebookClient  # deferred: jupyter_client/zmq, only to execute chapters

    book = load_book(check_files=False)
    chapters = book.chapters if not chapter_ids else [book.chapter(i) for i in chapter_ids]
    for c in chapters:
        if not c.path.is_file():
            raise FileNotFoundError(f"chapter {c.id}'s notebook {c.notebook} does not exist.")
    saved = {k: os.environ.get(k) for k in ("EFFDL_QUIET", "EFFDL_DATA")}
    os.environ["EFFDL_QUIET"] = "1"
    os.environ.pop("EFFDL_DATA", None)
    times = {}
    try:
        for c in chapters:
            nb = nbformat.read(c.path, as_version=4)
            start = time.perf_counter()
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(c.path.parent)}}).execute()
            times[c.id] = time.perf_counter() - start
            _strip_volatile_metadata(nb)
            nbformat.write(nb, c.path)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return times


def _strip_volatile_metadata(nb) -> None:
    """Drop per-run execution timestamps so re-executing leaves a small diff."""
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)


@validate_params(times=Dict(), book=Instance(Book, 'an effdl.book.Book', optional=True))
def over_budget(times: dict[str, float], book: Book | None = None) -> list[str]:
    """Human-readable lines for chapters whose time exceeded their budget."""
    book = load_book(check_files=False) if book is None else book
    return [f"chapter {c.id} took {times[c.id]:.0f} s, over its {c.budget_s} s budget"
            for c in book.chapters if c.id in times and times[c.id] > c.budget_s]

