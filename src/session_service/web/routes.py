"""`/` (the demo page) and `/static/...` (the browser module), with a strict CSP.

The page has no inline script or style, so the policy allows scripts, styles and calls
from this origin only (plus the S3 endpoint the browser uploads to directly). The page
is read once at start-up; it is a few kilobytes.

The browser module and its declarations live in `client/`, the folder `npm pack` turns
into the package a frontend installs; the service serves those two files under
`/static/` too, with media types of their own (Python's table calls `.ts` a Qt
translation file).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.staticfiles import StaticFiles

from session_service.core.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
CLIENT_DIR = Path(__file__).resolve().parent / "client"
STATIC_PATH = "/static"
# The package files a page loads as they are, by name, and how each is served.
CLIENT_FILES = {
    "session-client.js": "text/javascript; charset=utf-8",
    "session-client.d.ts": "application/typescript; charset=utf-8",
}


def content_security_policy(settings: Settings) -> str:
    """The demo page's policy: this origin only, and the S3 endpoint for uploads."""
    connect = ["'self'"]
    if settings.storage.backend == "s3":
        if settings.storage.s3.endpoint_url:
            parts = urlsplit(settings.storage.s3.endpoint_url)
            connect.append(f"{parts.scheme}://{parts.netloc}")
        else:
            connect.append("https://*.amazonaws.com")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _client_file(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    """A route serving one file of the package, read once (before the static mount)."""
    content = (CLIENT_DIR / name).read_bytes()
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

    async def client_file(_request: Request) -> Response:
        return Response(content, media_type=media_type, headers=headers)

    return client_file


def include_web(app: FastAPI, settings: Settings) -> APIRouter:
    """Mount the static files and return the router of `/` (included by the caller)."""
    for name, media_type in CLIENT_FILES.items():
        app.add_route(
            f"{STATIC_PATH}/{name}", _client_file(name, media_type), include_in_schema=False
        )
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
    page = (STATIC_DIR / "index.html").read_bytes()
    headers = {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    router = APIRouter(tags=["demo"])

    async def demo_page() -> Response:
        """The demo page: the whole browser flow, using only the module."""
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    # A page for people, not part of the API a client is generated from.
    router.add_api_route(
        "/", demo_page, methods=["GET"], response_class=Response, include_in_schema=False
    )
    return router
