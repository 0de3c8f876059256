"""SQL for audit events: insert and read, never update or delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.audit.models import AuditEvent

_table = AuditEvent.__table__  # type: ignore[attr-defined]
# Built once; executed with a parameter dict per event.
_INSERT = insert(_table).returning(_table.c.id)


class AuditRepository:
    """Appends events within the caller's transaction."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, values: dict[str, Any]) -> int:
        """Insert one event and return its monotonic id (one statement, no ORM flush)."""
        event_id: int = (await self.db.execute(_INSERT, values)).scalar_one()
        return event_id
