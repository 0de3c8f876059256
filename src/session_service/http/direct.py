"""A route class for the hottest endpoints: the endpoint is called directly.

FastAPI's default handler resolves dependencies, reads the body and validates and
serialises the response on every call, and its adapter opens two exit stacks for
dependencies with `yield`. For validate (in front of every user action) that machinery
measured about 105 µs of CPU per request here, a third of its cost. An endpoint on a
`DirectRoute` takes only the `Request`, parses what it needs itself and returns a
finished `Response`, served through Starlette's plain adapter. The route still appears in
OpenAPI with its declared response model and `openapi_extra` parameters, and errors still
reach the exception handlers.

Register it on the app's own router (`add_direct_route`): a route inside an included
router is re-wrapped in FastAPI's adapter per inclusion.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, get_type_hints

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import request_response


class DirectRoute(APIRoute):
    """An APIRoute whose handler is the endpoint itself: `(Request) -> Response`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        _check_signature(endpoint)
        super().__init__(path, endpoint, **kwargs)
        self.app = request_response(endpoint)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


def add_direct_route(
    app: FastAPI, path: str, endpoint: Callable[[Request], Awaitable[Response]], **kwargs: Any
) -> None:
    """Mount `endpoint` as a DirectRoute on the app's own router."""
    app.router.add_api_route(path, endpoint, route_class_override=DirectRoute, **kwargs)


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
