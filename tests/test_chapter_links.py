"""Every public function and class says which chapter teaches it (d2l's "Defined in" notes), checked
against book.yml and the chapters' code, so the links cannot go stale.

The links are written by ``python scripts/chapter_links.py``; this test runs its check.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chapter_links.py"
spec = importlib.util.spec_from_file_location("chapter_links", SCRIPT)
links = importlib.util.module_from_spec(spec)
spec.loader.exec_module(links)


@pytest.fixture(scope="module")
def book():
    return links.chapters()


def test_every_public_function_links_to_its_chapter():
    problems = links.problems_and_edits(apply=False)
    assert not problems, ("missing or stale chapter links (run `python scripts/chapter_links.py`):\n"
                          + "\n".join(problems[:40]))


def test_a_function_used_in_a_chapter_is_taught_there(book):
    assert links.wanted_link("effdl.pruning", "magnitude_mask", book) == 'Taught in chapter 02, "Pruning".'


def test_a_name_no_chapter_calls_falls_back_to_the_module_chapter(book):
    assert links.wanted_link("effdl.pruning", "no_such_function_xyz", book).startswith("Behind chapter 02")


def test_a_module_in_no_chapter_is_reported(book):
    assert links.wanted_link("effdl.not_a_module", "anything", book) is None
