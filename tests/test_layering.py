"""The package's shape: layers that import only downward, no cycles, imports at the top, small modules.

The layers (STYLE.md): base → algorithms → experiments → views → front. An
algorithm never imports a record, a checkpoint loader, a report, a view or the
command line; a view never imports the command line. The graph is read from
the source with ``ast`` (no import side effects), so a violation names the
file and line.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "effdl"

# (layer index, module prefixes); the first matching prefix wins, so list specific before general
LAYERS = {
    "base": ["effdl", "effdl._validate", "effdl.numerics", "effdl.data", "effdl.models", "effdl.architectures",
             "effdl.train", "effdl.transformer"],
    "algorithms": ["effdl.pruning", "effdl.sharing", "effdl.coding", "effdl.compression", "effdl.quantization",
                   "effdl.ternary", "effdl.lowrank", "effdl.winograd", "effdl.paper_tables", "effdl.hardware", "effdl.nas",
                   "effdl.llm",
                   "effdl.training"],
    "experiments": ["effdl.precompute", "effdl.zoo", "effdl.reproduce", "effdl.summary"],
    "views": ["effdl.viz"],
    "front": ["effdl.cli", "effdl.book", "effdl.assign", "effdl.exercises", "effdl.__main__"],
}
ORDER = list(LAYERS)
MAX_LINES = 600
# a module may exceed MAX_LINES when its docstring says why, in a line starting with this
LONG_REASON = "Longer than 600 lines because"
# deferred imports allowed inside functions: optional or heavy dependencies, each with a comment on its line
# or the line above saying why
DEFERRABLE = {"tqdm", "scipy", "sklearn", "jupyter_book", "nbclient", "ipywidgets", "IPython", "playwright",
              "nbgrader"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def layer_of(module: str) -> str:
    best = None
    for layer, prefixes in LAYERS.items():
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > len(best[1])):
                best = (layer, p)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layering.py")
    return best[0]


def _imports(module: str, path: Path):
    """Yield (target effdl module, line, inside a function?) for every import of an effdl module."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            yield t, node.lineno, id(node) not in top


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, path in MODULES.items():
        for target, _, _ in _imports(m, path):
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != m:
                edges[m].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    for m in MODULES:
        layer_of(m)


def test_imports_point_downward():
    bad = []
    for m, path in MODULES.items():
        here = ORDER.index(layer_of(m))
        for target, line, _ in _imports(m, path):
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target not in MODULES or target == m:
                continue
            there = ORDER.index(layer_of(target))
            if there > here:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({layer_of(m)}) imports "
                           f"{target} ({layer_of(target)})")
    assert not bad, "imports that point up the layers:\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, f"import cycles: {found}"


def test_cycle_finder_finds_a_cycle():
    """The check above can fail: a made-up loop is found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_sit_at_the_top():
    bad = []
    for m, path in MODULES.items():
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in top:
                continue
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            deferrable = node.level == 0 if isinstance(node, ast.ImportFrom) else True
            deferrable = deferrable and all(n.split(".")[0] in DEFERRABLE for n in names)
            said_why = "#" in lines[node.lineno - 1] or "# deferred" in lines[node.lineno - 2]
            if not (deferrable and said_why):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not bad, ("imports inside functions (move them to the module's top; an optional heavy "
                     "dependency may stay deferred with a comment saying why):\n" + "\n".join(bad))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_small_or_say_why(module):
    path = MODULES[module]
    n = len(path.read_text().splitlines())
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert n <= MAX_LINES or LONG_REASON in doc, \
        f"{path.relative_to(PACKAGE.parent)} has {n} lines: split it by job, or say why in its docstring " \
        f"({LONG_REASON!r} …)"
