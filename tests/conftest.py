"""Fixtures every layer uses.  Each folder's conftest.py holds that layer's own.

Test folders are packages (an `__init__.py` each), so pytest imports `tests/core/test_x.py`
as `tests.core.test_x`: two layers may hold modules with the same basename.
"""

import pytest

from p2pim import Identity


@pytest.fixture
def identity() -> Identity:
    """A fresh key pair."""
    return Identity.generate()
