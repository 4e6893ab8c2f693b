"""``models:/`` URIs: the two accepted forms parse, anything else is refused naming the URI and the forms."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from sendwise.models import ModelUri, is_registry_uri

FORMS = "must look like models:/<name>@<alias> or models:/<name>/<version>"

GOOD_URIS = [
    pytest.param("models:/sendwise-policy@champion", ModelUri("sendwise-policy", alias="champion"), id="alias"),
    pytest.param("models:/sendwise-policy/3", ModelUri("sendwise-policy", version="3"), id="version"),
    pytest.param("models:/sendwise-policy/12", ModelUri("sendwise-policy", version="12"), id="two-digit-version"),
    pytest.param("models:/my.team_model-v2@staging-2", ModelUri("my.team_model-v2", alias="staging-2"),
                 id="punctuation-in-names"),
    pytest.param("models:/a@1", ModelUri("a", alias="1"), id="numeric-alias"),
    pytest.param("models:/Send Wise Policy/1", ModelUri("Send Wise Policy", version="1"), id="spaces-in-name"),
]


@pytest.mark.parametrize("uri, expected", GOOD_URIS)
def test_good_uris_parse_and_print_back(uri: str, expected: ModelUri) -> None:
    parsed = ModelUri.parse(uri)
    assert parsed == expected
    assert str(parsed) == uri
    assert (parsed.alias is None) != (parsed.version is None)
    assert is_registry_uri(uri)


BAD_URIS = [
    pytest.param("runs:/abc/policy", id="other-scheme"),
    pytest.param("sendwise-policy@champion", id="no-scheme"),
    pytest.param("models:/", id="nothing-after-the-scheme"),
    pytest.param("models:/sendwise-policy", id="neither-alias-nor-version"),
    pytest.param("models:/sendwise-policy@", id="empty-alias"),
    pytest.param("models:/sendwise-policy/", id="empty-version"),
    pytest.param("models:/@champion", id="empty-name"),
    pytest.param("models:/sendwise-policy/latest", id="word-version"),
    pytest.param("models:/sendwise-policy/Production", id="stage"),
    pytest.param("models:/sendwise-policy/-1", id="negative-version"),
    pytest.param("models:/sendwise-policy/1.0", id="decimal-version"),
    pytest.param("models:/sendwise-policy/\u0663", id="non-ascii-digit"),
    pytest.param("models:/sendwise-policy@champion/3", id="alias-and-version"),
    pytest.param("models:/sendwise-policy/3@champion", id="version-and-alias"),
    pytest.param("models:/a@b@c", id="two-aliases"),
    pytest.param("models:/team/sendwise-policy/3", id="nested-name"),
    pytest.param("models:/sendwise-policy@champion\n", id="trailing-newline"),
    pytest.param("models:/sendwise-policy@champ ion", id="space-in-alias"),
    pytest.param("models:/sendwise-policy@champion!", id="punctuation-in-alias"),
    pytest.param("models:/db:sendwise-policy/3", id="colon-in-name"),
    pytest.param("models:/send\twise/3", id="control-character-in-name"),
    pytest.param("Models:/sendwise-policy@champion", id="scheme-case"),
    pytest.param(" models:/sendwise-policy@champion", id="leading-space"),
]


@pytest.mark.parametrize("uri", BAD_URIS)
def test_bad_uris_are_refused_naming_the_uri_and_the_forms(uri: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(f'model URI {uri!r} {FORMS}')}$"):
        ModelUri.parse(uri)


BAD_PARTS = [
    pytest.param({"name": "sendwise-policy"},
                 "a model URI names exactly one of an alias and a version; got alias=None, version=None",
                 id="neither"),
    pytest.param({"name": "sendwise-policy", "alias": "champion", "version": "3"},
                 "a model URI names exactly one of an alias and a version; got alias='champion', version='3'",
                 id="both"),
    pytest.param({"name": "team/policy", "version": "3"}, f"model URI 'models:/team/policy/3' {FORMS}",
                 id="slash-in-name"),
    pytest.param({"name": "policy", "alias": "a@b"}, f"model URI 'models:/policy@a@b' {FORMS}", id="at-in-alias"),
    pytest.param({"name": "policy", "version": "latest"}, f"model URI 'models:/policy/latest' {FORMS}",
                 id="word-version"),
    pytest.param({"name": "policy", "version": 3}, f"model URI 'models:/policy/3' {FORMS}", id="int-version"),
    pytest.param({"name": "", "alias": "champion"}, f"model URI 'models:/@champion' {FORMS}", id="empty-name"),
]


@pytest.mark.parametrize("parts, message", BAD_PARTS)
def test_bad_parts_are_refused(parts: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ModelUri(**parts)  # type: ignore[arg-type]


@pytest.mark.parametrize("text, expected", [
    ("models:/sendwise-policy@champion", True),
    ("models:/not well formed", True),
    ("runs:/abc/policy", False),
    ("policies/ts.npz", False),
    ("", False),
    (None, False),
])
def test_is_registry_uri_only_looks_at_the_scheme(text: str | None, expected: bool) -> None:
    assert is_registry_uri(text) is expected


def test_parsing_imports_no_mlflow() -> None:
    """The server parses its model URI on every refresh; MLflow loads only when the registry is read."""
    code = ("import sys\n"
            "from sendwise.models import ModelUri\n"
            "assert ModelUri.parse('models:/p@champion').alias == 'champion'\n"
            "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
