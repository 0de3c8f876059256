"""`/docs` (Swagger UI) and `/redoc` (ReDoc) from files the service serves itself.

FastAPI's own pages load both from a CDN: blank pages offline, and a third party's script
running on the origin whose `localStorage` keeps the visitor's token. Here the files come
from the `fastapi-offline` package (only its `static/` folder: the app is built as before)
plus our Swagger UI initialiser, and each page has a strict Content-Security-Policy like
the demo page's. The files are read once per process and served under names carrying a
hash of their content, so they are cached for a year and a new version gets a new URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from functools import cache
from html import escape
from importlib.resources import files
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from fastapi import APIRouter, Response

from session_service.core.settings import Settings

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets"
OPENAPI_PATH = "/openapi.json"
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
# The pages' placeholders: (package, file) of the vendored Swagger UI and ReDoc, and ours.
_ASSETS = {
    "swagger_js": ("fastapi_offline", "static/swagger-ui-bundle.js"),
    "swagger_css": ("fastapi_offline", "static/swagger-ui.css"),
    "swagger_init": ("session_service.web", "docs_static/swagger-init.js"),
    "redoc_js": ("fastapi_offline", "static/redoc.standalone.js"),
    "favicon": ("fastapi_offline", "static/favicon.png"),
}
# ReDoc's sidebar shows Redocly's logo, an image from its CDN (no option turns it off): the
# URL is replaced by an empty `data:` image, which fails to decode and so leaves the credit
# as text. tests/web/test_docs.py fails if a new version fetches anything from elsewhere.
_REWRITES = {"redoc_js": (b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"data:,")}

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - Swagger UI</title>
  <link rel="icon" type="image/png" href="{favicon}">
  <link rel="stylesheet" href="{swagger_css}">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi}"></div>
  <script src="{swagger_js}"></script>
  <script src="{swagger_init}"></script>
</body>
</html>
"""
# ReDoc starts itself on the <redoc> element, reading its spec-url attribute.
_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - ReDoc</title>
  <link rel="icon" type="image/png" href="{favicon}">
</head>
<body>
  <redoc spec-url="{openapi}"></redoc>
  <script src="{redoc_js}"></script>
</body>
</html>
"""


@cache
def _assets() -> dict[str, tuple[str, bytes]]:
    """Each asset's URL (`<stem>.<hash of the content><suffix>`) and content, by placeholder."""
    served = {}
    for key, (package, path) in _ASSETS.items():
        content = files(package).joinpath(*path.split("/")).read_bytes()
        if key in _REWRITES:
            content = content.replace(*_REWRITES[key])
        stem, suffix = PurePosixPath(path).stem, PurePosixPath(path).suffix
        digest = hashlib.sha256(content).hexdigest()[:16]
        served[key] = (f"{ASSETS_PATH}/{stem}.{digest}{suffix}", content)
    return served


def content_security_policy(settings: Settings, *, redoc: bool) -> str:
    """This origin only (and `PUBLIC_BASE_URL`, where "Try it out" sends its calls).

    ReDoc needs two relaxations, on its page alone: its styles are `<style>` elements
    injected at run time (styled-components, and CSS bundled with style-loader as the
    script loads, before any nonce could be given), hence `style-src 'unsafe-inline'`;
    its search index runs in a Web Worker made from a `blob:` URL, hence `worker-src blob:`.
    """
    connect = ["'self'"]
    if settings.storage.public_base_url:
        parts = urlsplit(settings.storage.public_base_url)
        connect.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'" if redoc else "style-src 'self'",
            *(["worker-src blob:"] if redoc else []),
            "img-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _page(template: str, title: str, policy: str) -> Callable[[], Awaitable[Response]]:
    urls = {key: escape(url) for key, (url, _) in _assets().items()}
    page = template.format_map({**urls, "title": escape(title), "openapi": OPENAPI_PATH})
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }

    async def docs_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    return docs_page


def _asset(url: str, content: bytes) -> Callable[[], Awaitable[Response]]:
    media_type = _MEDIA_TYPES[PurePosixPath(url).suffix]
    # The URL names the content: a new version is a new URL.
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
    }

    async def docs_asset() -> Response:
        return Response(content, media_type=media_type, headers=headers)

    return docs_asset


def docs_router(settings: Settings, *, title: str) -> APIRouter:
    """The two pages and their files, none of them in the OpenAPI document."""
    router = APIRouter()
    pages = {
        DOCS_PATH: _page(_SWAGGER_PAGE, title, content_security_policy(settings, redoc=False)),
        REDOC_PATH: _page(_REDOC_PAGE, title, content_security_policy(settings, redoc=True)),
    }
    routes = pages | {url: _asset(url, content) for url, content in _assets().values()}
    for path, endpoint in routes.items():
        router.add_api_route(
            path, endpoint, methods=["GET"], response_class=Response, include_in_schema=False
        )
    return router
