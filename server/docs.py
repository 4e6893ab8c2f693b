"""``/docs``: Swagger UI served from this server alone, so the API's docs work without internet.

FastAPI's own page loads Swagger UI's script and stylesheet from a CDN; here they come from the
``fastapi-offline`` package (a Swagger UI 5 build, which renders the OpenAPI 3.1 that FastAPI writes),
mounted under ``/docs/assets``. The page carries a Content-Security-Policy like the dashboard's: scripts
only from this origin plus the one inline start-up script (allowed by its hash), nothing from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
SWAGGER_ASSETS = Path(str(files("fastapi_offline") / "static"))
# Swagger UI's parameters beside FastAPI's defaults: no call to the public spec validator.
SWAGGER_PARAMETERS = {"validatorUrl": None}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_page(openapi_url: str, title: str) -> HTMLResponse:
    """The Swagger UI page for ``openapi_url`` with local assets and a CSP that admits only them.

    Swagger UI sets inline styles and draws its icons as ``data:`` images, so those are allowed; its
    "Try it out" calls go to this origin only.
    """
    body = bytes(get_swagger_ui_html(
        openapi_url=openapi_url, title=f"{title} - Swagger UI", swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css", swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url=None, swagger_ui_parameters=SWAGGER_PARAMETERS).body)
    inline = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
                      for script in _INLINE_SCRIPT.findall(body.decode()))
    return HTMLResponse(body, headers={
        "Content-Security-Policy": f"default-src 'none'; script-src 'self' {inline}; style-src 'self' 'unsafe-inline'; "
                                   "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                                   "form-action 'self'; frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    })


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets for ``app`` (whose ``openapi_url`` must be set)."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the docs need the app's OpenAPI schema: create the app with an openapi_url")
    app.mount(ASSETS_PATH, StaticFiles(directory=SWAGGER_ASSETS), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return docs_page(openapi_url, app.title)
