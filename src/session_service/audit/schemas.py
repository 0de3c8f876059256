"""Response bodies of the admin audit API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from session_service.http.examples import AUDIT_EVENT, examples


class AuditEventRead(BaseModel):
    """One audit event, as stored."""

    model_config = examples(AUDIT_EVENT, from_attributes=True)

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

    model_config = examples({"events": [AUDIT_EVENT], "next_cursor": "eyJpZCI6IDEwNDJ9"})

    events: list[AuditEventRead]
    next_cursor: str | None


class BatchProblemRead(BaseModel):
    """One broken batch and how it broke."""

    batch_id: int = Field(description="0: events inserted below the anchor after a purge.")
    first_event_id: int
    last_event_id: int
    problem: Literal[
        "event_changed", "event_removed", "event_inserted", "digest_changed", "chain_broken"
    ]


class AnchorRead(BaseModel):
    """Where verification starts after a retention purge."""

    last_batch_id: int
    last_event_id: int
    covers_below: int
    digest: str
    purged_at: datetime


class VerifyReportRead(BaseModel):
    """The outcome of recomputing the whole hash chain."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": True,
                    "batches": 412,
                    "events": 205_310,
                    "unsealed_events": 3,
                    "seconds": 1.92,
                    "problems": [],
                    "anchor": None,
                }
            ]
        }
    )

    ok: bool
    batches: int
    events: int
    unsealed_events: int = Field(description="Events too recent to be sealed yet.")
    seconds: float
    problems: list[BatchProblemRead]
    anchor: AnchorRead | None
