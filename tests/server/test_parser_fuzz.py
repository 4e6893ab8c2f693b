"""The headers the server parses itself never give a 5xx, whatever a client sends in them.

Hypothesis fuzzes the session cookie, the API-key headers (``Authorization``, ``X-API-Key``),
``Content-Length`` and ``Content-Type``. Server errors come back as responses here, not as exceptions,
so the assertion sees exactly what a client would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sendwise.server import Settings
from sendwise.server.dashboard import SESSION_COOKIE
from tests.support.api import customer
from tests.support.app import AUTH, Clock, serve

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HUGE_NUMBER = "9" * 4301  # one digit past Python's default int-conversion limit
DECISION_BODY = {"customers": [customer()]}

# What may travel in a header value (sent as Latin-1 bytes): visible characters and spaces; digits in long runs.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                      max_size=60)
digits = st.one_of(st.integers(min_value=0).map(str), st.integers(1, 6000).map(lambda n: "9" * n))
cookie_values = st.one_of(header_text, st.tuples(header_text, digits, header_text).map(".".join))


@pytest.fixture
def fuzzed(make_settings: Callable[..., Settings], clock: Clock) -> Iterator[TestClient]:
    """A client whose server errors are returned as responses, carrying no key unless a test sends one."""
    with serve(make_settings(), clock, raise_server_exceptions=False) as client:
        client.headers.pop("Authorization")
        yield client


@FUZZ
@given(value=cookie_values)
@example(value=f"x.{HUGE_NUMBER}.y")
@example(value=f"x.{'²' * 3}.y")  # digits that are not ASCII
def test_any_session_cookie_is_a_redirect_to_sign_in(fuzzed: TestClient, value: str) -> None:
    cookie = f"{SESSION_COOKIE}={value}".encode("latin-1")
    response = fuzzed.get("/dashboard", headers={"Cookie": cookie}, follow_redirects=False)
    assert response.status_code == 303, response.text


@FUZZ
@given(name=st.sampled_from(["Authorization", "X-API-Key"]),
       value=st.one_of(header_text, header_text.map("Bearer {}".format), digits.map("Bearer {}".format)))
@example(name="Authorization", value=f"Bearer {HUGE_NUMBER}")
def test_any_api_key_header_is_a_clean_401(fuzzed: TestClient, name: str, value: str) -> None:
    headers = {name: value.encode("latin-1")}
    response = fuzzed.post("/v1/decisions", json=DECISION_BODY, headers=headers)
    assert response.status_code == 401, response.text
    page = fuzzed.get("/dashboard", headers=headers, follow_redirects=False)
    assert page.status_code in (303, 401), page.text  # a header without credentials: to the sign-in page


@FUZZ
@given(content_type=st.one_of(st.just("application/json"), header_text), length=st.one_of(digits, header_text))
@example(content_type="application/json", length=HUGE_NUMBER)
def test_any_content_type_and_length_is_answered_below_500(fuzzed: TestClient, content_type: str,
                                                           length: str) -> None:
    response = fuzzed.post("/v1/decisions", content=b'{"customers": []}',
                           headers={**AUTH, "Content-Type": content_type.encode("latin-1"),
                                    "Content-Length": length.encode("latin-1")})
    assert response.status_code < 500, response.text
