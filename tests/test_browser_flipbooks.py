"""The widgets' flip-books play in the built HTML book, with no kernel (Debian's Chromium via Playwright).

Each widget chapter stores, next to its live widget, a flip-book of the
widget's states (effdl.viz.flipbook). Here the book is built from the stored
outputs of those chapters only (the same staging and jupyter-book build as
``effdl book``), served on 127.0.0.1 and opened in Chromium; on each page the
flip-book must be there, start on the widget's starting state, change its
picture when Play is pressed, stop on Pause, and follow the slider and the
step buttons to the frame and label they name, without a console error.
Chromium is found as in tests/test_browser.py (``EFFDL_CHROMIUM``); these
tests fail, never skip, when it cannot start.
"""
from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
from pathlib import Path

import pytest
from test_browser import SCREENSHOTS, VIEWPORT, _QuietHandler, browser  # noqa: F401  (browser: a fixture)

from effdl import book

# chapter → the label of the frame its flip-book starts on (the live widget's starting state)
FLIPBOOKS = {"01": "FP16", "02": "90% pruned", "03": "fc 2 bits", "05": "4 bits", "10": "weights 9%",
             "17": "CPU budget 1.70 ms", "18": "batch 1, context 512", "19": "3 bits, groups of 32",
             "20": "50 % pruned", "21": "α = 0.58"}


@pytest.fixture(scope="module")
def served_chapters(tmp_path_factory):
    """The HTML book of the flip-book chapters (and the landing page's), built from their stored outputs:
    its base URL."""
    full = book.load_book()
    keep = set(FLIPBOOKS) | {book.LANDING_FIGURE[0]}      # and the chapter whose figure the landing page shows
    parts = tuple(dataclasses.replace(p, chapters=tuple(c for c in p.chapters if c.id in keep)) for p in full.parts)
    subset = dataclasses.replace(full, parts=parts)
    assert sorted(c.id for c in subset.chapters) == sorted(keep)
    index = book.build_html(tmp_path_factory.mktemp("flipbook-book"), book=subset, quiet=True)
    handler = functools.partial(_QuietHandler, directory=str(index.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", subset
    server.shutdown()
    server.server_close()


def _state(flip) -> dict:
    return flip.evaluate("""e => ({frame: Number(e.dataset.frame), frames: Number(e.dataset.frames),
        src: e.querySelector('img.effdl-flipbook-frame').src,
        alt: e.querySelector('img.effdl-flipbook-frame').alt,
        label: e.querySelector('.effdl-flipbook-label').textContent,
        slider: Number(e.querySelector('input[type=range]').value),
        width: e.getBoundingClientRect().width,
        column: e.closest('main, article, .bd-article, body').getBoundingClientRect().width})""")


@pytest.mark.parametrize("chapter_id", sorted(FLIPBOOKS))
def test_flipbook_plays_and_follows_its_controls_in_the_built_book(browser, served_chapters, chapter_id):  # noqa: F811
    base, subset = served_chapters
    stem = Path(subset.chapter(chapter_id).notebook).stem
    page = browser.new_page(viewport=VIEWPORT)
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    try:
        page.goto(f"{base}/{stem}.html", wait_until="load")
        flips = page.locator("div.effdl-flipbook")
        assert flips.count() == 1, f"{stem}: {flips.count()} flip-books, expected 1"
        flip = flips.first
        flip.scroll_into_view_if_needed()
        first = _state(flip)
        assert first["src"].startswith("data:image/png;base64,"), f"{stem}: the flip-book shows no frame"
        assert first["label"] == first["alt"] == FLIPBOOKS[chapter_id], f"{stem}: starts on {first['label']!r}"
        assert first["frames"] >= 4 and first["slider"] == first["frame"]
        assert first["width"] <= first["column"] + 1, f"{stem}: the flip-book is wider than its column"

        # Play: the picture changes by itself; Pause: it stops
        flip.get_by_role("button", name="Play", exact=True).click()
        page.wait_for_function("([el, f]) => Number(el.dataset.frame) !== f",
                               arg=[flip.element_handle(), first["frame"]], timeout=10_000)
        assert _state(flip)["src"] != first["src"], f"{stem}: playing changed the frame number, not the picture"
        flip.get_by_role("button", name="Pause", exact=True).click()
        paused = _state(flip)
        page.wait_for_timeout(2_500)                       # longer than a frame's interval
        assert _state(flip)["frame"] == paused["frame"], f"{stem}: still playing after Pause"
        assert flip.get_by_role("button", name="Play", exact=True).count() == 1

        # the slider's ends and the step buttons show the frame, label and picture they name
        slider = flip.locator("input[type=range]")
        shown, last = {}, first["frames"] - 1
        for key, frame in (("Home", 0), ("End", last)):
            slider.focus()
            slider.press(key)
            now = _state(flip)
            assert now["frame"] == now["slider"] == frame, f"{stem}: slider {key} shows frame {now['frame']}"
            assert now["label"] == now["alt"]
            shown[frame] = now
        assert shown[0]["src"] != shown[last]["src"] and shown[0]["label"] != shown[last]["label"]
        flip.get_by_role("button", name="Next frame", exact=True).click()      # wraps around to the first
        assert _state(flip)["frame"] == 0 and _state(flip)["src"] == shown[0]["src"]
        flip.get_by_role("button", name="Previous frame", exact=True).click()
        assert _state(flip)["src"] == shown[last]["src"]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        flip.screenshot(path=str(SCREENSHOTS / f"flipbook_{stem}.png"))
        assert problems == [], f"{stem}: {problems}"
    finally:
        page.close()
