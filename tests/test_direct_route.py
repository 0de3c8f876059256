"""DirectRoute: refuses endpoints that expect FastAPI to inject something, and really does
serve its endpoint through Starlette's plain adapter.

`DirectRoute` overrides FastAPI internals (`APIRoute.app`, `get_route_handler`). If a FastAPI
release changes how routes are built or handled, the override may silently stop applying (the
hot routes would then go through FastAPI's full request handler again) or stop working. These
tests fail loudly in either case, and pin the FastAPI minor they were last checked against.
"""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path
from typing import Any

import fastapi
import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from packaging.requirements import Requirement
from packaging.version import Version
from starlette.types import Receive, Scope, Send

from session_service.http.direct import DirectRoute, add_direct_route

ROOT = Path(__file__).resolve().parents[1]

# The FastAPI minor these tests last passed on. pyproject.toml caps FastAPI below the next one.
# To upgrade: raise the cap, `make lock LOCK_FLAGS='--upgrade-package fastapi'`, read FastAPI's
# changes to fastapi/routing.py (APIRoute.__init__, handle, get_route_handler,
# request_response), run this file, then change this number.
TESTED_FASTAPI = (0, 165)


async def good(request: Request) -> Response:
    return Response()


async def takes_a_header(request: Request, x_session_id: str | None = None) -> Response:
    return Response()


async def returns_a_dict(request: Request) -> dict[str, str]:
    return {}


def not_async(request: Request) -> Response:
    return Response()


def test_accepts_request_to_response() -> None:
    assert DirectRoute("/x", good, methods=["POST"]).endpoint is good


@pytest.mark.parametrize("endpoint", [takes_a_header, returns_a_dict, not_async])
def test_refuses_anything_else(endpoint: object) -> None:
    with pytest.raises(TypeError, match="DirectRoute"):
        DirectRoute("/x", endpoint, methods=["POST"])  # type: ignore[arg-type]


def test_fastapi_is_the_minor_the_override_was_checked_against() -> None:
    installed = Version(fastapi.__version__)
    assert (installed.major, installed.minor) == TESTED_FASTAPI, (
        f"FastAPI {installed} is installed but DirectRoute was checked against "
        f"{TESTED_FASTAPI[0]}.{TESTED_FASTAPI[1]}.x: see TESTED_FASTAPI in this file"
    )
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [Requirement(d) for d in dependencies if Requirement(d).name == "fastapi"]
    major, minor = TESTED_FASTAPI
    assert pin.specifier.contains(f"{major}.{minor}.99")
    assert not pin.specifier.contains(f"{major}.{minor + 1}.0"), "pyproject must cap FastAPI"


def assert_plain_starlette_adapter(route: DirectRoute) -> None:
    """`route.app` is Starlette's `request_response` wrapped directly around the endpoint."""
    app: Any = route.app
    assert (app.__module__, app.__qualname__) == (
        "starlette.routing",
        "request_response.<locals>.app",
    ), f"{route.path} is served by {app.__module__}.{app.__qualname__}, not Starlette's adapter"
    assert inspect.getclosurevars(app).nonlocals["f"] is route.endpoint
    assert route.get_route_handler() is route.endpoint


class SentResponse(Response):
    """A response that remembers being sent."""

    sent = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.sent = True
        await super().__call__(scope, receive, send)


async def test_serves_the_endpoint_directly_without_fastapis_machinery() -> None:
    seen: list[Request] = []
    dependency_calls: list[str] = []
    answer = SentResponse(
        b"\x00 not json", status_code=299, media_type="application/x-direct", headers={"X-A": "1"}
    )

    async def endpoint(request: Request) -> Response:
        seen.append(request)
        return answer

    def must_not_run() -> None:
        dependency_calls.append("ran")
        raise AssertionError("FastAPI resolved a dependency of a DirectRoute")

    app = FastAPI()
    add_direct_route(
        app, "/direct", endpoint, methods=["POST"], dependencies=[Depends(must_not_run)]
    )
    (route,) = [r for r in app.routes if isinstance(r, DirectRoute)]
    assert_plain_starlette_adapter(route)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(
            "/direct", headers={"X-Session-ID": "abc"}, content=b"{ not even json"
        )

    assert dependency_calls == []
    assert len(seen) == 1
    assert isinstance(seen[0], Request)
    assert seen[0].url.path == "/direct"
    assert seen[0].headers["x-session-id"] == "abc"
    assert answer.sent  # the very Response the endpoint returned, not a re-serialised copy
    assert response.status_code == 299
    assert response.content == b"\x00 not json"
    assert response.headers["content-type"] == "application/x-direct"
    assert response.headers["x-a"] == "1"
    assert "/direct" in app.openapi()["paths"]  # still documented


async def test_errors_still_reach_the_exception_handlers() -> None:
    async def endpoint(request: Request) -> Response:
        raise HTTPException(status_code=418, detail="teapot")

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(f"handled {exc.detail}", status_code=exc.status_code)

    app = FastAPI(exception_handlers={HTTPException: handler})
    add_direct_route(app, "/direct", endpoint, methods=["POST"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/direct")
    assert (response.status_code, response.text) == (418, "handled teapot")


def test_the_service_serves_validate_through_a_direct_route() -> None:
    from session_service.app import create_app
    from session_service.core.settings import Settings

    app = create_app(Settings())
    direct = {r.path: r for r in app.routes if isinstance(r, DirectRoute)}
    assert "/api/v1/session/validate" in direct
    for route in direct.values():
        assert_plain_starlette_adapter(route)
