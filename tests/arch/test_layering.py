"""Architecture rules that code review alone would let slip (DESIGN.md §1, rules 1 and 9)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGE = REPO / "p2pim"

# Each outside library has exactly one home.
HOMES = {
    "cryptography": {"wire/noise.py", "wire/signing.py"},
    "msgpack": {"wire/codec.py"},
    "zeroconf": {"discovery.py"},
    "ifaddr": {"discovery.py"},
    "sqlite3": {"storage/"},
    "spake2": {"wire/pake.py"},
    "blake3": {"transfer/files.py"},
    "textual": {"ui/"},
    "PIL": {"ui/conversation.py"},
    "rich_pixels": {"ui/conversation.py"},
}
# The sans-IO core does no I/O and knows nothing above itself.
WIRE_FORBIDDEN = {"trio", "socket", "asyncio", "selectors", "threading", "time", "os", "p2pim"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_modules() -> None:
    assert len(MODULES) > 10


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_outside_libraries_stay_in_their_home(path: Path) -> None:
    relative = path.relative_to(PACKAGE).as_posix()
    for name in imports_of(path):
        top = name.split(".")[0]
        homes = HOMES.get(top)
        if homes is not None:
            assert any(relative == h or relative.startswith(h) for h in homes), (
                f"{relative} imports {top}, whose only home is {sorted(homes)}"
            )


@pytest.mark.parametrize("path", sorted((PACKAGE / "wire").glob("*.py")), ids=lambda p: p.name)
def test_wire_core_is_sans_io(path: Path) -> None:
    for name in imports_of(path):
        top = name.split(".")[0]
        if name.startswith("p2pim.wire"):
            continue
        assert top not in WIRE_FORBIDDEN, f"wire/{path.name} imports {name}"
