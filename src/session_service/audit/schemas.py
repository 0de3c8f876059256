"""Response bodies of the admin audit API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventRead(BaseModel):
    """One audit event, as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    type: str
    session_id: uuid.UUID | None
    request_id: str | None
    client_ip: str | None
    user_agent: str | None
    outcome: str
    details: dict[str, Any]


class AuditEventPage(BaseModel):
    """Newest first; pass `next_cursor` back as `cursor` for the next page."""

    events: list[AuditEventRead]
    next_cursor: str | None
