"""Write each public function's back-link to its chapter into its docstring (maintainers).

``python scripts/chapter_links.py [--check]``. For every public function and
class of an ``effdl`` module it finds the first chapter of ``book.yml`` whose
code calls it by name ("Taught in chapter NN, "Title".") or, failing that, the
first chapter that lists or imports its module ("Behind chapter NN, "Title"."), and puts
that line at the end of the docstring, replacing an older one. ``--check``
changes nothing and exits 1 when a link is missing or stale;
``tests/test_chapter_links.py`` runs the same check.
"""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r'\n\n\s*(Taught in|Behind) chapter (\d\d), "([^"]+)"\.[ \t]*(?=\n\s*$|$)')
# the front end and the argument-checking infrastructure: no chapter teaches them
SKIP_MODULES = {"effdl.cli", "effdl.book", "effdl.assign", "effdl.__main__", "effdl._validate", "effdl.validation"}


def chapters() -> list[dict]:
    book = yaml.safe_load((ROOT / "book.yml").read_text())
    out = []
    for part in book["parts"]:
        for c in part.get("chapters", []):
            nb = json.loads((ROOT / c["notebook"]).read_text())
            code = "\n".join("".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == "code")
            out.append({"id": str(c["id"]), "title": c["title"], "modules": set(c.get("modules", [])), "code": code})
    return out


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / "effdl").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name not in SKIP_MODULES and not path.name.startswith("_") or path.name == "__init__.py":
            out[name] = path
    return {k: v for k, v in out.items() if k not in SKIP_MODULES}


def public_defs(path: Path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node


def _covers(module: str, listed: set[str]) -> bool:
    return any(module == m or module.startswith(m + ".") for m in listed)


def wanted_link(module: str, name: str, book: list[dict]) -> str | None:
    word = re.compile(rf"(?<![\w.])(?:\w+\.)*{re.escape(name)}\b")
    # taught in: the first chapter (book order) that calls it and lists its module in book.yml, else the first
    # that calls it and imports its module
    for c in book:
        if word.search(c["code"]) and _covers(module, c["modules"]):
            return f'Taught in chapter {c["id"]}, "{c["title"]}".'
    for c in book:
        if word.search(c["code"]) and module in c["code"]:
            return f'Taught in chapter {c["id"]}, "{c["title"]}".'
    # behind: the first chapter that lists the module in book.yml (it teaches the module), else the first
    # whose code names it
    for c in book:
        if _covers(module, c["modules"]):
            return f'Behind chapter {c["id"]}, "{c["title"]}".'
    for c in book:
        if re.search(rf"\b{re.escape(module)}\b", c["code"]):
            return f'Behind chapter {c["id"]}, "{c["title"]}".'
    return None


def problems_and_edits(apply: bool, skip: tuple[str, ...] = ()) -> list[str]:
    book = chapters()
    problems = []
    for module, path in modules().items():
        if module.startswith(skip):
            continue
        src = path.read_text()
        lines = src.split("\n")
        edits = []   # (docstring node, wanted)
        for node in public_defs(path):
            want = wanted_link(module, node.name, book)
            doc = ast.get_docstring(node, clean=False)
            if want is None:
                problems.append(f"{module}.{node.name}: no chapter lists or imports its module (book.yml)")
                continue
            have = LINK.search(doc or "")
            if have is None or have.group(0).strip() != want:
                problems.append(f"{module}.{node.name}: wants {want!r}")
                if doc is not None:
                    edits.append((node.body[0], want))
        if apply and edits:
            for expr, want in sorted(edits, key=lambda e: -e[0].lineno):
                start, end = expr.lineno - 1, expr.end_lineno - 1
                text = "\n".join(lines[start:end + 1])
                indent = re.match(r"\s*", lines[start]).group(0)
                q = '"""' if '"""' in text else "'''"
                body = text[text.index(q) + 3:text.rindex(q)]
                prefix = text[:text.index(q)]
                body = LINK.sub("", body).rstrip()
                new = f'{prefix}{q}{body}\n\n{indent}{want}\n{indent}{q}'
                lines[start:end + 1] = new.split("\n")
            path.write_text("\n".join(lines))
    return problems


if __name__ == "__main__":
    check = "--check" in sys.argv
    found = problems_and_edits(apply=not check)
    if check:
        print("\n".join(found) or "every public function links to its chapter")
        sys.exit(1 if found else 0)
    rest = problems_and_edits(apply=False)
    print(f"{len(found) - len(rest)} docstrings updated; {len(rest)} problems left")
    print("\n".join(rest))
