"""Body caps on JSON routes: 413 problem+json, decided before the body is read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.helpers import Running, assert_problem, count_sessions, create_session, holder

TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {}


class Streamed:
    """A chunked body (no Content-Length) that counts how much the server pulled."""

    def __init__(self, chunks: int, size: int = 64 * 1024) -> None:
        self.chunks, self.size, self.sent = chunks, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.sent += 1
            yield b" " * self.size


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/sessions"),
        ("POST", "/api/v1/session/reset"),
        ("PUT", "/api/v1/session/details"),
        ("POST", "/api/v1/session/uploads"),
        ("POST", "/api/v1/session/validate"),
    ],
)
async def test_ten_megabytes_of_json_is_413(
    client: httpx.AsyncClient, app: Running, method: str, path: str
) -> None:
    session = await create_session(client)
    body = b'{"name": "' + b"x" * TEN_MB + b'"}'
    response = await client.request(
        method,
        path,
        content=body,
        headers={"content-type": "application/json", **holder(session)},
    )
    assert_problem(response, 413, "payload_too_large")
    assert response.headers["connection"] == "close"
    assert await count_sessions(app) == 1  # nothing was created or reset


async def test_chunked_body_above_the_cap_is_cut_off(
    client: httpx.AsyncClient, app: Running
) -> None:
    body = Streamed(chunks=160)  # 10 MiB, never declared
    response = await client.post(
        "/api/v1/sessions", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")
    # The 64 KiB cap is passed on the second chunk: the rest was never pulled.
    assert body.sent <= 3
    assert await count_sessions(app) == 0


async def test_a_body_just_under_the_cap_is_read(client: httpx.AsyncClient) -> None:
    padding = " " * (64 * 1024 - 100)
    response = await client.post(
        "/api/v1/sessions",
        content=("{" + padding + "}").encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201
