"""Audit events as values: an entry to record, and a stored event as repositories return it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An event about to be recorded (the row's values but its id)."""

    occurred_at: datetime
    type: str
    session_id: uuid.UUID | None
    request_id: str | None
    client_ip: str | None
    user_agent: str | None
    outcome: str
    details: dict[str, Any]

    def values(self) -> dict[str, Any]:
        """The row's column values (shallow: no deep copy, unlike `dataclasses.asdict`)."""
        return {name: getattr(self, name) for name in ENTRY_FIELDS}


@dataclass(frozen=True, slots=True)
class AuditEventSnapshot(AuditEntry):
    """A stored event, with the monotonic id the chain orders it by."""

    id: int

    def as_dict(self) -> dict[str, Any]:
        """Every column, the session id as text (the export's JSON shape)."""
        values = {"id": self.id, **self.values()}
        values["session_id"] = str(self.session_id) if self.session_id else None
        return values


ENTRY_FIELDS = tuple(field.name for field in fields(AuditEntry))
