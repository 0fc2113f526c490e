"""Fixtures every layer uses.  Each folder's conftest.py holds that layer's own.

Test folders are packages (an `__init__.py` each), so pytest imports `tests/core/test_x.py`
as `tests.core.test_x`: two layers may hold modules with the same basename.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pim import Identity


@pytest.fixture
def identity() -> Identity:
    """A fresh key pair."""
    return Identity.generate()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards; skipped where we may not mount."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
