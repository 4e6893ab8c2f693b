"""The operator's dashboard and the API docs in a real headless Chromium, driven by Playwright, against a
real server.

The server runs on a free loopback port with the seed world's rules and a saved Thompson policy whose
posterior is the seed world's truth (with evidence that differs by channel, so the intervals differ),
no exploration, and one clearly best option for the explained customer's channels, so a dry run and
``POST /v1/decisions`` must agree. It is seeded with decisions and feedback over HTTP before the
browser looks. A full-page screenshot goes to ``test-artifacts/dashboard.png``, taken by a browser that
signs in with a header, as a script would. ``/docs`` must render with every non-loopback request refused.

Needs Chromium at ``/usr/bin/chromium`` (Debian package ``chromium``) and the ``playwright`` Python
package; without either the module is skipped and says which is missing.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import numpy as np
import pytest

from sendwise.models import ThompsonPolicy, load_world
from sendwise.models.domain.population import segment_rate_table
from sendwise.server import serve_in_background
from sendwise.server.dashboard import MIN_CONTRAST, contrast_ratio
from tests.support.api import customer, event

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN_KEY = "dashboard-admin-key-0123456789"
DECIDE_KEY = "dashboard-decide-key-0123456789"
SEGMENT = {"region": "NA", "industry": "ecommerce", "campaign_type": "cart_reminder"}
# Pseudo-observations per channel behind the posterior: many for the explained customer's channels.
EVIDENCE = {"email": 20_000, "push": 20_000, "in_app": 4_000, "app_inbox": 1_500, "sms": 20_000, "whatsapp": 400,
            "web_push": 150}
KNOWN = customer("known-1", **SEGMENT)  # in New York, on email, push and sms
EXPLAIN_KNOWN = "/dashboard?" + urlencode(KNOWN, doseq=True)  # the page's explain form takes the same fields
N_SEEDED = 61  # decisions the server is seeded with: 60 customers and the known one
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
READY_TIMEOUT_S = 60.0


def _policy(path: Path) -> Path:
    """The seed world's expected rates as a posterior, with push at 19:00 clearly best for NA cart reminders."""
    world = load_world("seed")
    catalog = world.catalog
    rates = segment_rate_table(world).mean(axis=1)
    rates[catalog.cell(**SEGMENT), 0, catalog.arm("push", 19)] = 0.22
    evidence = np.append(np.repeat([EVIDENCE[c] for c in catalog.channels], 24), 1.0)
    policy = ThompsonPolicy(catalog, world.value, world.cost, epsilon=0.0)
    policy.alpha_ = 1.0 + evidence * rates
    policy.beta_ = 1.0 + evidence * (1.0 - rates)
    return policy.save(path)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dashboard-state")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, state_dir: Path) -> Iterator[str]:
    """A ``sendwise serve`` process on loopback, seeded with decisions and feedback; stopped by its pid."""
    home = tmp_path_factory.mktemp("dashboard-server")
    _policy(home / "champion.npz")
    settings = {"state_dir": state_dir, "world": "seed", "model_uri": "champion.npz",
                "api_keys": f"{ADMIN_KEY},{DECIDE_KEY}:decide"}
    with serve_in_background(settings, cwd=home, log=home / "server.log", timeout_s=READY_TIMEOUT_S) as server:
        _seed(server.url)
        yield server.url


def _seed(base: str) -> None:
    """Decisions in three segments, then delivered, clicked, converted, failed, unsubscribed and odd events."""
    rng = np.random.default_rng(7)
    channels = list(EVIDENCE)
    segments = [SEGMENT, {"region": "EU", "industry": "gaming", "campaign_type": "onboarding"},
                {"region": "LATAM", "industry": "fintech", "campaign_type": "loyalty"}]
    picks = [sorted(rng.choice(channels, size=3, replace=False).tolist()) for _ in range(60)]
    customers = [customer(f"seed-{i}", **segments[i % 3], channels=picks[i]) for i in range(60)]
    customers.append({**KNOWN, "channels": ["email"]})
    at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    with httpx.Client(base_url=base, headers={"X-API-Key": ADMIN_KEY}, timeout=30.0) as client:
        response = client.post("/v1/decisions", json={"customers": customers})
        assert response.status_code == 200, response.text
        decisions = response.json()["decisions"]
        assert len(decisions) == N_SEEDED and decisions[-1]["channel"] == "email"
        sent = [d for d in decisions if d["channel"] != "none"]
        events = [event(d, kind, f"ev-{i}-{kind}", at) for i, d in enumerate(sent)
                  for kind in ("delivered", "opened", "clicked", "converted")[: 1 + i % 4] if i % 9]
        events += [event(sent[0], "failed", "ev-failed", at), event(sent[-1], "unsubscribed", "ev-unsubscribed", at),
                   event("00000000-0000-4000-8000-000000000000", "clicked", "ev-orphan", at)]
        for batch in (events, events[:5]):  # the second post re-sends five events: duplicates
            assert client.post("/v1/feedback", json={"events": batch}).status_code == 200


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Tab:
    """A page in a fresh browser context (no cookies), and the errors its console reported."""

    page: Any
    console_errors: list[str] = field(default_factory=list)


def _watched(page: Any) -> Tab:
    """``page`` with its console errors and uncaught exceptions collected."""
    tab = Tab(page)

    def on_console(message: Any) -> None:
        if message.type == "error":
            tab.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.console_errors.append(str(error)))
    return tab


@pytest.fixture
def tab(browser: Any, server: str) -> Iterator[Tab]:
    context = browser.new_context(base_url=server, viewport={"width": 1100, "height": 900})
    yield _watched(context.new_page())
    context.close()


@pytest.fixture
def header_tab(browser: Any, server: str) -> Iterator[Tab]:
    """A tab whose every request carries the admin key, as a script signs in (no sign-in page, no cookie)."""
    context = browser.new_context(base_url=server, viewport={"width": 1100, "height": 900},
                                  extra_http_headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    yield _watched(context.new_page())
    context.close()


def _sign_in(page: Any, key: str) -> None:
    page.goto("/dashboard/login")
    page.fill("#api-key", key)
    page.click("button[type=submit]")


def _api(server: str) -> httpx.Client:
    return httpx.Client(base_url=server, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30.0)


def test_sign_in_refuses_wrong_keys_and_gives_an_http_only_strict_cookie(tab: Tab) -> None:
    page = tab.page
    page.goto("/dashboard")
    assert page.url.endswith("/dashboard/login"), "an anonymous visit must land on the sign-in page"
    for key, message in (("not-a-key-at-all-000000", "Wrong API key."),
                         (DECIDE_KEY, "This key lacks the admin scope.")):
        _sign_in(page, key)
        sync_api.expect(page.locator("#login-error")).to_have_text(message)
        assert page.context.cookies() == []
    _sign_in(page, ADMIN_KEY)
    page.wait_for_url("**/dashboard")
    (cookie,) = page.context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    assert page.evaluate("document.cookie") == "", "the session cookie must be out of reach of scripts"
    page.click("#logout-form button")
    page.wait_for_url("**/dashboard/login")
    page.goto("/dashboard")
    assert page.url.endswith("/dashboard/login"), "after signing out the dashboard must ask for a key again"


@pytest.mark.parametrize("headers, status", [
    pytest.param({"Authorization": f"Bearer {ADMIN_KEY}"}, 200, id="bearer"),
    pytest.param({"X-API-Key": ADMIN_KEY}, 200, id="x-api-key"),
    pytest.param({"Authorization": "Bearer not-a-key-at-all-000000"}, 401, id="wrong-key"),
    pytest.param({"X-API-Key": DECIDE_KEY}, 403, id="no-admin-scope"),
])
def test_a_key_in_a_header_opens_the_dashboard_and_nothing_else_does(browser: Any, server: str,
                                                                      headers: dict[str, str], status: int) -> None:
    context = browser.new_context(base_url=server, extra_http_headers=headers)
    try:
        page = context.new_page()
        response = page.goto("/dashboard")
        assert response.status == status, f"{sorted(headers)} answered {response.status}, not {status}"
        if status == 200:
            assert response.url.endswith("/dashboard")
            sync_api.expect(page.locator("svg.heatmap")).to_be_visible()
        else:
            assert set(response.json()) == {"detail"} and context.cookies() == []
    finally:
        context.close()


def test_docs_render_with_the_network_off(tab: Tab) -> None:
    page = tab.page
    refused: list[str] = []

    def loopback_only(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", loopback_only)
    page.goto("/docs")
    sync_api.expect(page.locator(".opblock-summary-path[data-path='/v1/decisions']")).to_be_visible()
    assert refused == [], "the docs page must need nothing from outside this server"
    assert tab.console_errors == []


def test_heatmap_matches_the_posterior_json_and_the_page_is_clean(header_tab: Tab, server: str) -> None:
    page = header_tab.page
    page.goto(EXPLAIN_KNOWN)
    cells = page.eval_on_selector_all("svg.heatmap g.cell", "gs => gs.map(g => [g.dataset.channel, "
                                      "Number(g.dataset.hour), Number(g.dataset.netValue), Number(g.dataset.ciLow), "
                                      "Number(g.dataset.ciHigh), g.querySelector('title').textContent])")
    with _api(server) as client:
        response = client.get("/v1/segments/{region}/{industry}/{campaign_type}/posterior".format(**SEGMENT))
    assert response.status_code == 200, response.text
    posterior = response.json()
    assert len(cells) == 24 * len(posterior["channels"]) == 24 * len(EVIDENCE)
    expected = [[c["channel"], c["hour"], c["net_value"], c["ci_low"], c["ci_high"]] for c in posterior["cells"]]
    assert [cell[:5] for cell in cells] == expected
    assert all("credible interval" in cell[5] for cell in cells), "every cell must carry its interval on hover"
    below = page.locator("svg.heatmap g.cell.below").count()
    assert below == sum(c["net_value"] < 0 for c in posterior["cells"]) > 0
    ink, fill = page.eval_on_selector("svg.heatmap g.cell.best", "g => [getComputedStyle(g.querySelector('text'))"
                                      ".fill, g.querySelector('rect').getAttribute('fill')]")
    shown = "#" + "".join(f"{int(c):02x}" for c in re.findall(r"\d+", ink))  # the ink as drawn: rgb(r, g, b)
    assert contrast_ratio(shown, fill) >= MIN_CONTRAST, f"the best cell's text {ink} on {fill} is hard to read"
    ticks = page.locator("#posterior .legend li:not(.hint)").all_inner_texts()
    assert len(set(ticks)) == len(ticks) == 6, f"legend labels must differ: {ticks}"
    assert page.locator("#activity .tile .value").first.inner_text() == str(N_SEEDED)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert header_tab.console_errors == []


def test_explanation_matches_a_real_decision_and_logs_nothing(tab: Tab, server: str, state_dir: Path) -> None:
    page = tab.page
    _sign_in(page, ADMIN_KEY)
    page.wait_for_url("**/dashboard")
    logged = _count_decisions(state_dir)
    page.goto(EXPLAIN_KNOWN)
    shown = page.eval_on_selector("#explanation", "e => ({...e.dataset})")
    guardrails = page.eval_on_selector_all("#explanation tr.guardrail", "rows => rows.map(r => [r.dataset.rule, "
                                           "r.dataset.channel || null, r.dataset.hours])")
    assert _count_decisions(state_dir) == logged, "the explanation must not log a decision"
    with _api(server) as client:
        response = client.post("/v1/decisions", json={"customers": [KNOWN]})
    assert response.status_code == 200, response.text
    (decided,) = response.json()["decisions"]
    assert (shown["channel"], int(shown["localHour"]), shown["mode"], shown["modelVersion"]) == \
        (decided["channel"], decided["local_hour"], decided["reason"]["mode"], decided["model_version"])
    assert datetime.fromisoformat(shown["sendAt"]) == datetime.fromisoformat(decided["send_at"])
    assert float(shown["propensity"]) == pytest.approx(decided["propensity"], abs=0.02)
    assert guardrails == [[g["rule"], g["channel"], ",".join(map(str, g["hours"]))]
                          for g in decided["reason"]["guardrails"]]
    assert {g[0] for g in guardrails} >= {"unsubscribed", "quiet_hours"}


def test_strings_from_the_url_are_shown_as_text_never_run(tab: Tab) -> None:
    page = tab.page
    _sign_in(page, ADMIN_KEY)
    page.wait_for_url("**/dashboard")
    payload = "<script>window.injected = 1</script>"
    page.goto("/dashboard?" + urlencode({**SEGMENT, "industry": payload, "customer_id": payload}))
    assert page.evaluate("window.injected") is None
    assert payload in page.locator(".notice").first.inner_text()
    assert tab.console_errors == []


def _count_decisions(state_dir: Path) -> int:
    with closing(sqlite3.connect(state_dir / "state.db")) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])
