"""Tables of docs/ generated from the code, so that they cannot drift from it.

Run `python docs/tables.py` after adding, removing or renaming a module or changing its
docstring's first paragraph: it rewrites each generated block in place.  The test
tests/arch/test_doc_tables.py fails while a block is not what this script would write.

A block sits between `<!-- generated: NAME -->` and `<!-- end: NAME -->`.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "p2pim"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _summary(tree: ast.Module) -> str:
    """The docstring's first paragraph, on one line (a table cell)."""
    doc = ast.get_docstring(tree) or ""
    return " ".join(doc.split("\n\n", 1)[0].split()).replace("|", "\\|")


def _imports(tree: ast.Module, modules: set[str]) -> list[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return sorted(m.removeprefix("p2pim.") for m in found & modules if m != "p2pim")


def modules_table() -> str:
    """Every module of p2pim: what it is (its docstring) and what of p2pim it imports."""
    paths = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")
    names = {_module(p) for p in paths}
    rows = ["| module | what it is | imports from p2pim |", "|---|---|---|"]
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        name = _module(path)
        used = ", ".join(m for m in _imports(tree, names) if m != name.removeprefix("p2pim."))
        label = path.relative_to(PACKAGE).as_posix()
        rows.append(f"| `{label}` | {_summary(tree)} | {used} |")
    return "\n".join(rows)


BLOCKS: dict[str, tuple[str, Callable[[], str]]] = {
    "modules": ("architecture.md", modules_table),
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {name} -->\n).*?(\n<!-- end: {name} -->)", re.S)


def current(name: str) -> str | None:
    """The block as the doc has it now (None: the doc has no such block)."""
    doc, _ = BLOCKS[name]
    found = _pattern(name).search((ROOT / "docs" / doc).read_text())
    return None if found is None else found.group(0).split("\n", 1)[1].rsplit("\n", 1)[0]


def rewrite() -> None:
    for name, (doc, make) in BLOCKS.items():
        path = ROOT / "docs" / doc
        text = path.read_text()
        found = list(_pattern(name).finditer(text))
        if len(found) != 1:
            sys.exit(f"docs/{doc}: expected one generated block '{name}', found {len(found)}")
        block = found[0]
        path.write_text(text[: block.end(1)] + make() + text[block.start(2) :])


if __name__ == "__main__":
    rewrite()
