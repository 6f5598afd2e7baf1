"""The package's structure: arrows that run one way, small modules, user-facing docstrings.

- ``sparsestat/_kernels`` holds numeric kernels only and imports nothing else from the
  package (estimators -> solvers / penalties -> kernels);
- no module is longer than about 1,000 lines;
- no module imports another module's private (underscore) names;
- docstrings speak to users: they cite papers, never internal documents or issues.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sparsestat"
FILES = sorted(PACKAGE.rglob("*.py"))
IDS = [str(p.relative_to(ROOT)) for p in FILES]
MAX_LINES = 1000
INTERNAL = re.compile(
    r"(?i:\bspecs?\b|\bissue\s*#?\d+)|\(#\d+\)|\bDESIGN\b|\.\./shared|SPARSESTAT_SHARE[D]"
)


def _module(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every absolute sparsestat import."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return [(m, names) for m, names in found if m.split(".")[0] == "sparsestat"]


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_kernels_import_nothing_above_them(path):
    if not _module(path).startswith("sparsestat._kernels"):
        return
    up = [
        m
        for m, _ in _imports(ast.parse(path.read_text()))
        if not m.startswith("sparsestat._kernels")
    ]
    assert not up, f"{path.name} imports {up}: _kernels may import only _kernels"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_modules_are_small(path):
    n = path.read_text().count("\n")
    assert n <= MAX_LINES, f"{path.name} has {n} lines (at most {MAX_LINES}): split it by concept"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_no_private_names_imported_across_modules(path):
    me = _module(path)
    bad = [
        f"{m}.{n}"
        for m, names in _imports(ast.parse(path.read_text()))
        if m != me
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]
    assert not bad, f"{path.name} imports private names {bad}: make them public or move them down"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_docstrings_cite_no_internal_documents(path):
    tree = ast.parse(path.read_text())
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False) or ""
            if m := INTERNAL.search(doc):
                hits.append(f"{getattr(node, 'name', '<module>')}: {m.group(0)!r}")
    assert not hits, f"{path.name} docstrings mention internal documents or issues: {hits}"
