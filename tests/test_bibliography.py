"""The book's sources: every citation resolves in references.bib, and no chapter cites what a reader cannot open.

Chapters cite with MyST roles in markdown cells ({cite:p}`key`, {cite:t}`key`,
several keys separated by commas, optional {pre}/{post} text around a key);
the HTML book renders them against ``references.bib`` on the bibliography page.
"""
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from effdl import book

pybtex_database = pytest.importorskip("pybtex.database")      # comes with sphinxcontrib-bibtex
citation_target = pytest.importorskip("sphinxcontrib.bibtex.citation_target")

ROOT = Path(__file__).resolve().parents[1]
CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]*)`")
# Sources a reader cannot open: the team's notes (FACTS.md), and how the book was made.
UNOPENABLE = re.compile(r"FACTS\.md|\bFACTS\b|\bthe issue's\b|\ban issue of this project\b|\bthe seed's\b", re.I)
# A markdown cell that names a paper the way the chapters do ("et al.", a venue and year)
# must cite it in the same cell.
NAMES_A_PAPER = re.compile(r"\bet al\.|\b(ISCA|ICLR|NIPS|NeurIPS|CVPR|ECCV|TPAMI|ISSCC|CACM|GTC)\b,? \d{4}")


def _chapters():
    return [pytest.param(c, id=c.id) for c in book.load_book().chapters]


@pytest.fixture(scope="module")
def bib():
    return pybtex_database.parse_file(str(book.REFERENCES_BIB), bib_format="bibtex")


def cited_keys(text):
    """The keys of every {cite...}`...` role in ``text``."""
    return [t.key for m in CITE_ROLE.finditer(text) for t in citation_target.parse_citation_targets(m.group(1))]


def test_cited_keys_parses_the_roles_the_chapters_use():
    text = "as {cite:t}`a2016` show {cite:p}`b2017{Table 2},c2018` and {cite}`{see}d2019{§3}`; `code` {x}"
    assert cited_keys(text) == ["a2016", "b2017", "c2018", "d2019"]


def test_every_entry_names_its_authors_title_and_where_to_find_it(bib):
    assert len(bib.entries) >= 40
    for key, entry in bib.entries.items():
        assert entry.persons.get("author"), f"{key} has no author"
        assert entry.fields.get("title"), f"{key} has no title"
        where = {"url", "doi", "journal", "booktitle", "publisher", "howpublished"} & {f.lower() for f in entry.fields}
        assert where, f"{key} says nowhere where to find it"


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_citations_resolve_in_the_bibliography(chapter, bib):
    nb = nbformat.read(chapter.path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        missing = [k for k in cited_keys(cell.source) if k not in bib.entries]
        assert not missing, f"{chapter.notebook} cites {missing}, not in references.bib:\n{cell.source[:300]}"
        if NAMES_A_PAPER.search(cell.source):
            assert CITE_ROLE.search(cell.source), \
                f"{chapter.notebook}: a cell names a paper without citing it ({{cite:p}}`key`):\n{cell.source[:300]}"


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_names_no_source_a_reader_cannot_open(chapter):
    """Markdown, code and stored outputs: what a reader of the notebook or the HTML book sees."""
    nb = nbformat.read(chapter.path, as_version=4)
    for i, cell in enumerate(nb.cells):
        texts = [cell.source] + [str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                                 + str(o.get("data", {}).get("text/markdown", ""))
                                 for o in cell.get("outputs", [])]
        for text in texts:
            found = UNOPENABLE.search(text)
            assert not found, (f"{chapter.notebook}, cell {i} ({cell.cell_type}) names {found.group(0)!r}: cite "
                               f"the paper, datasheet or repository file instead (references.bib)")


def test_bibliography_page_and_config_are_staged(tmp_path):
    stage = book.stage_book(book.load_book(), tmp_path / "src")
    config = yaml.safe_load((stage / "_config.yml").read_text())
    assert config["bibtex_bibfiles"] == [book.REFERENCES_BIB.name]
    assert (stage / book.REFERENCES_BIB.name).read_text() == book.REFERENCES_BIB.read_text()
    assert "sphinxcontrib.bibtex" in config["sphinx"]["config"]["extensions"]
    assert "linkify" not in config["sphinx"]["config"]["myst_enable_extensions"], "torch.ao must not become a link"
    assert "dollarmath" in config["sphinx"]["config"]["myst_enable_extensions"]
    page = (stage / book.BIBLIOGRAPHY_MD.name).read_text()
    assert "```{bibliography}" in page
    toc = yaml.safe_load((stage / "_toc.yml").read_text())
    files = [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    assert book.BIBLIOGRAPHY_MD.stem in files


@pytest.fixture(scope="module")
def built_html(tmp_path_factory):
    return book.build_html(tmp_path_factory.mktemp("book"), quiet=True).parent


def test_built_book_lists_every_entry_and_chapters_link_to_it(built_html, bib):
    page = (built_html / f"{book.BIBLIOGRAPHY_MD.stem}.html").read_text()
    assert page.count('role="doc-biblioentry"') == len(bib.entries), "the page lists every entry once (:all:)"
    for entry in bib.entries.values():        # a word of each title, as the page renders it
        word = max(re.findall(r"[A-Za-z]{5,}", entry.fields["title"]), key=len)
        assert word.lower() in page.lower(), f"the bibliography page lacks {entry.fields['title']!r}"
    linked = 0
    for c in book.load_book().chapters:
        html = (built_html / f"{Path(c.notebook).stem}.html").read_text()
        assert "http://torch.ao" not in html, f"{c.notebook}: linkify turned torch.ao into a link"
        linked += f'href="{book.BIBLIOGRAPHY_MD.stem}.html#' in html
    assert linked >= 10, f"only {linked} chapters link to the bibliography page"
