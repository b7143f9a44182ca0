"""book.yml is the single table of contents: the files, README, dependencies and HTML agree with it."""
import html as htmllib
import json
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml

from effdl import book

ROOT = Path(__file__).resolve().parents[1]


def test_book_yml_is_valid_and_complete():
    b = book.load_book()
    assert [p.id for p in b.parts] == ["intro", "inference-algorithms", "inference-hardware",
                                       "training-algorithms", "training-hardware", "efficient-transformers", "wrap-up",
                                       "appendix"]
    assert b.chapters, "the book has no chapters"
    listed = {c.path.resolve() for c in b.chapters}
    on_disk = {p.resolve() for p in (ROOT / "chapters").glob("*.ipynb")}
    assert on_disk == listed, "every notebook in chapters/ is listed in book.yml, and only those"


def test_book_yml_errors(tmp_path):
    raw = yaml.safe_load(book.BOOK_YML.read_text())
    raw["parts"][0]["chapters"][0]["notebook"] = "chapters/00_missing.ipynb"
    path = tmp_path / "book.yml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(book.BookError, match="does not exist"):
        book.load_book(path)
    raw["parts"][0]["chapters"][0]["budget_s"] = True
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(book.BookError, match="budget_s"):
        book.load_book(path)
    raw = yaml.safe_load(book.BOOK_YML.read_text())
    raw["parts"][0]["chapters"][0]["modules"] = ["effdl.nope"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(book.BookError, match="effdl.nope"):
        book.load_book(path)


def test_readme_chapter_table_matches_book_yml():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- chapters:start -->\n(.*?)\n<!-- chapters:end -->", readme, re.S)
    assert block, "README.md lacks the chapter table markers"
    assert block.group(1).strip() == book.readme_table().strip(), \
        "README chapter table is stale: paste `python -c 'from effdl.book import readme_table; print(readme_table())'`"


def test_readme_zoo_table_matches_zoo_json():
    from effdl import zoo
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- zoo:start -->\n(.*?)\n<!-- zoo:end -->", readme, re.S)
    assert block and block.group(1).strip() == zoo.readme_table().strip(), \
        "README's zoo table is stale: paste `python -c 'from effdl.zoo import readme_table; print(readme_table())'`"


def test_chapters_are_executed_and_clean():
    for c in book.load_book().chapters:
        nb = nbformat.read(c.path, as_version=4)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert all(cell.execution_count for cell in code), f"{c.notebook} has unexecuted cells"
        for cell in code:
            assert "sys.path" not in cell.source, f"{c.notebook}: no sys.path edits"
            for out in cell.outputs:
                assert out.output_type != "error", f"{c.notebook} stores an error"
                assert "Traceback" not in json.dumps(out), f"{c.notebook} stores a traceback"
            # a cell ending with an open figure shows it twice (the result, then the inline backend's flush)
            kinds = [o.output_type for o in cell.outputs if "image/png" in o.get("data", {})]
            assert not ("execute_result" in kinds and "display_data" in kinds), \
                f"{c.notebook}: a cell shows its figure twice; assign it (fig = ...) or close it first:\n{cell.source}"
        text = " ".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
        assert re.search(r"^#+ .*Exercises", text, re.M | re.I) or "Exercises" in text, \
            f"{c.notebook} must close with exercises"


def _requirement_names(reqs):
    return {re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in reqs}


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject = _requirement_names(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = _requirement_names([r for r in pip if not r.startswith("-")])       # not -e . or --extra-index-url
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip, "conda's pip must take the CPU torch"
    assert conda == pyproject
    assert pyproject["torch"] == "torch==2.13.0", "torch must stay pinned to the local CPU wheel"


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.title, self.assets = [], "", []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "script" and attrs.get("src"):
            self.assets.append(attrs["src"])
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.assets.append(attrs.get("href", ""))
        self._in_title = tag == "title"

    def handle_data(self, data):
        if self._in_title:
            self.title += data


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    return book.build_html(out, quiet=True)


def test_html_book_has_every_chapter_with_its_figures(built_book):
    html_dir = built_book.parent
    for c in book.load_book().chapters:
        page = html_dir / f"{Path(c.notebook).stem}.html"
        assert page.is_file(), f"{page.name} was not built"
        parser = _Collect()
        parser.feed(page.read_text())
        assert c.title in parser.title
        nb = nbformat.read(c.path, as_version=4)
        n_figures = sum("image/png" in out.get("data", {}) for cell in nb.cells
                        if cell.cell_type == "code" for out in cell.outputs)
        pngs = [src for src in parser.images if src.endswith(".png")]
        assert len(pngs) >= n_figures > 0, f"{page.name}: {len(pngs)} images for {n_figures} figures"
        for src in pngs:
            assert (page.parent / src).is_file(), f"{page.name} links a missing image {src}"
        # offline: every script and stylesheet (MathJax included) is a local file
        has_math = any("$" in cell.source for cell in nb.cells if cell.cell_type == "markdown")
        assert any("mathjax" in a for a in parser.assets) or not has_math
        for asset in parser.assets:
            assert "://" not in asset, f"{page.name} loads {asset} from the network"
            assert (page.parent / asset.split("?")[0]).is_file(), f"{page.name}: missing {asset}"
    index = built_book.read_text()
    for c in book.load_book().chapters:
        assert c.title in index


def test_every_chapter_has_a_one_line_summary():
    for c in book.load_book().chapters:
        assert c.summary and len(c.summary) <= 120, f"chapter {c.id}: book.yml's summary must be one short line"


def test_book_yml_refuses_a_summary_of_several_lines(tmp_path):
    raw = yaml.safe_load(book.BOOK_YML.read_text())
    raw["parts"][0]["chapters"][0]["summary"] = "one\ntwo"
    path = tmp_path / "book.yml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(book.BookError, match="summary"):
        book.load_book(path)


def test_landing_page_has_what_a_newcomer_needs(built_book):
    """What the book teaches, for whom, how to run it (the README's commands), where to start, every
    chapter with its one-line summary, and a figure drawn by effdl (a chapter's stored output)."""
    html = built_book.read_text()
    text = re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", html)))
    text = text.translate(str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'}))  # smartquotes
    for heading in ("What this book teaches", "Who it is for", "How to run it", "Start here", "The chapters"):
        assert heading in text, f"the landing page lacks the section {heading!r}"
    readme = (ROOT / "README.md").read_text()
    for command in book.RUN_COMMANDS:
        assert command in text, f"the landing page does not say how to run {command!r}"
        assert re.search(rf"^{command}\b", readme, re.M), f"the README no longer documents {command!r}"
    for part in book.load_book().parts:
        assert part.title in text
        for c in part.chapters:
            assert f"{c.id} {c.title}" in text and " ".join(c.summary.split()) in text, \
                f"chapter {c.id} or its summary is missing from the landing page"
            assert f'href="{Path(c.notebook).stem}.html"' in html
    parser = _Collect()
    parser.feed(html)
    figures = [src for src in parser.images if src.endswith(".png")]
    assert figures, "the landing page has no figure"
    stored = book.landing_figure(book.load_book())
    assert any((built_book.parent / src).read_bytes() == stored for src in figures), \
        "the landing page's figure is not the chapter's stored one"


def test_landing_figure_refuses_a_chapter_without_it(monkeypatch):
    monkeypatch.setattr(book, "LANDING_FIGURE", ("00", "viz.no_such_view(", "x.png"))
    with pytest.raises(book.BookError, match="no stored figure"):
        book.landing_figure(book.load_book())


def test_readme_measurements_match_the_benchmark_results():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- measured:start -->\n(.*?)\n<!-- measured:end -->", readme, re.S)
    assert block and block.group(1).strip() == book.readme_measurements().strip(), \
        ("README's measured times are stale: paste "
         "`python -c 'from effdl.book import readme_measurements; print(readme_measurements())'`")


def test_readme_measurements_report_a_failed_setting(tmp_path):
    results = ROOT / "benchmarks" / "results"
    fresh = json.loads((results / "fresh_install.json").read_text())
    port = json.loads((results / "portability.json").read_text())
    port["rows"][0].update(failed=3, errors=1)
    (tmp_path / "fresh_install.json").write_text(json.dumps(fresh))
    (tmp_path / "portability.json").write_text(json.dumps(port))
    table = book.readme_measurements(tmp_path)
    assert f"| {port['rows'][0]['setting']} | {port['rows'][0]['passed']:,} | 4 |" in table
