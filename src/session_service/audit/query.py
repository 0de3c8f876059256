"""The admin view of the audit trail: filtered, newest first, keyset-paginated.

A page is `id < cursor ORDER BY id DESC`, never OFFSET. Events inserted while an admin
pages get higher ids than the first page saw, so they never shift the pages below: no
event is skipped or repeated. The cursor is opaque: signed (itsdangerous) and bound to
the filter it was issued for, so a malformed, forged or re-used-elsewhere cursor is a 422.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.audit.events import EventType
from session_service.audit.repository import AuditRepository
from session_service.audit.service import AuditService
from session_service.audit.snapshot import AuditEventSnapshot
from session_service.core.context import RequestContext
from session_service.core.errors import InvalidInput


class InvalidCursor(InvalidInput):
    """The cursor is malformed, forged, or belongs to another filter."""

    code = "invalid_cursor"
    title = "Invalid cursor"


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events an admin asked for."""

    session_id: uuid.UUID | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def fingerprint(self) -> str:
        """A short digest of the filter, so a cursor only continues the query it came from."""
        canonical = json.dumps(asdict(self), default=str, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of events and the cursor of the next (None on the last page)."""

    events: list[AuditEventSnapshot]
    next_cursor: str | None


class AuditQuery:
    """Reads the trail for admins; each query is itself an audited admin call."""

    def __init__(self, *, audit: AuditService, signing_keys: list[str]) -> None:
        self.audit = audit
        self._cursors = URLSafeSerializer(list(reversed(signing_keys)), salt="audit-cursor")

    async def page(
        self,
        audit_filter: AuditFilter,
        *,
        db: AsyncSession,
        cursor: str | None,
        limit: int,
        ctx: RequestContext,
    ) -> AuditPage:
        """The next `limit` events (newest first) after `cursor`."""
        fingerprint = audit_filter.fingerprint()
        before = None if cursor is None else self._decode(cursor, fingerprint)
        rows = await AuditRepository(db).newest_first(
            before=before,
            session_id=audit_filter.session_id,
            type=audit_filter.type,
            since=audit_filter.since,
            until=audit_filter.until,
            limit=limit + 1,
        )
        more = len(rows) > limit
        events = rows[:limit]
        next_cursor = (
            str(self._cursors.dumps({"before": events[-1].id, "filter": fingerprint}))
            if more
            else None
        )
        await self.audit.record(
            EventType.ADMIN_AUDIT_QUERIED,
            db=db,
            ctx=ctx,
            session_id=audit_filter.session_id,
            details={
                "type": audit_filter.type,
                "returned": len(events),
                "paged": cursor is not None,
            },
        )
        return AuditPage(events=events, next_cursor=next_cursor)

    def _decode(self, cursor: str, fingerprint: str) -> int:
        try:
            payload = self._cursors.loads(cursor)
        except BadSignature as error:
            raise InvalidCursor("The cursor is not one this service issued.") from error
        if not isinstance(payload, dict) or not isinstance(payload.get("before"), int):
            raise InvalidCursor("The cursor is malformed.")
        if payload.get("filter") != fingerprint:
            raise InvalidCursor("The cursor belongs to a query with other filters.")
        before: int = payload["before"]
        return before
