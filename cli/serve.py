"""``sendwise serve``: run the decision server with uvicorn (settings from ``SENDWISE_*`` variables)."""

from __future__ import annotations

import argparse
import os

from .where import add_tracking_uri, announce


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the decision server: HTTP API under /v1, OpenAPI docs at /docs",
        description="Run the decision server. Configure it with SENDWISE_* environment variables "
                    "(SENDWISE_MODEL_URI, SENDWISE_STATE_URL, SENDWISE_API_KEYS, ...).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the state DB (default 1)")
    parser.add_argument("--limit-concurrency", type=int, default=None,
                        help="answer 503 beyond this many concurrent connections (default: no limit)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--access-log", action="store_true",
                        help="log one line per request, customer ids redacted (default off; /metrics counts requests)")
    add_tracking_uri(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from sendwise.models import is_registry_uri, tracking_uri
    from sendwise.server.log_privacy import serve_log_config
    from sendwise.server.settings import Settings

    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1; got {args.workers}")
    if args.tracking_uri:  # the workers uvicorn starts read it where every MLflow client does
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    settings = Settings()
    announce(state=settings.redis_url or settings.state_path,
             tracking=tracking_uri() if is_registry_uri(settings.model_uri) else None)
    uvicorn.run("sendwise.server.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                limit_concurrency=args.limit_concurrency, log_level=args.log_level,
                log_config=serve_log_config(args.log_level), access_log=args.access_log,
                timeout_keep_alive=5, server_header=False)
    return 0
