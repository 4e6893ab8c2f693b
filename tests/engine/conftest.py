"""Fixtures shared by the engine tests."""

from collections.abc import Iterator

import pytest

from sendwise import engine
from sendwise.engine import parallel


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """Let a test change the engine's thread count, and put the count back afterwards."""
    before = parallel._threads["n"]  # the engine has no getter; a test must not leak its setting
    yield
    engine.set_num_threads(before)
