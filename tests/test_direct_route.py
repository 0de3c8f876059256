"""DirectRoute refuses endpoints that expect FastAPI to inject something."""

from __future__ import annotations

import pytest
from fastapi import Request, Response

from session_service.http.direct import DirectRoute


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
