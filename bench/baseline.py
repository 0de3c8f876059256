"""The yardstick: minimal Starlette + asyncpg endpoints doing the least each call must do.

`/validate`: hash the presented token (SHA-256) and read its session by the digest's
unique index in one SELECT. `/append`: the same, then in one transaction take the next
`seq` of the conversation, insert the message and its audit event. `/history`: the
session, then the conversation's newest 50 messages. The service's throughput is reported
as a ratio to these on the same data and machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DSN = os.environ["BASELINE_DSN"]
QUERY = "SELECT id, status, expires_at FROM sessions WHERE token_digest = $1"
NEXT_SEQ = (
    "UPDATE conversations SET last_seq = last_seq + 1, message_count = message_count + 1,"
    " message_bytes = message_bytes + $3, updated_at = now()"
    " WHERE id = $1 AND session_id = $2 RETURNING last_seq"
)
INSERT_MESSAGE = (
    "INSERT INTO messages (id, conversation_id, session_id, seq, role, content, content_bytes,"
    " attachments, client_message_id, created_at)"
    " VALUES ($1, $2, $3, $4, 'user', $5, $6, '[]', $7, now())"
)
INSERT_EVENT = (
    "INSERT INTO audit_events (occurred_at, type, session_id, outcome, details)"
    " VALUES (now(), 'conversation.message_added', $1, 'success', $2::json)"
)
HISTORY = (
    "SELECT id, seq, role, content, attachments, meta, client_message_id, created_at"
    " FROM messages WHERE conversation_id = $1 ORDER BY seq DESC LIMIT 50"
)


def _digest(request: Request) -> str:
    token = str(uuid.UUID(request.headers["x-session-id"]))
    return hashlib.sha256(token.encode()).hexdigest()


async def validate(request: Request) -> JSONResponse:
    pool: asyncpg.Pool = request.app.state.pool
    row = await pool.fetchrow(QUERY, _digest(request))
    if row is None:
        return JSONResponse({"valid": False})
    return JSONResponse({"valid": True, "id": str(row["id"]), "status": row["status"]})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(DSN, min_size=10, max_size=20)
    yield
    await app.state.pool.close()


async def append(request: Request) -> JSONResponse:
    pool: asyncpg.Pool = request.app.state.pool
    body = json.loads(await request.body())
    cid = uuid.UUID(request.headers["x-conversation-id"])
    content = body["content"]
    async with pool.acquire() as conn, conn.transaction():
        session = await conn.fetchrow(QUERY + " FOR UPDATE", _digest(request))
        if session is None:
            return JSONResponse({"code": "session_invalid"}, status_code=401)
        size = len(content.encode())
        seq = await conn.fetchval(NEXT_SEQ, cid, session["id"], size)
        message_id = uuid.uuid4()
        await conn.execute(
            INSERT_MESSAGE,
            message_id,
            cid,
            session["id"],
            seq,
            content,
            size,
            body.get("client_message_id"),
        )
        details = {"conversation_id": str(cid), "message_id": str(message_id), "seq": seq}
        await conn.execute(INSERT_EVENT, session["id"], json.dumps(details))
    return JSONResponse({"id": str(message_id), "seq": seq}, status_code=201)


async def history(request: Request) -> JSONResponse:
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        session = await conn.fetchrow(QUERY, _digest(request))
        if session is None:
            return JSONResponse({"code": "session_invalid"}, status_code=401)
        rows = await conn.fetch(HISTORY, uuid.UUID(request.headers["x-conversation-id"]))
    messages = [
        {**dict(row), "id": str(row["id"]), "created_at": row["created_at"].isoformat()}
        for row in rows
    ]
    return JSONResponse({"messages": messages})


app = Starlette(
    routes=[
        Route("/validate", validate, methods=["POST"]),
        Route("/append", append, methods=["POST"]),
        Route("/history", history, methods=["GET"]),
    ],
    lifespan=lifespan,
)
