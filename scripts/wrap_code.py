"""Wrap the chapters' long code lines to the HTML book's column (maintainers).

    python scripts/wrap_code.py 09 13          # rewrite these chapters' code cells in place
    python scripts/wrap_code.py --check        # count the lines still too long, per chapter
    python scripts/wrap_code.py --width 78 ... # the limit (default WIDTH)

At the book's code size, a code line of up to WIDTH characters fits the
content column (tests/test_browser_reading.py measures the column); a longer
one is soft-wrapped by the browser at the column's edge, without the
indentation that shows where it continues. This script breaks such lines the
way the chapters are written by hand: after a comma inside brackets, the
continuation aligned one column after the open bracket; a trailing comment
that does not fit goes on its own line above; a long string literal inside
brackets is split into two adjacent literals at a space (Python joins them).

Only the source of code cells changes (not an exercise's cells), and a cell is rewritten only when the
result parses to the same syntax tree (``ast.dump``), so outputs stay valid
and no chapter needs re-executing. Lines it cannot break are left as they
are. A notebook is replaced in one step, and only if nobody wrote it since it
was read.
"""
from __future__ import annotations

import ast
import io
import os
import re
import sys
import tempfile
import tokenize
from pathlib import Path

import nbformat

from effdl import book

WIDTH = 78
_MAGIC = re.compile(r"^\s*[%!]")


def _tree(source: str) -> str | None:
    code = "\n".join("pass" if _MAGIC.match(line) else line for line in source.split("\n"))
    try:
        return ast.dump(ast.parse(code))
    except SyntaxError:
        return None


def _tokens(source: str):
    code = "\n".join("pass" if _MAGIC.match(line) else line for line in source.split("\n"))
    return list(tokenize.generate_tokens(io.StringIO(code).readline))


def _break_once(source: str, width: int) -> str | None:
    """``source`` with its first breakable over-long line broken once, or None."""
    lines = source.split("\n")
    try:
        tokens = _tokens(source)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    stack = []                                   # columns of open brackets: (row, col)
    candidates: dict[int, list] = {}             # row -> [(kind, col, indent, token)]
    for tok in tokens:
        (row, col), (erow, ecol) = tok.start, tok.end
        if tok.type == tokenize.OP and tok.string in "([{":
            stack.append((row, col))
        elif tok.type == tokenize.OP and tok.string in ")]}":
            if stack:
                stack.pop()
        elif tok.type == tokenize.OP and tok.string == "," and stack:
            candidates.setdefault(row, []).append(("comma", ecol, stack[-1], tok))
        elif tok.type == tokenize.STRING and stack and row == erow:
            candidates.setdefault(row, []).append(("string", col, stack[-1], tok))
        elif tok.type == tokenize.COMMENT:
            candidates.setdefault(row, []).append(("comment", col, None, tok))
    for row0, line in enumerate(lines, start=1):
        if len(line) <= width or _MAGIC.match(line):
            continue
        indent = line[:len(line) - len(line.lstrip())]
        options = candidates.get(row0, [])
        # 1. a trailing comment that pushes the line over: on its own line above
        for kind, col, _, tok in options:
            if kind == "comment" and line[:col].strip() and len(line[:col].rstrip()) <= width:
                new = [indent + tok.string, line[:col].rstrip()]
                return "\n".join(lines[:row0 - 1] + new + lines[row0:])
        # 2. after the rightmost comma that leaves a first part within the width
        commas = [(col, bracket) for kind, col, bracket, _ in options if kind == "comma" and col <= width
                  and line[col:].strip() and bracket[0] <= row0
                  and not re.match(r"\s*\w+(\s*,\s*\w+)*\s+in\b", line[col:])   # not `for k, v in`
                  and not (bracket[0] == row0 and col - bracket[1] < 12)]          # nor `round(v,` 1)
        # the rightmost comma whose continuation starts within the line's first half (a deeper one
        # would stack one argument a line at the far right); else the outermost
        near = [c for c in commas if c[1][1] + 1 <= width // 2]
        ordered = sorted(near, reverse=True) or [c for c in sorted(commas, key=lambda c: (c[1][1], -c[0]))
                                                 if c[1][1] + 1 + len(line[c[0]:].lstrip()) <= width]
        for col, (brow, bcol) in ordered:
            cont = " " * (bcol + 1) + line[col:].lstrip()
            if len(cont) < len(line) and len(cont.strip()) > 0:
                return "\n".join(lines[:row0 - 1] + [line[:col].rstrip(), cont] + lines[row0:])
        # 3. a long string literal inside brackets, split at a space
        for kind, col, _, tok in [o for o in options if o[0] == "string"]:
            split = _split_string(tok.string, width - col)
            if split is None:
                continue
            first, second = split
            end = col + len(tok.string)
            pad = " " * col                               # the second literal under the first
            new = [line[:col] + first, pad + second + line[end:]]
            if len(new[0]) <= width and len(new[1]) < len(line):
                return "\n".join(lines[:row0 - 1] + new + lines[row0:])
    return None


def _split_string(literal: str, room: int):
    """Split a one-line string literal into two adjacent literals at a space before ``room``, or None."""
    m = re.match(r"^([rRbBuUfF]{0,2})(['\"])(.*)\2$", literal, re.S)
    if not m or literal.startswith(("'''", '"""')):
        return None
    prefix, quote, body = m.groups()
    fmt = "f" in prefix.lower()
    depth, spots, i = 0, [], 0
    while i < len(body):
        ch = body[i]
        if fmt and body[i:i + 2] in ("{{", "}}"):
            i += 2
            continue
        if fmt and ch == "{":
            depth += 1
        elif fmt and ch == "}":
            depth -= 1
        elif ch == "\\":
            i += 2
            continue
        elif ch == " " and depth == 0:
            spots.append(i)
        i += 1
    limit = room - len(prefix) - 2
    spots = [s for s in spots if 10 < s + 1 <= limit and len(body) - s > 25]   # no one-word remainders
    if not spots:
        return None
    k = spots[-1] + 1                                   # the space stays with the first part
    return f"{prefix}{quote}{body[:k]}{quote}", f"{prefix}{quote}{body[k:]}{quote}"


def wrap_source(source: str, width: int = WIDTH) -> str:
    """``source`` with its over-long lines broken where the result means the same (same syntax tree)."""
    want = _tree(source)
    if want is None:
        return source
    for _ in range(200):
        new = _break_once(source, width)
        if new is None or _tree(new) != want:
            break
        source = new
    return source


def long_lines(nb, width: int = WIDTH) -> int:
    return sum(len(line) > width for c in nb.cells if c.cell_type == "code" for line in c.source.split("\n"))


def wrap_notebook(path: Path, width: int = WIDTH) -> str:
    before = path.stat()
    nb = nbformat.read(path, as_version=4)
    n_before = long_lines(nb, width)
    for cell in nb.cells:
        # an exercise's cells (nbgrader's metadata) keep their form: effdl assign and nbgrader read them
        if cell.cell_type == "code" and "nbgrader" not in cell.get("metadata", {}):
            cell.source = wrap_source(cell.source, width)
    n_after = long_lines(nb, width)
    if n_after == n_before:
        return f"{n_before} long lines, none breakable"
    text = nbformat.writes(nb)
    text += "" if text.endswith("\n") else "\n"
    now = path.stat()
    if (now.st_mtime_ns, now.st_size) != (before.st_mtime_ns, before.st_size):
        return "CHANGED BY SOMEONE ELSE while being read: left alone, run again"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, before.st_mode & 0o777)
    os.replace(tmp, path)
    return f"long lines {n_before} -> {n_after}"


def main(argv: list[str]) -> int:
    width = WIDTH
    if "--width" in argv:
        k = argv.index("--width")
        width = int(argv[k + 1])
        argv = argv[:k] + argv[k + 2:]
    check = "--check" in argv
    ids = [a for a in argv if a != "--check"]
    b = book.load_book()
    for c in ([b.chapter(i) for i in ids] if ids else b.chapters):
        if check:
            print(f"chapter {c.id}: {long_lines(nbformat.read(c.path, as_version=4), width)} code lines "
                  f"over {width} characters")
        else:
            print(f"chapter {c.id}: {wrap_notebook(c.path, width)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
