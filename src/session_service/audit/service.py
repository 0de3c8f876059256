"""Recording audit events: in the caller's transaction, or alone for rejected attempts."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.audit.repository import AuditRepository
from session_service.audit.snapshot import AuditEntry, AuditEventSnapshot
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import after_commit, job_scope
from session_service.core.ids import parse_session_id
from session_service.core.settings import AuditClientDetail

log = structlog.get_logger(__name__)


class AuditService:
    """Writes audit events and mirrors them to the log once they are durable.

    One per process: it holds no request state, the unit of work is passed in.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        client_detail: AuditClientDetail = AuditClientDetail.NETWORK,
        on_commit: Callable[[], None] | None = None,
        on_event: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.clock = clock
        # What events keep of the caller's address and user agent (AUDIT_CLIENT_DETAIL).
        self.client_detail = client_detail
        # Called once an event is durable (the sealer's wake-up); must be cheap.
        self.on_commit = on_commit
        # Told each durable event's type and details (metrics); must be cheap.
        self.on_event = on_event

    async def record(
        self,
        event_type: EventType,
        *,
        db: AsyncSession,
        ctx: RequestContext,
        session_id: uuid.UUID | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Record an event in `db`'s transaction: it commits or rolls back with the change.

        Returns the event's id.
        """
        entry = _entry(
            self.clock(), event_type, self.minimal(ctx), session_id, outcome, details or {}
        )
        event_id = await AuditRepository(db).add(entry)
        on_event = self.on_event

        def committed() -> None:
            _log_event(event_id, entry)
            if on_event is not None:
                on_event(entry.type, entry.details)

        after_commit(db, committed)
        if self.on_commit is not None:
            after_commit(db, self.on_commit)
        return event_id

    async def record_many(
        self,
        event_type: EventType,
        *,
        db: AsyncSession,
        ctx: RequestContext,
        items: list[tuple[uuid.UUID | None, dict[str, Any]]],
        outcome: Outcome = Outcome.SUCCESS,
    ) -> None:
        """Record one event per `(session_id, details)` item in `db`'s transaction, at once."""
        now = self.clock()
        ctx = self.minimal(ctx)
        entries = [
            _entry(now, event_type, ctx, session_id, outcome, details)
            for session_id, details in items
        ]
        if not entries:
            return
        await AuditRepository(db).add_many(entries)
        on_event = self.on_event

        def committed() -> None:
            log.info(
                "audit_events",
                event_type=event_type.value,
                count=len(entries),
                outcome=outcome.value,
            )
            if on_event is not None:
                for entry in entries:
                    on_event(entry.type, entry.details)

        after_commit(db, committed)
        if self.on_commit is not None:
            after_commit(db, self.on_commit)

    def minimal(self, ctx: RequestContext) -> RequestContext:
        """The caller as AUDIT_CLIENT_DETAIL lets an event keep it."""
        if self.client_detail == AuditClientDetail.FULL:
            return ctx
        if self.client_detail == AuditClientDetail.NONE:
            return RequestContext(request_id=ctx.request_id, client_ip=None, user_agent=None)
        return RequestContext(
            request_id=ctx.request_id, client_ip=client_network(ctx.client_ip), user_agent=None
        )

    def trail(
        self, session_id: uuid.UUID, *, db: AsyncSession, batch: int
    ) -> AsyncIterator[list[AuditEventSnapshot]]:
        """A session's events, oldest first, in batches (for its export)."""
        return AuditRepository(db).for_session(session_id, batch=batch)


RECENT_ACTIONS = 10


async def recent_actions(maker: async_sessionmaker[AsyncSession], session_id: str) -> str:
    """What a session did last, newest first, for admin alerts (types and times only)."""
    parsed = parse_session_id(session_id)
    if parsed is None:
        return ""
    async with job_scope(maker) as db:
        events = await AuditRepository(db).recent(parsed, limit=RECENT_ACTIONS)
    return "; ".join(_describe(event) for event in events)


@lru_cache(maxsize=4096)
def client_network(address: str | None) -> str | None:
    """The network of an address: IPv4 /24 (`203.0.113.0/24`), IPv6 /48; None if none.

    A network already that narrow (a refusal summary's client) is returned as it is.
    """
    if address is None:
        return None
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    except ValueError:
        return _already_network(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # `::ffff:a.b.c.d` is an IPv4 client
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _already_network(text: str) -> str | None:
    try:
        network = ipaddress.ip_network(text)
    except ValueError:
        return None
    prefix = 24 if network.version == 4 else 48
    return str(network) if network.prefixlen == prefix else None


def _entry(
    now: datetime,
    event_type: EventType,
    ctx: RequestContext,
    session_id: uuid.UUID | None,
    outcome: Outcome,
    details: dict[str, Any],
) -> AuditEntry:
    return AuditEntry(
        occurred_at=now,
        type=event_type.value,
        session_id=session_id,
        request_id=ctx.request_id,
        client_ip=ctx.client_ip,
        user_agent=ctx.user_agent,
        outcome=outcome.value,
        details=details,
    )


def _describe(event: AuditEventSnapshot) -> str:
    when = event.occurred_at.strftime("%H:%M:%S")
    failed = "" if event.outcome == Outcome.SUCCESS.value else " (failed)"
    return f"{when} {event.type}{failed}"


def _log_event(event_id: int, entry: AuditEntry) -> None:
    log.info(
        "audit_event",
        event_id=event_id,
        event_type=entry.type,
        session_id=str(entry.session_id) if entry.session_id else None,
        outcome=entry.outcome,
        details=entry.details,
    )
