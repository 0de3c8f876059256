"""Audit retention: purge old events in whole sealed batches, leaving an anchor.

Only whole sealed batches go, oldest first, and only while every event of the batch is
older than the cutoff; the first batch that is not stops the purge, so what remains is
always an unbroken tail of the chain. The anchor row keeps the newest purged batch's
digest and `covers_below`, from which the sealer continues and `verify_chain` starts.

One transaction does it all: the deletes (with the append-only guard's purge switch on
PostgreSQL), the anchor and the `audit.purged` event. It holds the sealer's advisory lock
on PostgreSQL, so no batch is sealed against a chain head that is being moved; on SQLite
every transaction begins with `BEGIN IMMEDIATE` (see `db.py`), which serialises it with
the sealer's transactions just the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.chain_repository import AuditChainRepository
from session_service.audit.events import EventType
from session_service.audit.service import AuditService
from session_service.core.context import RequestContext
from session_service.core.db import job_scope
from session_service.core.locks import LockKey, try_advisory_lock

log = structlog.get_logger(__name__)

MAX_BATCHES = 1000


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed (or, on a dry run, would remove).

    `through_event_id` and `anchor_digest` are None when nothing was purgeable. A result
    with `batches == max_batches` may have left purgeable batches for the next run.
    """

    batches: int
    events: int
    through_event_id: int | None
    anchor_digest: str | None
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _nothing(*, dry_run: bool) -> PurgeResult:
    return PurgeResult(
        batches=0, events=0, through_event_id=None, anchor_digest=None, dry_run=dry_run
    )


@dataclass(frozen=True)
class _Plan:
    last_batch_id: int
    last_event_id: int
    covers_below: int
    digest: str
    batches: int
    events: int


async def purge_before(
    maker: async_sessionmaker[AsyncSession],
    *,
    cutoff: datetime,
    audit: AuditService,
    ctx: RequestContext,
    dry_run: bool = False,
    max_batches: int = MAX_BATCHES,
) -> PurgeResult:
    """Purge the oldest sealed batches whose events all occurred before `cutoff`.

    Idempotent: a second run with the same cutoff finds nothing. Returns an empty result
    without waiting when a sealer or another purge holds the lock (PostgreSQL). A dry run
    takes the same lock and makes the same choice, then changes and records nothing.
    """
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware")
    if max_batches < 1:
        raise ValueError("max_batches must be at least 1")
    async with job_scope(maker) as db:
        if not await try_advisory_lock(db, LockKey.AUDIT_CHAIN):
            log.info("audit_purge_skipped", reason="chain_locked")
            return _nothing(dry_run=dry_run)
        plan = await _plan(db, cutoff=cutoff, max_batches=max_batches)
        if plan is None:
            return _nothing(dry_run=dry_run)
        result = PurgeResult(
            batches=plan.batches,
            events=plan.events,
            through_event_id=plan.last_event_id,
            anchor_digest=plan.digest,
            dry_run=dry_run,
        )
        if dry_run:
            return result
        # Recorded before the deletes: on SQLite an emptied table would hand out purged ids
        # again (rowid reuse), and a reused id below the anchor reads as an insertion.
        await audit.record(
            EventType.AUDIT_PURGED,
            db=db,
            ctx=ctx,
            details={
                "batches": plan.batches,
                "events": plan.events,
                "through_event_id": plan.last_event_id,
                "anchor_digest": plan.digest,
                "cutoff": cutoff.isoformat(),
            },
        )
        chain = AuditChainRepository(db)
        await chain.purge_below(covers_below=plan.covers_below, last_batch_id=plan.last_batch_id)
        await chain.add_anchor(
            {
                "last_batch_id": plan.last_batch_id,
                "last_event_id": plan.last_event_id,
                "covers_below": plan.covers_below,
                "digest": plan.digest,
                "batches_purged": plan.batches,
                "events_purged": plan.events,
                "purged_at": audit.clock(),
            }
        )
    log.info("audit_purged", **result.as_dict())
    return result


async def _plan(db: AsyncSession, *, cutoff: datetime, max_batches: int) -> _Plan | None:
    """The run of oldest batches to purge, checked one batch range at a time.

    `occurred_at` is not monotonic in key order, so each batch's newest event is looked up
    over its key range (an index range scan); the loop stops at the first batch that is
    not entirely old, so the cost follows what is purged, not the table's size. The first
    range starts at the bottom of the table: everything below the last purged batch's
    `covers_below` is deleted, and so must be old, events outside any batch included.
    """
    chain = AuditChainRepository(db)
    candidates = await chain.oldest_batches(limit=max_batches)
    chosen = None
    batches = events = 0
    start: int | None = None
    for batch in candidates:
        newest, count = await chain.range_age(start=start, below=int(batch.covers_below))
        if newest is not None and newest >= cutoff:
            break
        chosen = batch
        batches += 1
        events += count
        start = int(batch.covers_below)
    if chosen is None:
        return None
    return _Plan(
        last_batch_id=int(chosen.id),
        last_event_id=int(chosen.last_event_id),
        covers_below=int(chosen.covers_below),
        digest=str(chosen.digest),
        batches=batches,
        events=events,
    )
