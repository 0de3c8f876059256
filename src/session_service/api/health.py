"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import structlog
from fastapi import APIRouter

from session_service.core import lifecycle
from session_service.core.db import ping
from session_service.core.errors import DatabaseUnavailable, NotReady, StorageUnavailable
from session_service.http.deps import ResourcesDep

router = APIRouter(tags=["operations"])

log = structlog.get_logger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers. Touches no dependency."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "A dependency is unreachable or answers with an error."}},
)
async def readyz(resources: ResourcesDep) -> dict[str, Any]:
    """Ready: the database and the object store each answer within two seconds.

    The database is asked on a connection of the probe's own, never one of the requests'
    pool: a pool busy with requests is load, not an outage.

    The rate-limit store and the live updates' listener are reported but never make the
    instance unready: without Redis, limits are counted per instance, and while the
    listener reconnects, streams catch up at their heartbeats; the service keeps serving.
    A process told to stop is not ready at once, so balancers stop sending while it still
    serves.
    """
    if lifecycle.draining.is_set():
        raise NotReady("Shutting down.", extra={"checks": {"process": "draining"}})
    database, storage = await asyncio.gather(
        _check(ping(resources.probe_engine), (DatabaseUnavailable,)),
        _check(resources.store.check(), (StorageUnavailable,)),
    )
    checks = {"database": database, "storage": storage}
    limiter = resources.limiter
    if limiter is not None:
        checks["rate_limit"] = limiter.status
    checks["live"] = resources.live_source.status
    if database != "ok" or not storage.startswith("ok"):
        raise NotReady("A dependency is not reachable.", extra={"checks": checks})
    return {"status": "ready", "checks": checks}


async def _check(probe: Awaitable[str | None], failures: tuple[type[Exception], ...]) -> str:
    """`ok` (with the dependency's note: `ok: ...`), or `unavailable: <cause>`.

    The cause is the storage's reason when it gives one (`NoSuchBucket`, `AccessDenied`,
    `InvalidAccessKeyId`, `timeout`, ...), else the error's type: never its message.
    """
    caught: tuple[type[Exception], ...] = (*failures, TimeoutError)
    try:
        note = await asyncio.wait_for(probe, READINESS_TIMEOUT_SECONDS)
    except TimeoutError:
        return "unavailable: timeout"
    except caught as error:
        reason = error.reason if isinstance(error, StorageUnavailable) else None
        return f"unavailable: {reason or type(error).__name__}"
    except Exception as error:
        # Answering with an error (a database that does not exist, a file that is not a
        # database) is not ready either: the probe says which, and is never a 500.
        log.warning("readiness_check_failed", error=type(error).__name__)
        return f"unavailable: {type(error).__name__}"
    return "ok" if note is None else f"ok: {note}"
