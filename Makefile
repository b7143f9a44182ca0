# The README's two commands: `make book` and `make test`. Each sets up the
# virtual environment on first use (.venv: torch first, as TORCH says, then `pip install -e ".[dev]"`).
PYTHON ?= python3
VENV ?= .venv
# Which torch build the set-up installs: cpu (default; PyTorch's CPU wheel index on Linux) or cuda
# (PyPI's Linux build, several GB). scripts/install_torch.py explains; `make setup TORCH=cuda`.
TORCH ?= cpu
PY := $(VENV)/bin/python
# Notebook tests: every chapter in book.yml under strict nbval; see tests/README.md.
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup book test lab unit browser chapters classroom-check execute clean writable chromium

$(VENV)/.installed: pyproject.toml scripts/install_torch.py | writable
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) scripts/install_torch.py $(TORCH)
	$(PY) -m pip install -e ".[dev]"
	touch $@

writable:            ## the set-up, the book and the tests write .venv/ and _build/ here
	@test -w . || { echo "make: this checkout ($(CURDIR)) is read-only; clone it somewhere writable." >&2; exit 1; }

chromium:            ## the browser tests' Chromium: present, installed (root + apt), or a one-line stop
	@scripts/ensure_chromium.sh

setup: $(VENV)/.installed

book: setup          ## build the HTML book into _build/html
	$(PY) -m effdl book

# The classroom tests (nbgrader's generate → autograde → feedback) cover chapters 01 and 02 by default;
# `make test` (and so CI) and `make classroom-check` run them on every chapter.
CLASSROOM := EFFDL_CLASSROOM_CHAPTERS=all

test: setup chromium ## unit tests + every chapter under nbval and through nbgrader + the HTML build + the browser
	$(CLASSROOM) $(PY) -m pytest tests effdl chapters --doctest-modules $(NBVAL) -v --durations=15

unit: setup          ## unit tests only (fast; without the browser tests)
	$(PY) -m pytest tests -q --ignore=tests/test_browser.py --ignore=tests/test_browser_reading.py --ignore=tests/test_browser_flipbooks.py

browser: setup chromium ## the book in Chromium: static pages and JupyterLab (needs Debian's chromium)
	$(PY) -m pytest tests/test_browser.py tests/test_browser_reading.py tests/test_browser_flipbooks.py -v

classroom-check: setup ## every chapter through nbgrader: generate, autograde (exact scores), feedback
	$(CLASSROOM) $(PY) -m pytest tests/test_classroom.py -v --durations=20

chapters: setup      ## chapters only, under nbval
	$(PY) -m pytest chapters $(NBVAL) -q

execute: setup       ## maintainers: re-execute chapters and store their outputs
	$(PY) -m effdl execute $(IDS)

lab: setup           ## the chapters in JupyterLab
	$(PY) -m effdl lab

clean:
	rm -rf _build
