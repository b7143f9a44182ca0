"""The book in a real browser: Debian's Chromium driven by Playwright.

- The static HTML book, served from a local HTTP server: every chapter page
  (and the instructors' page) loads with no console error and no failed
  request, every image loads, every JavaScript animation's frame changes
  when played; a screenshot of each page goes to ``_build/screenshots/``.
- The live chapters in JupyterLab (localhost, with a token): open a widget
  chapter, run all cells, move its slider and check that the widget's figure
  changes; screenshots before and after.

Playwright never downloads a browser here: it launches the system Chromium
(``EFFDL_CHROMIUM``, default ``/usr/bin/chromium``; Debian's ``chromium``
package, which ``.ci/run`` installs). If Chromium cannot start, the tests
fail and say why; they never skip.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from effdl import book

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("EFFDL_CHROMIUM", "/usr/bin/chromium")
# Headless as root, on a machine with no network: no sandbox, no GPU, and none
# of Chromium's own background connections (updates, sync, first-run pings).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as err:
        pytest.fail(f"Playwright is not installed ({err}); `pip install -e \".[dev]\"` installs it.")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's package (`apt-get install chromium`, "
                    "as .ci/run does) or point EFFDL_CHROMIUM at a Chromium binary.")
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Error as err:
            pytest.fail(f"Chromium at {CHROMIUM} could not start: {err}")
        yield chromium
        chromium.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ the static book
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served_book(tmp_path_factory):
    """The HTML book built from the current tree, served on 127.0.0.1: its base URL."""
    index = book.build_html(tmp_path_factory.mktemp("browser-book"), quiet=True)
    handler = functools.partial(_QuietHandler, directory=str(index.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _pages():
    pages = [Path(c.notebook).stem for c in book.load_book().chapters]
    return pages + ([book.INSTRUCTORS_MD.stem] if book.INSTRUCTORS_MD.is_file() else [])


@pytest.mark.parametrize("stem", _pages())
def test_static_page_loads_clean(browser, served_book, stem):
    page = browser.new_page(viewport=VIEWPORT)
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    try:
        page.goto(f"{served_book}/{stem}.html", wait_until="load")
        # load every image, lazy ones included, then check that each decoded
        page.evaluate("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        page.wait_for_function("[...document.images].every(i => i.complete)", timeout=20_000)
        broken = page.evaluate("[...document.images].filter(i => !i.naturalWidth)"
                               ".map(i => i.id || i.src.slice(0, 80))")
        assert broken == [], f"{stem}: images that did not load: {broken}"
        _check_animations(page, stem)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{stem}.png"))
        assert problems == [], f"{stem}: {problems}"
    finally:
        page.close()


def _check_animations(page, stem):
    """Every matplotlib jshtml animation on the page shows a different frame once played."""
    animations = page.locator("div.animation")
    for k in range(animations.count()):
        anim = animations.nth(k)
        anim.scroll_into_view_if_needed()
        img = anim.locator("img").first
        first = img.get_attribute("src")
        assert first and first.startswith("data:image"), f"{stem}: animation {k} shows no frame"
        anim.get_by_role("button", name="Play", exact=True).click()
        page.wait_for_function("([el, src]) => el.src !== src", arg=[img.element_handle(), first], timeout=10_000)
        anim.get_by_role("button", name="Pause", exact=True).click()


# ------------------------------------------------------------------ JupyterLab
# (chapter, the slider's description, key pressed on the slider's handle, how many times,
#  dropdowns of the same widget to set first: ((description, option), ...))
LAB_WIDGETS = [("01", "frac bits", "ArrowLeft", 2,      # fixed point's fraction bits, 4 → 2; the widget opens
                (("format", "fixed point"),)),         # on FP16, where the split sliders are disabled
               ("02", "pruned", "ArrowLeft", 40, ()),   # the sparsity slider, 90 % → 50 %
               ("03", "conv bits", "ArrowLeft", 2, ()),  # a bit-width slider, 4 → 2 bits
               ("05", "weight bits", "ArrowLeft", 2, ()),  # quantization: the weights' bit width
               ("09", "batch size", "ArrowLeft", 2, ()),  # the batch-size slider, 16 → 4
               ("10", "weights", "ArrowLeft", 5, ())]   # EIE: the weight density


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a token, serving copies of the chapters: (base URL, token, folder)."""
    home = tmp_path_factory.mktemp("lab")
    notebooks = home / "notebooks"
    notebooks.mkdir()
    for c in book.load_book().chapters:              # copies: running and autosaving never touch chapters/
        shutil.copy(c.path, notebooks / c.path.name)
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # render every cell (no windowing), so the whole notebook is in the page
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    notices = home / "settings" / "@jupyterlab" / "apputils-extension"
    notices.mkdir(parents=True)
    (notices / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "IPYTHONDIR": str(home / "ipython"), "EFFDL_QUIET": "1", "MPLBACKEND": "Agg"}
    env.pop("EFFDL_DATA", None)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebooks}", "--ServerApp.open_browser=False",
           f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabServerApp.extension_manager=readonly"]
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(home / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token, notebooks
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _executed_cells(page) -> int:
    return page.evaluate("[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                         ".filter(p => /\\[\\d+\\]/.test(p.textContent)).length")


def _accept_kernel_dialog(page) -> None:
    """JupyterLab asks for a kernel when it opens a notebook before it has read the kernel list."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count() and dialog.first.is_visible():
        dialog.first.get_by_role("button", name="Select", exact=True).click()


def _wait_for_kernel(page, base: str, token: str, name: str, timeout: float = 90) -> None:
    """Wait until the server runs an idle kernel for notebook ``name``, accepting the kernel dialog.

    The page's own status can read idle while JupyterLab still waits for a kernel
    to be chosen (a cold server, kernel list not read yet), so ask the server.
    """
    headers = {"Authorization": f"token {token}"}
    deadline = time.monotonic() + timeout
    while True:
        _accept_kernel_dialog(page)
        with urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions", headers=headers)) as r:
            sessions = json.load(r)
        if any(s.get("path") == name and (s.get("kernel") or {}).get("execution_state") == "idle" for s in sessions):
            return
        assert time.monotonic() < deadline, f"{name}: no idle kernel after {timeout:.0f} s (sessions: {sessions})"
        time.sleep(1)


def _menu(page, menu: str, item: str) -> None:
    _accept_kernel_dialog(page)
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


@pytest.mark.parametrize("chapter_id, description, key, presses, choices", LAB_WIDGETS)
def test_lab_runs_chapter_and_slider_changes_figure(browser, lab, chapter_id, description, key, presses, choices):
    import nbformat

    base, token, folder = lab
    name = book.load_book().chapter(chapter_id).path.name
    stem = Path(name).stem
    n_code = sum(c.cell_type == "code" for c in nbformat.read(folder / name, as_version=4).cells)
    (SCREENSHOTS / f"lab_{stem}_failed.png").unlink(missing_ok=True)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        # ?reset: a fresh workspace, with only this notebook open
        page.goto(f"{base}/lab/tree/{name}?reset&token={token}", wait_until="domcontentloaded")
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        notebook = panel.locator(".jp-Notebook")
        notebook.wait_for(timeout=60_000)
        page.wait_for_function("n => document.querySelectorAll("
                               "'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell').length === n",
                               arg=n_code, timeout=60_000)
        _wait_for_kernel(page, base, token, name)
        panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=60_000)
        # the chapters are stored executed: clear the stored execution counts, so that a count
        # below means this kernel ran the cell, and the stored widget views go
        _menu(page, "Edit", "Clear Outputs of All Cells")
        # the book folds each exercise's reference solution (jupyter.source_hidden); unfold them so that
        # every code cell shows its execution count below
        _menu(page, "View", "Expand All Code")
        page.wait_for_function("() => ![...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
                               ".jp-CodeCell .jp-InputPrompt')].some(p => /\\[\\d+\\]/.test(p.textContent))",
                               timeout=30_000)
        _menu(page, "Run", "Run All Cells")
        # every code cell shows an execution count once run ([*] while running)
        deadline = time.monotonic() + 240
        while _executed_cells(page) < n_code:
            _accept_kernel_dialog(page)
            assert time.monotonic() < deadline, f"{name}: {_executed_cells(page)} of {n_code} cells ran in 240 s"
            time.sleep(1)
        errors = notebook.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                  has_text="Traceback")
        assert errors.count() == 0, f"{name}: {errors.first.inner_text()[:2000]}"
        slider = notebook.locator(".widget-slider", has=page.locator(".widget-label", has_text=description)).first
        slider.scroll_into_view_if_needed()
        box = slider.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
        figure = box.locator(".widget-image").first
        figure.wait_for(timeout=60_000)
        for label, option in choices:            # e.g. the format whose controls the slider belongs to
            shown = figure.screenshot()
            dropdown = box.locator(".widget-dropdown", has=page.locator(".widget-label", has_text=label)).first
            dropdown.locator("select").select_option(option)
            deadline = time.monotonic() + 120
            while figure.screenshot() == shown:
                assert time.monotonic() < deadline, f"{name}: the figure did not change after choosing {option!r}"
                time.sleep(1)
        assert slider.locator(".noUi-target:not([disabled])").count() == 1, \
            f"{name}: the slider {description!r} is disabled (choices made first: {choices})"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        before = figure.screenshot(path=str(SCREENSHOTS / f"lab_{stem}_before.png"))
        readout = slider.locator(".widget-readout")
        start = readout.inner_text()
        handle = slider.locator(".noUi-handle")
        handle.focus()
        for _ in range(presses):
            handle.press(key)
        deadline = time.monotonic() + 120
        after = before
        while after == before and time.monotonic() < deadline:
            time.sleep(1)
            after = figure.screenshot()
        (SCREENSHOTS / f"lab_{stem}_after.png").write_bytes(after)
        moved = f"moving {description!r} from {start} to {readout.inner_text()}"
        assert readout.inner_text() != start, f"{name}: the slider {description!r} did not move"
        assert after != before, f"{name}: the figure did not change after {moved}"
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"lab_{stem}_failed.png"), full_page=True)
        raise
    finally:
        page.close()
        _shut_down_kernels(base, token)


def _shut_down_kernels(base: str, token: str) -> None:
    """Free the CPU for the next chapter: shut down every kernel the server runs."""
    headers = {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{base}/api/kernels", headers=headers)) as r:
        kernels = json.load(r)
    for k in kernels:
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/kernels/{k['id']}", headers=headers,
                                                      method="DELETE"))
