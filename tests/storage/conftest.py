"""Fixtures of the storage tests: a profile's database file, opened sync or async."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from p2pim.config import database_path
from p2pim.storage import Database, Store


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return database_path(tmp_path)


@pytest.fixture
def db(path: Path) -> Iterator[Database]:
    with Database.open(path) as database:
        yield database


@pytest.fixture
async def store(path: Path) -> AsyncIterator[Store]:
    async with Store.open(path) as opened:
        yield opened
