# The README's two commands: `make book` and `make test`. Each sets up the
# virtual environment on first use (.venv, `pip install -e ".[dev]"`).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Notebook tests: every chapter in book.yml under strict nbval; see tests/README.md.
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup book test lab unit browser chapters execute clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

book: setup          ## build the HTML book into _build/html
	$(PY) -m effdl book

test: setup          ## unit tests + every chapter under nbval + the HTML build test
	$(PY) -m pytest tests effdl chapters --doctest-modules $(NBVAL) -v --durations=15

unit: setup          ## unit tests only (fast; without the browser tests)
	$(PY) -m pytest tests -q --ignore=tests/test_browser.py

browser: setup       ## the book in Chromium: static pages and JupyterLab (needs Debian's chromium)
	$(PY) -m pytest tests/test_browser.py -v

chapters: setup      ## chapters only, under nbval
	$(PY) -m pytest chapters $(NBVAL) -q

execute: setup       ## maintainers: re-execute chapters and store their outputs
	$(PY) -m effdl execute $(IDS)

lab: setup           ## the chapters in JupyterLab
	$(PY) -m effdl lab

clean:
	rm -rf _build
