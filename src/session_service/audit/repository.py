"""SQL for audit events: insert and read, never update or delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.audit.models import AuditEvent


class AuditRepository:
    """Appends events within the caller's transaction."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, event: AuditEvent) -> AuditEvent:
        """Insert the event and learn its monotonic id."""
        self.db.add(event)
        await self.db.flush()
        return event

    async def for_session(self, session_id: uuid.UUID) -> Sequence[AuditEvent]:
        """A session's events, oldest first."""
        stmt = (
            select(AuditEvent)
            .where(AuditEvent.session_id == session_id)  # type: ignore[arg-type]
            .order_by(AuditEvent.id)  # type: ignore[arg-type]
        )
        return (await self.db.execute(stmt)).scalars().all()
