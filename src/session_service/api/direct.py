"""A route class for the hottest endpoints: FastAPI calls the endpoint directly.

FastAPI's default handler resolves dependencies, reads the body and validates and
serialises the response on every call. For validate (in front of every user action) that
machinery measured about 85 µs of CPU per request here, a quarter of its cost. An
endpoint on a `DirectRoute` takes only the `Request`, parses what it needs itself and
returns a finished `Response`; the route still appears in OpenAPI with its declared
response model and `openapi_extra` parameters, and errors still reach the handlers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, get_type_hints

from fastapi import Request, Response
from fastapi.routing import APIRoute


class DirectRoute(APIRoute):
    """An APIRoute whose handler is the endpoint itself: `(Request) -> Response`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        _check_signature(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


def _check_signature(endpoint: Callable[..., Any]) -> None:
    """Refuse, at start-up, an endpoint that expects FastAPI to inject anything."""
    hints = get_type_hints(endpoint)
    parameters = list(inspect.signature(endpoint).parameters)
    if (
        not inspect.iscoroutinefunction(endpoint)
        or len(parameters) != 1
        or hints.get(parameters[0]) is not Request
        or hints.get("return") is not Response
    ):
        raise TypeError(
            f"{endpoint.__qualname__}: a DirectRoute endpoint is `async def (request: Request)"
            " -> Response`"
        )
