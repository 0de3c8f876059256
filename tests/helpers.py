"""Small builders and readers shared by the tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from session_service.sessions.models import Session

PROBLEM = "application/problem+json"
SESSIONS = Session.__table__  # type: ignore[attr-defined]


async def create_session(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """POST /sessions and return the new session."""
    response = await client.post("/api/v1/sessions", json=body or None)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def rows(app: FastAPI, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Run a query on the app's database and return plain dicts."""
    async with app.state.engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(row._mapping) for row in result]


async def audit_events(app: FastAPI) -> list[dict[str, Any]]:
    """Every audit event, oldest first, details decoded and session ids as text."""
    events = await rows(app, "SELECT * FROM audit_events ORDER BY id")
    for event in events:
        if isinstance(event["details"], str):
            event["details"] = json.loads(event["details"])
        if event["session_id"] is not None:
            event["session_id"] = str(uuid.UUID(str(event["session_id"])))
    return events


async def session_row(app: FastAPI, session_id: str) -> dict[str, Any] | None:
    """The sessions row for an id (typed values), or None."""
    async with app.state.engine.connect() as conn:
        stmt = SESSIONS.select().where(SESSIONS.c.id == uuid.UUID(session_id))
        row = (await conn.execute(stmt)).first()
    return None if row is None else dict(row._mapping)


async def count_sessions(app: FastAPI) -> int:
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
