"""Settings shared by every test folder, and the fixtures of ``tests.support`` registered as plugins."""

import pytest

pytest_plugins = ["tests.support.live", "tests.support.mlflow", "tests.support.redis", "tests.support.stores"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ray: needs Ray (the `ray` extra); skipped when Ray is not installed")
