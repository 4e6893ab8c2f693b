"""Prometheus metrics of one server process: requests, latency, decisions, feedback, open decisions, model.

Each app has its own registry, so several apps in one process (tests) never share counters. With
several workers, each exposes its own numbers; aggregate them in Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServerMetrics:
    """The server's metrics on a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("sendwise_http_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("sendwise_http_request_seconds", "HTTP request latency by route template",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.decisions = Counter("sendwise_decisions", "Decisions by chosen channel", ["channel"],
                                 registry=self.registry)
        self.feedback = Counter("sendwise_feedback_events", "Feedback events by type and status", ["type", "status"],
                                registry=self.registry)
        self.closed_windows = Counter("sendwise_closed_windows", "Attribution windows counted as closed",
                                      registry=self.registry)
        self.open_decisions = Gauge("sendwise_open_decisions", "Decisions whose attribution window is open",
                                    registry=self.registry)
        self.durable_units = Gauge("sendwise_durable_units",
                                   "Durable units of work (feedback requests) committed since start",
                                   registry=self.registry)
        self.durable_commits = Gauge("sendwise_durable_commits",
                                     "Durable commits that held them (fewer: requests shared commits)",
                                     registry=self.registry)
        self.model = Gauge("sendwise_model_info", "The served model version (value 1)", ["version"],
                           registry=self.registry)

    def watch_open_decisions(self, count: Callable[[], int]) -> None:
        """Read the open-decision count at scrape time; NaN when the store cannot answer."""

        def read() -> float:
            try:
                return float(count())
            except Exception:  # noqa: BLE001 - a scrape must not fail because the store is busy
                return float("nan")

        self.open_decisions.set_function(read)

    def watch_group_commit(self, units: Callable[[], int], commits: Callable[[], int]) -> None:
        """Read, at scrape time, how many durable units were committed and in how many shared commits.

        A restarted lifespan (same app, new store) re-points the gauges at the new store's counters.
        """
        self.durable_units.set_function(lambda: float(units()))
        self.durable_commits.set_function(lambda: float(commits()))

    def model_loaded(self, version: str) -> None:
        self.model.clear()
        self.model.labels(version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by its route template (``unmatched`` for unknown paths)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
