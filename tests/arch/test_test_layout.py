"""The tests' own rules: every test lives in a layer folder, and test modules share helpers
through tests/support/ and fixtures through conftest.py, never by importing one another."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO

TESTS = REPO / "tests"
LAYERS = {"wire", "storage", "core", "node", "faces", "ui", "netns", "arch"}
# Scripts, not tests: the atheris harnesses drive the fuzz properties' own oracles, and the
# hostile peers run as processes of their own.
SCRIPTS = {"fuzz", "peers"}


def imported_modules(source: str, package: str) -> set[str]:
    """Every module `source` (a module of `package`) imports, relative imports resolved and
    `from pkg import name` counted as a possible module `pkg.name`."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = [node.module] if node.module else []
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, *module] if node.level else module)
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def only_test_modules(names: set[str]) -> list[str]:
    return sorted(name for name in names if name.rsplit(".", 1)[-1].startswith("test_"))


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(REPO).parent.parts)


def test_no_test_module_imports_another() -> None:
    imports = {
        str(path.relative_to(REPO)): only_test_modules(
            imported_modules(path.read_text(), package_of(path))
        )
        for path in TESTS.rglob("*.py")
        if path.relative_to(TESTS).parts[0] not in SCRIPTS
    }
    assert {path: names for path, names in imports.items() if names} == {}


def test_the_check_sees_every_form_of_import() -> None:
    source = (
        "import test_a\nfrom test_b import x\nfrom tests.node.test_c import y\n"
        "from tests.wire import test_d\nfrom . import test_e\nfrom .test_f import z\n"
        "from tests.support.nodes import meet\nimport pytest\n"
    )
    assert only_test_modules(imported_modules(source, "tests.node")) == [
        "test_a",
        "test_b",
        "tests.node.test_c",
        "tests.node.test_e",
        "tests.node.test_f",
        "tests.wire.test_d",
    ]


def test_every_test_module_is_in_a_layer_folder() -> None:
    misplaced = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("test_*.py")
        if path.relative_to(TESTS).parts[0] not in LAYERS
        and path.relative_to(TESTS).parts[0] not in SCRIPTS
    ]
    assert misplaced == []
    assert all((TESTS / layer / "__init__.py").is_file() for layer in LAYERS)
