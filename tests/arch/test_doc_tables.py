"""The tables of docs/ that docs/tables.py generates from the code are current."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "tables.py"


def _tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location("doc_tables", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TABLES = _tables()


@pytest.mark.parametrize("name", sorted(TABLES.BLOCKS))
def test_generated_block_is_current(name: str) -> None:
    _, make = TABLES.BLOCKS[name]
    assert TABLES.current(name) == make(), "run `python docs/tables.py`"


def test_every_module_says_what_it_is() -> None:
    """A module without a docstring would leave its row empty."""
    rows = TABLES.modules_table().splitlines()[2:]
    assert rows
    empty = [row.split(" | ")[0] for row in rows if row.split(" | ")[1].strip() == ""]
    assert empty == []
