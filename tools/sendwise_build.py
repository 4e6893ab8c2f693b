"""setuptools' build backend, without the notice it gives on every editable install of this layout.

sendwise maps four folders (``engine``, ``models``, ``server``, ``cli``) into one namespace package, so
setuptools installs it in editable mode through a meta-path finder and says so each time with an
``InformationOnly`` warning, "Editable installation.", that pip prints as a ``BuildBackendWarning``. It
asks to beware of a folder named ``sendwise`` in the working directory, which this layout has none of
by design. Only that notice is dropped: every other setuptools warning still reaches pip.
"""

from __future__ import annotations

import warnings
from typing import Any

from setuptools import build_meta
from setuptools.build_meta import (
    build_sdist,
    build_wheel,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)
from setuptools.warnings import InformationOnly

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]


def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    """``setuptools.build_meta.build_editable`` with its "Editable installation." notice filtered out."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Editable installation\.", category=InformationOnly)
        return str(build_meta.build_editable(wheel_directory, config_settings, metadata_directory))
