"""Audit of refused requests (rejected input, denied keys, limits, invalid sessions).

A refusal is written in a transaction of its own, after the request's unit of work (if it
had one) has rolled back: the refusal is the only fact worth keeping.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from fastapi import Request

from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.core.db import job_scope
from session_service.http.deps import request_context, resources_of

log = structlog.get_logger(__name__)


async def record_rejection(
    request: Request,
    event_type: EventType,
    *,
    session_id: uuid.UUID | None,
    details: dict[str, Any],
) -> None:
    """Audit a refused request; never fails the answer.

    The refusal is answered whatever happens here: if the event cannot be written (the
    database is down), that is logged and the client still gets its 4xx.
    """
    resources = resources_of(request)
    details = {**details, "method": request.method, "path": request.url.path}
    try:
        async with job_scope(resources.sessionmaker) as db:
            await resources.audit.record(
                event_type,
                db=db,
                ctx=request_context(request),
                session_id=session_id,
                outcome=Outcome.FAILURE,
                details=details,
            )
    except Exception:
        log.warning("audit_write_failed", event_type=event_type.value)
