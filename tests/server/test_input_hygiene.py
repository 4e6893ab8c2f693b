"""Inputs the server would otherwise store or echo wrongly are refused with a 422 that says why.

- a consent change for a channel the served catalog does not know;
- (not refused, but not dropped either) an unsubscribe without a channel for a decision that sent
  nothing: it opts out of every channel;
- customer ids with invisible characters: bidirectional overrides, zero-width characters, line and
  paragraph separators (Unicode Cf, Zl, Zp), and control characters (Cc).
"""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from sendwise.server.schemas import _plain_text
from tests.support.api import customer, decide, event
from tests.support.app import Clock
from tests.support.catalogs import CATALOG

KNOWN_CHANNELS = ", ".join(CATALOG.channels)


@pytest.mark.parametrize("event_type", ["unsubscribed", "consent"])
def test_a_consent_change_for_an_unknown_channel_is_422_naming_the_known_ones(client: TestClient, clock: Clock,
                                                                            event_type: str) -> None:
    (decision,) = decide(client, customer())
    response = client.post("/v1/feedback", json={"events": [
        event(decision, "opened", "o-1", clock.now),
        event(decision, event_type, "u-1", clock.now, channel="carrier_pigeon")]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [{"loc": ["body", "events", 1, "channel"], "type": "value_error",
                                          "msg": f"unknown channel 'carrier_pigeon'; known: {KNOWN_CHANNELS}"}]
    # Nothing of the request was applied: the same events are new when sent again without the bad one.
    response = client.post("/v1/feedback", json={"events": [event(decision, "opened", "o-1", clock.now)]})
    assert [r["status"] for r in response.json()["results"]] == ["applied"]


def test_an_unsubscribe_without_channel_for_a_no_message_decision_opts_out_of_every_channel(
        client: TestClient, clock: Clock) -> None:
    (decision,) = decide(client, customer(channels=[]))
    assert decision["channel"] == "none"
    response = client.post("/v1/feedback", json={"events": [event(decision, "unsubscribed", "u-1", clock.now)]})
    assert [r["status"] for r in response.json()["results"]] == ["late"]  # it teaches nothing, but it counts
    (after,) = decide(client, customer())
    assert after["channel"] == "none"
    assert [g for g in after["reason"]["guardrails"] if g["rule"] == "unsubscribed"] == [
        {"rule": "unsubscribed", "channel": channel, "hours": list(range(24))} for channel in ("email", "push", "sms")]
    assert decide(client, customer("c-2"))[0]["reason"]["guardrails"] == []  # only that customer


FORMAT = "must not contain invisible format characters (Unicode Cf, such as bidirectional overrides and " \
         "zero-width characters)"
SEPARATOR = "must not contain line or paragraph separators (Unicode Zl, Zp)"
CONTROL = "must not contain control characters"
INVISIBLE_IDS = {"rtl-override": ("abc\u202edcba", FORMAT), "bidi-isolate": ("a\u2066b\u2069", FORMAT),
                 "zero-width-space": ("ab\u200b", FORMAT), "byte-order-mark": ("\ufeffab", FORMAT),
                 "line-separator": ("a\u2028b", SEPARATOR), "paragraph-separator": ("a\u2029b", SEPARATOR),
                 "next-line-control": ("a\x85b", CONTROL), "escape": ("a\x1bb", CONTROL)}


@pytest.mark.parametrize("customer_id, message", INVISIBLE_IDS.values(), ids=INVISIBLE_IDS)
def test_customer_ids_with_invisible_characters_are_422(client: TestClient, customer_id: str, message: str) -> None:
    body = json.dumps({"customers": [customer(customer_id)]})  # ASCII-escaped: the characters arrive as sent
    response = client.post("/v1/decisions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [{"loc": ["body", "customers", 0, "customer_id"], "msg": message,
                                          "type": "value_error"}]
    assert client.delete("/v1/customers/" + quote(customer_id, safe="")).status_code == 422


def test_visible_text_in_any_script_is_still_a_customer_id(client: TestClient) -> None:
    for customer_id in ("مرحبا-😀", "客户-42", "Zoë O'Brien", "a b"):
        (decision,) = decide(client, customer(customer_id))
        assert decision["customer_id"] == customer_id


@given(st.text(max_size=40))
def test_text_is_refused_exactly_when_a_character_is_invisible(text: str) -> None:
    invisible = any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)
    try:
        _plain_text(text)
    except PydanticCustomError:
        assert invisible
    else:
        assert not invisible
