"""Where the served policy comes from: a registry URI is parsed by ``ModelUri``, the one parser."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sendwise.models import ModelUri, load_policy
from sendwise.server import Settings
from sendwise.server.model_loader import ModelLoader, configured_registry_uri

SOURCES = [
    pytest.param("models:/sendwise-policy@champion", ModelUri("sendwise-policy", alias="champion"), True, id="alias"),
    pytest.param("models:/sendwise-policy/3", ModelUri("sendwise-policy", version="3"), False, id="version"),
    pytest.param("models:/sendwise-policy", None, False, id="malformed"),
    pytest.param("policies/ts.npz", None, False, id="file"),
]


@pytest.mark.parametrize("model_uri, parsed, follows", SOURCES)
def test_only_an_alias_is_followed(model_uri: str, parsed: ModelUri | None, follows: bool,
                                   make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(model_uri=model_uri)
    assert configured_registry_uri(settings) == parsed
    assert ModelLoader(settings, None).follows_alias is follows


def test_a_malformed_registry_uri_fails_to_load_naming_the_forms(make_settings: Callable[..., Settings]) -> None:
    loader = ModelLoader(make_settings(model_uri="models:/sendwise-policy/latest"), None)
    message = ("model URI 'models:/sendwise-policy/latest' must look like models:/<name>@<alias> or "
               "models:/<name>/<version>")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        loader.load()
    assert loader.current_version() is None


def test_registry_sources_are_read_through_the_parsed_uri(make_settings: Callable[..., Settings], policy_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from sendwise.models.mlops import registry

    asked: list[object] = []

    def load_registered_policy(uri: object) -> tuple[object, str]:
        asked.append(uri)
        return load_policy(policy_path), "3"

    def alias_version(name: str, alias: str) -> str | None:
        return "7" if (name, alias) == ("sendwise-policy", "champion") else None

    monkeypatch.setattr(registry, "load_registered_policy", load_registered_policy)
    monkeypatch.setattr(registry, "alias_version", alias_version)
    champion = ModelLoader(make_settings(model_uri="models:/sendwise-policy@champion"), None)
    _, version = champion.load()
    assert (asked, version) == ([ModelUri("sendwise-policy", alias="champion")], "sendwise-policy/3")
    assert champion.current_version() == "sendwise-policy/7"
    assert ModelLoader(make_settings(model_uri="models:/sendwise-policy/3"), None).current_version() is None
    with pytest.raises(ValueError, match=re.escape("model URI 'models:/other@champion': the registry has no such")):
        ModelLoader(make_settings(model_uri="models:/other@champion"), None).current_version()
