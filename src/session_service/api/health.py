"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from session_service.db import UNAVAILABLE_ERRORS
from session_service.errors import NotReady

router = APIRouter(tags=["operations"])

READINESS_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers. Touches no dependency."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A dependency is unreachable."}})
async def readyz(request: Request) -> dict[str, Any]:
    """Ready: the database answers a trivial query within two seconds."""
    engine: AsyncEngine = request.app.state.engine
    try:
        await asyncio.wait_for(_ping(engine), READINESS_TIMEOUT_SECONDS)
    except UNAVAILABLE_ERRORS as error:  # TimeoutError is an OSError, so included
        raise NotReady(
            "The database is not reachable.",
            extra={"checks": {"database": f"unavailable: {type(error).__name__}"}},
        ) from error
    return {"status": "ready", "checks": {"database": "ok"}}


async def _ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
