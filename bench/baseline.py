"""The yardstick: a minimal Starlette + asyncpg endpoint doing the least validate must do.

That is: hash the presented token (SHA-256) and read its session by the digest's unique
index in one SELECT. Validate's throughput is reported as a ratio to this on the same data
and machine.
"""

from __future__ import annotations

import hashlib
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


async def validate(request: Request) -> JSONResponse:
    pool: asyncpg.Pool = request.app.state.pool
    token = str(uuid.UUID(request.headers["x-session-id"]))
    row = await pool.fetchrow(QUERY, hashlib.sha256(token.encode()).hexdigest())
    if row is None:
        return JSONResponse({"valid": False})
    return JSONResponse({"valid": True, "id": str(row["id"]), "status": row["status"]})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(DSN, min_size=10, max_size=20)
    yield
    await app.state.pool.close()


app = Starlette(routes=[Route("/validate", validate, methods=["POST"])], lifespan=lifespan)
