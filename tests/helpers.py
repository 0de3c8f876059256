"""Small builders and readers shared by the tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from starlette.types import Receive, Scope, Send

from session_service.audit.sealing import VerifyReport, verify_chain
from session_service.core.db import read_scope
from session_service.core.sqltypes import table_of
from session_service.http.deps import RESOURCES
from session_service.resources import Resources
from session_service.sessions.models import Session

PROBLEM = "application/problem+json"
SESSIONS = table_of(Session)


async def create_session(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """POST /sessions and return the new session: its public `id` and its secret `token`."""
    response = await client.post("/api/v1/sessions", json=body or None)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def holder(session: dict[str, Any] | str) -> dict[str, str]:
    """The header a session's holder sends: its token (from an answer, or given as is)."""
    token = session if isinstance(session, str) else session["token"]
    return {"X-Session-ID": token}


async def validate(client: httpx.AsyncClient, token: str | None) -> dict[str, Any]:
    """POST /session/validate with `token` (None: no header); the 200 answer's body."""
    headers = {} if token is None else holder(token)
    response = await client.post("/api/v1/session/validate", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def rows(app: Running, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Run a query on the app's database and return plain dicts."""
    async with app.resources.engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(row._mapping) for row in result]


async def audit_events(app: Running) -> list[dict[str, Any]]:
    """Every audit event, oldest first, details decoded and session ids as text."""
    events = await rows(app, "SELECT * FROM audit_events ORDER BY id")
    for event in events:
        if isinstance(event["details"], str):
            event["details"] = json.loads(event["details"])
        if event["session_id"] is not None:
            event["session_id"] = str(uuid.UUID(str(event["session_id"])))
    return events


async def session_row(app: Running, session_id: str) -> dict[str, Any] | None:
    """The sessions row for an id (typed values), or None."""
    async with app.resources.engine.connect() as conn:
        stmt = SESSIONS.select().where(SESSIONS.c.id == uuid.UUID(session_id))
        row = (await conn.execute(stmt)).first()
    return None if row is None else dict(row._mapping)


async def count_sessions(app: Running) -> int:
    return len(await rows(app, "SELECT id FROM sessions"))


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is problem+json with this status and code, and carries the request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["title"]
    assert body["detail"]
    return body


class Running:
    """An app whose lifespan is running, as an ASGI app that hands each request the state.

    A server passes the lifespan state into every request's scope; httpx's ASGITransport
    does not run the lifespan, so this does what the server would.
    """

    def __init__(self, app: FastAPI, state: dict[str, Any]) -> None:
        self.app = app
        self._state = state
        self.resources: Resources = state[RESOURCES]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            scope["state"] = dict(self._state)
        await self.app(scope, receive, send)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[Running]:
    """Run the app's lifespan (opening its resources) for the duration of the block."""
    async with app.router.lifespan_context(app) as state:
        assert state is not None
        yield Running(app, dict(state))


async def verify(app: Running) -> VerifyReport:
    """Verify the audit chain in a unit of work of its own, as the CLI does."""
    async with read_scope(app.resources.sessionmaker) as db:
        return await verify_chain(db)
