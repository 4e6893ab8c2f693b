"""Settings shared by every test folder."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ray: needs Ray (the `ray` extra); skipped when Ray is not installed")
