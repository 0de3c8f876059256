"""Audit of refused requests (rejected input, denied keys), written at the HTTP edge."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import Request

from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.audit.service import AuditService
from session_service.core.ids import parse_session_id
from session_service.http.deps import request_context

log = structlog.get_logger(__name__)


async def record_rejection(
    request: Request,
    event_type: EventType,
    *,
    session_header: str | None,
    details: dict[str, Any],
) -> None:
    """Audit a refused request in a transaction of its own; never fails the answer.

    The refusal is answered whatever happens here: if the event cannot be written (the
    database is down), that is logged and the client still gets its 4xx.
    """
    audit: AuditService | None = getattr(request.app.state, "audit", None)
    if audit is None:
        return
    details = {**details, "method": request.method, "path": request.url.path}
    try:
        await audit.record_alone(
            event_type,
            ctx=request_context(request),
            session_id=parse_session_id(session_header),
            outcome=Outcome.FAILURE,
            details=details,
        )
    except Exception:
        log.warning("audit_write_failed", event_type=event_type.value)
