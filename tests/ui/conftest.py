"""Fixtures of the UI tests: a cast of UIs on real loopback nodes (`cast`), and two of
them already connected (`pair`).  Snapshots live in __snapshots__/ beside these tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tui_cast import Cast, connect
from tests.support.tui_harness import UiThread


@pytest.fixture
def cast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cast]:
    # `~` is the test's folder: short paths to type, and the file picker's tree starts here.
    monkeypatch.setenv("HOME", str(tmp_path))
    people = Cast(tmp_path)
    try:
        yield people
    finally:
        people.close()


@pytest.fixture
def pair(cast: Cast) -> tuple[UiThread, UiThread]:
    alice, bob = cast.start("alice"), cast.start("bob")
    connect(alice, bob)
    return alice, bob
