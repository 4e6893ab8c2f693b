"""API keys (header only, one generic 401, scopes, generated key) and erasing a customer."""

from __future__ import annotations

import hashlib
import logging
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sendwise.server import Settings
from sendwise.server.auth import ApiKeys
from tests.support.api import customer, decide, event, feedback
from tests.support.app import API_KEY, DECIDE_KEY, Clock, serve
from tests.support.stores import on_every_store

BODY = {"customers": [customer()]}


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-key"),
    pytest.param({"Authorization": "Bearer wrong-key-0123456789"}, id="wrong-bearer"),
    pytest.param({"Authorization": f"Basic {API_KEY}"}, id="wrong-scheme"),
    pytest.param({"X-API-Key": "wrong-key-0123456789"}, id="wrong-header-key"),
])
def test_every_auth_failure_is_the_same_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/decisions", json=BODY, headers={"Authorization": "", **headers})
    assert response.status_code == 401
    assert response.json() == {"detail": "missing or invalid API key"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_key_in_the_url_is_not_accepted(client: TestClient) -> None:
    for param in ("api_key", "key", "token", "access_token"):
        response = client.post(f"/v1/decisions?{param}={API_KEY}", json=BODY, headers={"Authorization": ""})
        assert response.status_code == 401


def test_x_api_key_header_works_and_scopes_are_enforced(client: TestClient) -> None:
    decide_only = {"Authorization": "", "X-API-Key": DECIDE_KEY}
    assert client.post("/v1/decisions", json=BODY, headers=decide_only).status_code == 200
    response = client.delete("/v1/customers/c-1", headers=decide_only)
    assert response.status_code == 403
    assert response.json() == {"detail": "this API key lacks the 'admin' scope"}
    events = {"events": [{"event_id": "e", "decision_id": "00000000-0000-4000-8000-000000000000",
                          "type": "opened", "timestamp": "2025-03-04T12:00:00Z"}]}
    assert client.post("/v1/feedback", json=events, headers=decide_only).status_code == 403


def test_open_routes_need_no_key(client: TestClient) -> None:
    for path in ("/v1/health", "/v1/ready", "/metrics"):
        assert client.get(path, headers={"Authorization": ""}).status_code == 200


def test_without_configured_keys_one_is_generated_logged_once_and_stored_as_a_digest(
        make_settings: Callable[..., Settings], clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(api_keys=None)
    with caplog.at_level(logging.WARNING, logger="sendwise.server"), serve(settings, clock):
        pass
    (line,) = [r.getMessage() for r in caplog.records if "generated an API key" in r.getMessage()]
    key = line.rsplit(" ", 1)[1]
    key_file = Path(settings.state_dir) / "api_keys"
    assert key not in key_file.read_text() and hashlib.sha256(key.encode()).hexdigest() in key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sendwise.server"), serve(settings, clock) as client:
        assert client.post("/v1/decisions", json=BODY, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert not [r for r in caplog.records if "generated an API key" in r.getMessage()]


@pytest.mark.parametrize("spec, message", [
    ("short", "SENDWISE_API_KEYS entry 0 is shorter than 16 characters"),
    (f"{API_KEY}:decide+root", "SENDWISE_API_KEYS entry 0 names unknown scope 'root'; known: decide, feedback, admin"),
    (" , ", "SENDWISE_API_KEYS names no key; unset it to have one generated"),
])
def test_bad_key_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ApiKeys.parse(spec)


@on_every_store
def test_erasing_a_customer_removes_decisions_events_and_channel_state(client: TestClient, clock: Clock) -> None:
    decisions = decide(client, customer("c-erase", channels=["email"]), customer("c-keep", channels=["email"]))
    clock.advance(days=2)
    feedback(client, event(decisions[0], "unsubscribed", "u-1", clock.now, channel="email"))
    response = client.delete("/v1/customers/c-erase")
    assert response.status_code == 200
    assert response.json() == {"customer_id": "c-erase", "decisions_deleted": 1, "events_deleted": 1,
                               "channel_states_deleted": 1}
    assert client.delete("/v1/customers/c-erase").json()["decisions_deleted"] == 0
    # The erased decision is gone: its feedback is now an orphan; the other customer is untouched.
    assert feedback(client, event(decisions[0], "clicked", "c-1", clock.now)) == ["unknown_decision"]
    assert feedback(client, event(decisions[1], "opened", "o-1", clock.now)) in (["applied"], ["late"])
    assert client.delete("/v1/customers/" + "x" * 129).status_code == 422


def test_state_files_are_private(client: TestClient) -> None:
    settings = client.app.state.settings
    for path in (settings.state_path, Path(settings.state_dir) / "pepper"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@on_every_store
def test_a_customer_whose_id_holds_a_slash_can_be_erased(client: TestClient) -> None:
    """Pseudonyms are free text: an id with "/" (sent as %2F) is decided for, so it must be erasable too."""
    decide(client, customer("tenant/42", channels=["email"]))
    response = client.delete("/v1/customers/tenant%2F42")
    assert response.status_code == 200, response.text
    assert (response.json()["customer_id"], response.json()["decisions_deleted"]) == ("tenant/42", 1)
