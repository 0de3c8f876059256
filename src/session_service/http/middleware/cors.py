"""CORS for the configured origins only, with refusals answered as problem+json."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from session_service.http.problem_json import PROBLEM_MEDIA_TYPE, problem_body

# What the browser module sends and reads (SPEC §9, §10).
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # PATCH: rename a conversation
# Last-Event-ID: a live stream resumed after a reconnect; Idempotency-Key: a retried call.
ALLOWED_HEADERS = (
    "Content-Type",
    "X-Session-ID",
    "X-Request-ID",
    "Last-Event-ID",
    "Idempotency-Key",
)
EXPOSED_HEADERS = (
    "X-Session-ID",
    "X-Request-ID",
    "Location",
    "Idempotent-Replayed",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware; a refused preflight answers problem+json, not text.

    No credentials (the session id travels in a header, never in a cookie), so no
    cookie is ever sent cross-site.
    """

    def __init__(self, app: ASGIApp, *, origins: list[str], max_age: int) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            allow_credentials=False,
            max_age=max_age,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code == 400:
                    response = _refusal(scope, response)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _refusal(scope: Scope, plain: Response) -> Response:
    detail = bytes(plain.body).decode() + " (allowed: see CORS_ORIGINS)"
    body = problem_body(
        status=400,
        code="cors_rejected",
        title="Cross-origin request refused",
        detail=detail,
        request_id=scope.get("state", {}).get("request_id"),
    )
    headers = {
        name: value for name, value in plain.headers.items() if name.lower().startswith("vary")
    }
    return Response(body, status_code=400, media_type=PROBLEM_MEDIA_TYPE, headers=headers)
