"""Sealing audit events into the hash chain, and verifying the chain.

Each batch covers a range of chain keys, [where the previous batch stopped, `covers_below`),
and its digest covers that range's events in chain order (see `chain.py` and
`chain_repository.chain_key`). A batch never reaches past the horizon: on PostgreSQL the
oldest transaction still running, so an event whose transaction commits late (a slow
storage call inside it, a stalled client) is sealed in a later batch, never skipped; on
SQLite, where transactions are serialised, the newest event. The events of one
transaction (one key) always land in one batch. Events younger than `min_age` wait too.
One sealer at a time: a PostgreSQL advisory lock across instances, a process lock on
SQLite. It runs off the request path: woken after commits that wrote events, and
periodically.

After a retention purge (`retention.py`) the chain starts at the latest anchor: the
digest and `covers_below` of the newest purged batch stand in for GENESIS and the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.chain import GENESIS, batch_digest
from session_service.audit.chain_repository import AuditChainRepository
from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.audit.service import AuditService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import job_scope, read_scope
from session_service.core.locks import LockKey, try_advisory_lock

log = structlog.get_logger(__name__)

BATCH_SIZE = 1000


class AuditSealer:
    """Seals whatever is ready; safe to call from anywhere, any number of times."""

    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        *,
        clock: Clock,
        min_age: timedelta,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.maker = maker
        self.clock = clock
        self.min_age = min_age
        self.batch_size = batch_size
        self._lock = asyncio.Lock()

    async def seal(self) -> int:
        """Seal every ready event; returns how many were sealed (0 if another sealer runs)."""
        async with self._lock:
            total = 0
            while sealed := await self._seal_batch():
                total += sealed
            return total

    async def _seal_batch(self) -> int:
        async with job_scope(self.maker) as db:
            if not await try_advisory_lock(db, LockKey.AUDIT_CHAIN):
                return 0
            chain = AuditChainRepository(db)
            last = await chain.latest_batch()
            if last is None:  # nothing sealed, or every batch purged: resume at the anchor
                last = await chain.latest_anchor()
            start = int(last["covers_below"]) if last else None
            previous = str(last["digest"]) if last else GENESIS
            below = await chain.horizon()
            rows = await chain.events_covered(start, below, limit=self.batch_size + 1)
            if len(rows) > self.batch_size:  # full: stop before the last key, kept whole
                below = chain.key_of(rows[self.batch_size])
                if below == chain.key_of(rows[0]):  # one transaction wrote more than a batch
                    below += 1
                    rows = await chain.events_covered(below - 1, below)
            young = self.clock() - self.min_age
            for row in rows:  # stop at the first key with an event too young to seal
                if chain.key_of(row) >= below:
                    break
                if row["occurred_at"] > young:
                    below = chain.key_of(row)
                    break
            ready = [row for row in rows if chain.key_of(row) < below]
            if not ready:
                return 0
            ids = [int(row["id"]) for row in ready]
            await chain.add_batch(
                {
                    "first_event_id": min(ids),
                    "last_event_id": max(ids),
                    "event_count": len(ready),
                    "digest": batch_digest(previous, ready),
                    "previous_digest": previous,
                    "sealed_at": self.clock(),
                    "covers_below": below,
                }
            )
            return len(ready)

    async def run(self, *, interval: timedelta, wake: asyncio.Event) -> None:
        """Seal periodically and whenever `wake` is set; until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval.total_seconds())
            wake.clear()
            try:
                await self.seal()
            except Exception:
                log.exception("audit_sealing_failed")


@dataclass
class BatchProblem:
    """One broken batch and what is wrong with it."""

    batch_id: int
    first_event_id: int
    last_event_id: int
    problem: str


@dataclass
class VerifyReport:
    """The outcome of recomputing the whole chain."""

    ok: bool
    batches: int
    events: int
    unsealed_events: int
    seconds: float
    problems: list[BatchProblem] = field(default_factory=list)
    # Where verification starts after a purge: last_batch_id, last_event_id, digest, purged_at.
    anchor: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def verify_chain(db: AsyncSession) -> VerifyReport:
    """Recompute every batch; name each broken one and how it broke.

    Problems: `event_changed` (same events, other content), `event_removed` and
    `event_inserted` (fewer or more events than sealed in the batch's key range),
    `digest_changed` (the events match but the stored digest was altered: the next batch
    still chains to the true one), `chain_broken` (a batch does not chain to its
    predecessor's stored digest). On the newest batch nothing follows, so an altered digest
    there reads as `event_changed`.

    After a retention purge the chain starts at the latest anchor instead of GENESIS: the
    first remaining batch must chain to the anchor's digest (else `chain_broken`, which is
    also what a deleted anchor row looks like), and events with keys below the anchor's
    `covers_below` must not exist. Any that do were inserted after the purge; they are
    reported as `event_inserted` on a pseudo-batch with `batch_id` 0 whose event ids span
    the offending events. A purge that removed every batch and then lost its anchor too
    cannot be told apart from a fresh chain.

    Call it in a `read_scope`: the reads share one snapshot, so a purge or a seal
    committing meanwhile cannot make a sound chain look broken, and on SQLite writers are
    not held up for as long as it reads.
    """
    started = time.perf_counter()
    problems: list[BatchProblem] = []
    batches = events = 0
    chain = AuditChainRepository(db)
    anchor = await chain.latest_anchor()
    previous_stored, previous_below = GENESIS, None
    if anchor is not None:
        previous_stored, previous_below = str(anchor["digest"]), int(anchor["covers_below"])
        count, lowest, highest = await chain.events_below(previous_below)
        if count:
            problems.append(
                BatchProblem(
                    batch_id=0,
                    first_event_id=int(lowest or 0),
                    last_event_id=int(highest or 0),
                    problem="event_inserted",
                )
            )
    stored = await chain.batches()
    for index, batch in enumerate(stored):
        rows = await chain.events_covered(previous_below, int(batch["covers_below"]))
        batches += 1
        events += len(rows)
        problem = None
        if len(rows) < batch["event_count"]:
            problem = "event_removed"
        elif len(rows) > batch["event_count"]:
            problem = "event_inserted"
        elif (from_chain := batch_digest(previous_stored, rows)) == batch["digest"]:
            # The events and the chain agree; only the stored link field can be off.
            if batch["previous_digest"] != previous_stored:
                problem = "chain_broken"
        elif batch_digest(batch["previous_digest"], rows) == batch["digest"]:
            # Consistent with its own link, which is not the predecessor's stored digest:
            # explained when that predecessor's digest was altered.
            explained = (
                index > 0
                and bool(problems)
                and problems[-1].batch_id == stored[index - 1]["id"]
                and problems[-1].problem == "digest_changed"
            )
            problem = None if explained else "chain_broken"
        else:
            following = stored[index + 1] if index + 1 < len(stored) else None
            chains_to_truth = following is not None and following["previous_digest"] in {
                from_chain,
                batch_digest(batch["previous_digest"], rows),
            }
            problem = "digest_changed" if chains_to_truth else "event_changed"
        if problem:
            problems.append(
                BatchProblem(
                    batch_id=int(batch["id"]),
                    first_event_id=int(batch["first_event_id"]),
                    last_event_id=int(batch["last_event_id"]),
                    problem=problem,
                )
            )
        previous_stored, previous_below = batch["digest"], int(batch["covers_below"])
    unsealed = await chain.count_from(previous_below)
    return VerifyReport(
        ok=not problems,
        batches=batches,
        events=events,
        unsealed_events=unsealed,
        seconds=round(time.perf_counter() - started, 3),
        problems=problems,
        anchor=None if anchor is None else _describe_anchor(anchor),
    )


def _describe_anchor(anchor: RowMapping) -> dict[str, Any]:
    return {
        "last_batch_id": int(anchor["last_batch_id"]),
        "last_event_id": int(anchor["last_event_id"]),
        "covers_below": int(anchor["covers_below"]),
        "digest": str(anchor["digest"]),
        "purged_at": anchor["purged_at"].isoformat(),
    }


async def verify_and_record(
    *,
    maker: async_sessionmaker[AsyncSession],
    db: AsyncSession,
    audit: AuditService,
    ctx: RequestContext,
) -> VerifyReport:
    """Verify the chain in a read scope of its own, then audit that an admin did, in `db`."""
    async with read_scope(maker) as reading:
        report = await verify_chain(reading)
    await audit.record(
        EventType.ADMIN_AUDIT_VERIFIED,
        db=db,
        ctx=ctx,
        outcome=Outcome.SUCCESS if report.ok else Outcome.FAILURE,
        details={"batches": report.batches, "problems": len(report.problems)},
    )
    return report
