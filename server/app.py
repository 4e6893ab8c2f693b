"""The FastAPI app: ``create_app(settings)`` wires the store, model, auth and routes; the lifespan runs them.

Start-up opens the store, loads the world's rules, the API keys and the pepper, and loads the model;
a model that fails to load leaves the app up but not ready (``/v1/ready`` answers 503) while a
background task retries. Three background tasks run while the app lives: one re-checks the model
source every ``model_refresh_seconds``, one counts closed attribution windows every
``close_windows_seconds``, and one runs the store's housekeeping (``Store.maintain``) every second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from importlib.metadata import version

from anyio import to_thread
from fastapi import FastAPI

from .auth import ApiKeys
from .deps import get_now, utc_now
from .docs import install_docs
from .errors import install_error_handlers
from .guardrails import ServingRules
from .limits import AdmissionMiddleware, RequestLimitsMiddleware
from .metrics import RequestMetricsMiddleware, ServerMetrics
from .model_loader import ModelLoader, serving_world
from .privacy import Pseudonymizer
from .rate_limits import RateLimiter
from .routes import customers, dashboard, decisions, feedback, health, metrics
from .service import SendwiseService
from .settings import Settings
from .store import SQLiteStore, Store

log = logging.getLogger("sendwise.server")
MAINTAIN_SECONDS = 1.0  # the store's housekeeping (SQLite: a WAL checkpoint) runs this often


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the service, load the model, run the background tasks, close the store on the way out."""
    settings: Settings = app.state.settings
    world = serving_world(settings)
    store = open_store(settings)
    pseudonymize = Pseudonymizer.from_settings(settings)
    service = SendwiseService(settings, store, ServingRules.from_world(settings, world), ModelLoader(settings, world),
                              pseudonymize, app.state.metrics)
    app.state.api_keys = ApiKeys.from_settings(settings)
    app.state.rate_limiter = RateLimiter(settings, store, pseudonymize)
    app.state.service = service
    app.state.metrics.watch_open_decisions(store.open_decisions)
    if isinstance(store, SQLiteStore):  # the store whose durable units share commits
        group = store.group_commit
        app.state.metrics.watch_group_commit(lambda: group.units, lambda: group.commits)
    await to_thread.run_sync(service.refresh_model)
    clock = app.dependency_overrides.get(get_now, utc_now)  # the routes' clock, which tests may override
    if service.rules.budgets:  # budget pacing needs the loop's clock before the first batch is priced
        await to_thread.run_sync(lambda: service.close_windows(clock()))
    tasks = [
        asyncio.create_task(_every(settings.model_refresh_seconds, service.refresh_model)),
        asyncio.create_task(_every(settings.close_windows_seconds, lambda: service.close_windows(clock()))),
        asyncio.create_task(_every(MAINTAIN_SECONDS, store.maintain)),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        store.close()


def open_store(settings: Settings) -> Store:
    """The store ``SENDWISE_STATE_URL`` names: Redis for ``redis://`` and ``rediss://``, else the SQLite file."""
    if settings.redis_url is not None:
        from .redis_store import RedisStore  # the redis client is an optional extra

        return RedisStore(settings.redis_url, durability=settings.redis_durability,
                          snapshot_seconds=settings.snapshot_seconds, spool_dir=settings.state_dir / "redis-spool")
    return SQLiteStore(settings.state_path)


async def _every(seconds: float, work: Callable[[], object]) -> None:
    """Run ``work`` in a worker thread every ``seconds``; a failure is logged and the loop goes on."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await to_thread.run_sync(work)
        except Exception:  # noqa: BLE001 - a background task must outlive a bad moment of the store
            log.exception("background task %s failed", getattr(work, "__qualname__", work))


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: from ``SENDWISE_*`` variables); nothing is opened until the lifespan."""
    settings = settings or Settings()
    app = FastAPI(
        title="sendwise",
        version=version("sendwise"),
        summary="Channel × local send hour (or no message) per customer, learned online.",
        lifespan=lifespan,
        docs_url=None,  # ``install_docs`` serves /docs with Swagger UI's assets from an installed package, not a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if settings.expose_docs else None,
    )
    app.state.settings = settings
    app.state.metrics = ServerMetrics()
    install_error_handlers(app)
    app.add_middleware(RequestLimitsMiddleware, router=app.router, max_body_bytes=settings.max_body_bytes,
                       body_timeout_seconds=settings.body_timeout_seconds)
    app.add_middleware(AdmissionMiddleware, max_concurrent=settings.max_concurrent_requests,
                       timeout_seconds=settings.request_timeout_seconds)
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics)
    for module in (decisions, feedback, customers, health, metrics, dashboard):
        app.include_router(module.router)
    if settings.expose_docs:
        install_docs(app)
    return app
