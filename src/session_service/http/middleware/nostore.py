"""Session answers are never kept by a cache: `Cache-Control: no-store`, `Vary: X-Session-ID`.

Every answer under the session routes carries a token, a session's details or what belongs
to them; a shared cache that kept one could hand a visitor's name and email to the next
one. Pure ASGI: the headers are set as the response starts, whatever produced it (route,
error handler, direct route), replacing any weaker `Cache-Control`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NO_STORE = (b"cache-control", b"no-store")
_VARY = b"X-Session-ID"


class NoStoreMiddleware:
    """Mark every answer under `prefixes` uncacheable and varying by the session header."""

    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return

        async def send_uncacheable(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _uncacheable(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_uncacheable)


def _uncacheable(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    kept: list[tuple[bytes, bytes]] = []
    vary: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"vary":
            vary.append(value)
        elif lowered != b"cache-control":
            kept.append((name, value))
    vary.append(_VARY)
    return [*kept, _NO_STORE, (b"vary", b", ".join(vary))]
