"""Refused requests, counted in memory and audited as summaries: a flood costs no table.

A refusal (an unknown token, rejected input, a spent rate limit, a denied key) used to be
one committed row each, so every bad request an attacker sent cost the database a write
and a year of retention. Now refusals are counted per key (event type, client as the
audit keeps it, code, and the session when the refusal names one): the first of a key is
written at once, so an attack shows in the trail immediately, and the rest become one
`request.rejected_summary` event per key per period with their count. Every refusal is
in the trail exactly once: individually or inside a summary's count.

Memory is bounded: beyond `max_keys` distinct keys, refusals are counted under one
overflow key. A key with nothing to summarise at a flush is forgotten, so its next
refusal is written at once again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.audit.service import AuditService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import job_scope

log = structlog.get_logger(__name__)

# One summary per key per period (measured with the service's clock).
SUMMARY_PERIOD = timedelta(minutes=1)
# How often the background task looks for periods that have ended (real seconds).
FLUSH_TICK = 1.0
OVERFLOW = "overflow"


class RefusalKey(NamedTuple):
    """What refusals are counted by; never a token, name, email or user agent."""

    event: str
    client: str | None  # as AUDIT_CLIENT_DETAIL keeps it: network, address or nothing
    code: str
    session_id: uuid.UUID | None


OVERFLOW_KEY = RefusalKey(OVERFLOW, None, OVERFLOW, None)


@dataclass(slots=True)
class _Count:
    since: datetime  # start of the period being counted
    count: int = 0  # refusals since `since` not yet in the trail


class RefusalAggregator:
    """Counts refusals per key; writes first occurrences and per-period summaries.

    One per process. `refuse` is the request path: it writes only a key's first
    occurrence. `flush` (the background task, and once more at shutdown) writes the rest.
    """

    def __init__(
        self,
        *,
        maker: async_sessionmaker[AsyncSession],
        audit: AuditService,
        clock: Clock,
        max_keys: int,
        on_refusal: Callable[[str, str], None] | None = None,
    ) -> None:
        self.maker = maker
        self.audit = audit
        self.clock = clock
        self.max_keys = max_keys
        # Told every refusal's event type and code (metrics); must be cheap.
        self.on_refusal = on_refusal
        self.counts: dict[RefusalKey, _Count] = {}

    async def refuse(
        self,
        event_type: EventType,
        *,
        ctx: RequestContext,
        code: str,
        session_id: uuid.UUID | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Count one refusal; the first of its key is audited at once. Never raises."""
        if self.on_refusal is not None:
            self.on_refusal(event_type.value, code)
        key = RefusalKey(event_type.value, self.audit.minimal(ctx).client_ip, code, session_id)
        if key not in self.counts and len(self.counts) >= self.max_keys:
            key = OVERFLOW_KEY
        entry = self.counts.get(key)
        if entry is not None:
            entry.count += 1
            return
        self.counts[key] = _Count(since=self.clock())
        if key is OVERFLOW_KEY:
            event_type, session_id = EventType.REQUEST_REJECTED_SUMMARY, None
            ctx = RequestContext(request_id=ctx.request_id, client_ip=None, user_agent=None)
            details = {"event": OVERFLOW, "code": OVERFLOW, "count": 1, "keys": self.max_keys}
            log.warning("refusal_keys_overflow", keys=self.max_keys)
        try:
            async with job_scope(self.maker) as db:
                await self.audit.record(
                    event_type,
                    db=db,
                    ctx=ctx,
                    session_id=session_id,
                    outcome=Outcome.FAILURE,
                    details=details or {},
                )
        except Exception:
            # Not lost: counted for the next summary instead.
            self.counts[key].count += 1
            log.warning("audit_write_failed", event_type=event_type.value)

    async def flush(self, *, final: bool = False) -> int:
        """Write a summary for each key whose period has ended (every key if `final`).

        Returns how many summaries were written. On a failed write the counts are kept
        for the next flush.
        """
        now = self.clock()
        due = [
            (key, entry.count, entry.since)
            for key, entry in self.counts.items()
            if final or entry.since + SUMMARY_PERIOD <= now
        ]
        quiet = [key for key, count, _ in due if count == 0]
        for key in quiet:
            del self.counts[key]  # nothing since its last write: its next refusal is a first
        summaries = [(key, count, since) for key, count, since in due if count > 0]
        # Taken out before the write, so a flush running meanwhile cannot write them too;
        # refusals counted during the write belong to the next period.
        for key, _, _ in summaries:
            self.counts[key] = _Count(since=now)
        if not summaries:
            return 0
        try:
            async with job_scope(self.maker) as db:
                for key, count, since in summaries:
                    await self._summarise(db, key, count=count, since=since, until=now)
        except Exception:
            log.warning("audit_write_failed", event_type=EventType.REQUEST_REJECTED_SUMMARY.value)
            for key, count, since in summaries:  # given back, for the next flush
                entry = self.counts.setdefault(key, _Count(since=since))
                entry.count += count
                entry.since = min(entry.since, since)
            return 0
        return len(summaries)

    async def run(self, *, tick: float = FLUSH_TICK) -> None:
        """Flush every `tick` seconds until cancelled (the shutdown flush is separate)."""
        while True:
            await asyncio.sleep(tick)
            await self.flush()

    async def _summarise(
        self, db: AsyncSession, key: RefusalKey, *, count: int, since: datetime, until: datetime
    ) -> None:
        # The key's client is already what the audit keeps (minimal() leaves it unchanged).
        ctx = RequestContext(request_id=None, client_ip=key.client, user_agent=None)
        await self.audit.record(
            EventType.REQUEST_REJECTED_SUMMARY,
            db=db,
            ctx=ctx,
            session_id=key.session_id,
            outcome=Outcome.FAILURE,
            details={
                "event": key.event,
                "code": key.code,
                "count": count,
                "since": since.isoformat(),
                "until": until.isoformat(),
            },
        )
