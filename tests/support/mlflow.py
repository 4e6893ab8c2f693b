"""A real MLflow tracking store in a temporary folder, for tests that track, register and load models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite store's URI; MLflow's global URI points at another file, which nothing may create."""
    folder = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'global.db'}")
        yield f"sqlite:///{folder / 'mlflow.db'}"
    assert not (folder / "global.db").exists(), "the code used MLflow's global tracking URI"
