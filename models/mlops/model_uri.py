"""``models:/`` URIs of the MLflow model registry, parsed in one place.

Two forms name a registered policy: ``models:/<name>@<alias>`` (whatever version the alias points at
now, e.g. ``models:/sendwise-policy@champion``) and ``models:/<name>/<version>`` (one fixed version).
This module imports no MLflow, so the server can tell and parse them without loading it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REGISTRY_PREFIX = "models:/"
ACCEPTED_FORMS = "models:/<name>@<alias> or models:/<name>/<version>"
# Names as MLflow allows them (no "/" or ":"), without "@" or control characters; aliases as MLflow allows them.
_MODEL_URI = re.compile(r"models:/(?P<name>[^/:@\x00-\x1f\x7f]+)(?:@(?P<alias>[\w-]+)|/(?P<version>[0-9]+))")


@dataclass(frozen=True)
class ModelUri:
    """A registered model and either an alias or a version: exactly one of the two is set.

    ``version`` is text, as MLflow gives versions; ``str(uri)`` is the ``models:/`` form again.
    """

    name: str
    alias: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if (self.alias is None) == (self.version is None):
            raise ValueError(f"a model URI names exactly one of an alias and a version; got alias={self.alias!r}, "
                             f"version={self.version!r}")
        match = _MODEL_URI.fullmatch(str(self))
        if match is None or (match["name"], match["alias"], match["version"]) != (self.name, self.alias, self.version):
            raise ValueError(f"model URI {str(self)!r} must look like {ACCEPTED_FORMS}")

    @classmethod
    def parse(cls, uri: str) -> ModelUri:
        """The URI's parts; ValueError naming ``uri`` and the accepted forms when it is neither.

        >>> ModelUri.parse("models:/sendwise-policy@champion")
        ModelUri(name='sendwise-policy', alias='champion', version=None)
        >>> ModelUri.parse("models:/sendwise-policy/3").version
        '3'
        """
        match = _MODEL_URI.fullmatch(uri) if isinstance(uri, str) else None
        if match is None:
            raise ValueError(f"model URI {uri!r} must look like {ACCEPTED_FORMS}")
        return cls(match["name"], alias=match["alias"], version=match["version"])

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{REGISTRY_PREFIX}{self.name}@{self.alias}"
        return f"{REGISTRY_PREFIX}{self.name}/{self.version}"


def is_registry_uri(text: str | None) -> bool:
    """Whether ``text`` points into the registry (starts with ``models:/``), well formed or not."""
    return isinstance(text, str) and text.startswith(REGISTRY_PREFIX)
