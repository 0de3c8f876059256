"""Refused requests (rejected input, denied keys, limits, invalid sessions) for the audit.

Each is handed to the process's refusal aggregator (`audit/refusals.py`): counted in
memory, written at once only when it is the first of its kind from its client, otherwise
in the next per-minute summary. The request's own unit of work (if any) has rolled back.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request

from session_service.audit.events import EventType
from session_service.http.deps import request_context, resources_of


async def record_rejection(
    request: Request,
    event_type: EventType,
    *,
    code: str,
    session_id: uuid.UUID | None,
    details: dict[str, Any],
) -> None:
    """Count a refused request for the audit; never fails the answer."""
    await resources_of(request).refusals.refuse(
        event_type,
        ctx=request_context(request),
        code=code,
        session_id=session_id,
        details={**details, "method": request.method, "path": request.url.path},
    )
