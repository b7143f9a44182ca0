"""The static book as a reader meets it, in Debian's Chromium (see tests/test_browser.py for the set-up).

- Nothing is wider than the content column: on every page, no code block,
  printed output or table is wider than the column it sits in, at the
  browser tests' window size (measured: an element's scrollWidth against its
  clientWidth, and its width against the column's).
- Solutions are not spoilers: each exercise's reference solution is folded
  behind a "Show solution" toggle, opens on a click, and the hidden tests of
  the check below it are not on the page.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from effdl import assign, book
from test_browser import VIEWPORT, browser, served_book  # noqa: F401 (fixtures)

# Chapters with a block wider than the column that this part of the work could not fix (their
# notebooks were open in other work): chapter 01's table of number formats has 12 columns (split or
# transpose it, then re-execute the chapter).
TOO_WIDE_YET: set[str] = set()

# Every element a reader scrolls sideways, with the column's width (its content box).
_MEASURE = """() => {
  const column = document.querySelector('article.bd-article');
  const style = getComputedStyle(column);
  const width = column.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const where = el => el.closest('.cell_input') ? 'code' : el.closest('.cell_output') ? 'output' : 'text';
  const wide = [];
  for (const el of column.querySelectorAll('pre, table')) {
    const box = el.getBoundingClientRect();
    if (el.scrollWidth > el.clientWidth + 1 || box.width > width + 1) {
      const line = el.innerText.split('\\n').reduce((a, b) => a.length >= b.length ? a : b, '');
      wide.push(`${el.tagName.toLowerCase()} in ${where(el)}: ${Math.max(el.scrollWidth, Math.round(box.width))} px, ` +
                `longest line ${JSON.stringify(line.slice(0, 90))}`);
    }
  }
  return {width: width, count: column.querySelectorAll('pre, table').length, wide: wide};
}"""


def _pages():
    marks = {c.id: [pytest.mark.xfail(reason=f"chapter {c.id} still has a block wider than the column",
                                      strict=False)] if c.id in TOO_WIDE_YET else []
             for c in book.load_book().chapters}
    pages = [pytest.param(Path(c.notebook).stem, id=Path(c.notebook).stem, marks=marks[c.id])
             for c in book.load_book().chapters]
    return [pytest.param("index", id="index")] + pages + \
        ([pytest.param(book.INSTRUCTORS_MD.stem, id=book.INSTRUCTORS_MD.stem)] if book.INSTRUCTORS_MD.is_file() else [])


@pytest.mark.parametrize("stem", _pages())
def test_nothing_is_wider_than_the_column(browser, served_book, stem):  # noqa: F811 (fixtures)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{served_book}/{stem}.html", wait_until="load")
        found = page.evaluate(_MEASURE)
        assert found["width"] > 400, f"{stem}: the content column is {found['width']} px wide"
        assert found["wide"] == [], (f"{stem}: {len(found['wide'])} of {found['count']} blocks are wider than the "
                                     f"{found['width']:.0f} px column:\n" + "\n".join(found["wide"]))
    finally:
        page.close()


def test_the_measure_catches_a_wide_block(browser):  # noqa: F811 (fixture)
    """The check above fails on a page with a wide table and a long code line."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.set_content("<article class='bd-article' style='width: 600px; padding: 0 10px'>"
                         "<div class='cell_input'><pre style='overflow: auto'>" + "x = 1; " * 40 + "</pre></div>"
                         "<table><tr>" + "<td>column</td>" * 30 + "</tr></table></article>")
        found = page.evaluate(_MEASURE)
        assert found["width"] == 600 and len(found["wide"]) == 2, found
    finally:
        page.close()


def _chapters_with_exercises():
    for c in book.load_book().chapters:
        n = len(assign.find_exercises(nbformat.read(c.path, as_version=4)))
        if n:
            yield pytest.param(Path(c.notebook).stem, n, id=Path(c.notebook).stem)


@pytest.mark.parametrize("stem, n_exercises", list(_chapters_with_exercises()))
def test_solutions_are_folded_until_asked_for(browser, served_book, stem, n_exercises):  # noqa: F811 (fixtures)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{served_book}/{stem}.html", wait_until="load")
        toggles = page.locator("details.hide.above-input")
        assert toggles.count() == n_exercises, \
            f"{stem}: {toggles.count()} folded code cells for {n_exercises} exercises"
        for k in range(n_exercises):
            toggle = toggles.nth(k)
            summary = toggle.locator("summary")
            assert summary.inner_text().strip() == "Show solution"
            code = toggle.locator("div.cell_input pre")
            assert not code.is_visible(), f"{stem}: solution {k} is shown before the reader asks for it"
            summary.click()
            code.wait_for(state="visible", timeout=5_000)
            assert "def " in code.inner_text(), f"{stem}: solution {k} does not show the reader's function"
            assert summary.inner_text().strip() == "Hide solution"
        assert "HIDDEN TESTS" not in page.locator("article.bd-article").inner_text(), \
            f"{stem}: the hidden tests are on the page"
    finally:
        page.close()
