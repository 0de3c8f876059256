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
periodically. A backlog is sealed in runs of up to `RUN_BATCHES` batches per transaction,
its events read in pages of `PAGE_SIZE` (`chain_reader.py`); verify reads the whole chain
in such pages too, not one query per batch.

After a retention purge (`retention.py`) the chain starts at the latest anchor: the
digest and `covers_below` of the newest purged batch stand in for GENESIS and the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.chain import GENESIS, canonical_lines, lines_digest
from session_service.audit.chain_reader import ChainReader, Rows
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
# Rows read per query, and batches sealed per transaction (a run): large, so that a
# backlog costs few round trips and commits, yet memory and transactions stay bounded.
PAGE_SIZE = 20_000
RUN_BATCHES = 100
BATCH_PAGE = 1000  # stored batches read per query by `verify_chain`


class AuditSealer:
    """Seals whatever is ready; safe to call from anywhere, any number of times."""

    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        *,
        clock: Clock,
        min_age: timedelta,
        batch_size: int = BATCH_SIZE,
        page_size: int = PAGE_SIZE,
        run_batches: int = RUN_BATCHES,
    ) -> None:
        self.maker = maker
        self.clock = clock
        self.min_age = min_age
        self.batch_size = batch_size
        self.page_size = max(page_size, batch_size + 1)
        self.run_batches = run_batches
        self._lock = asyncio.Lock()

    async def seal(self) -> int:
        """Seal every ready event; returns how many were sealed (0 if another sealer runs)."""
        async with self._lock:
            total = 0
            while sealed := await self._seal_run():
                total += sealed
            return total

    async def _seal_run(self) -> int:
        """Seal up to `run_batches` batches in one transaction; how many events."""
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
            # Stop at the first key with an event too young to seal: the batches before it
            # are cut as if it were the horizon.
            young = await chain.first_key_after(
                start, below, occurred_after=self.clock() - self.min_age
            )
            if young is not None:
                below = young
            # A run looks at no more than its batches' rows and one more (the last peek).
            most = self.run_batches * self.batch_size + 1
            async with ChainReader(chain, start, below, page=self.page_size, most=most) as reader:
                batches = await self._cut(reader, previous, below)
            if batches:
                await chain.add_batches(batches)
            return sum(batch["event_count"] for batch in batches)

    async def _cut(self, reader: ChainReader, previous: str, below: int) -> list[dict[str, Any]]:
        """The next batches from the reader's events (keys below `below`), up to a run's."""
        batches: list[dict[str, Any]] = []
        while len(batches) < self.run_batches:
            rows = await reader.peek(self.batch_size + 1)
            covers = below
            if len(rows) > self.batch_size:  # full: stop before the last key, kept whole
                covers = int(rows[self.batch_size][0])
                if covers == rows[0][0]:  # one transaction wrote more than a batch
                    if not batches:  # all its events in one batch, in a run of its own
                        await reader.close()
                        rows = await reader.chain.chain_rows(covers, covers + 1)
                        batches.append(self._batch(previous, rows, covers + 1))
                    break
            ready = [row for row in rows if row[0] < covers]
            if not ready:
                break
            batches.append(self._batch(previous, ready, covers))
            previous = batches[-1]["digest"]
            reader.advance(len(ready))
            if covers == below:  # everything ready is sealed
                break
        return batches

    def _batch(self, previous: str, rows: Rows, covers: int) -> dict[str, Any]:
        ids = [row[1] for row in rows]
        return {
            "first_event_id": min(ids),
            "last_event_id": max(ids),
            "event_count": len(rows),
            "digest": lines_digest(previous, canonical_lines(rows)),
            "previous_digest": previous,
            "sealed_at": self.clock(),
            "covers_below": covers,
        }

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


async def verify_chain(db: AsyncSession, *, page_size: int = PAGE_SIZE) -> VerifyReport:
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
    previous_id: int | None = None
    async with ChainReader(chain, previous_below, None, page=page_size) as reader:
        async for batch, following in _batches(chain, reader):
            lines = canonical_lines(await reader.take(previous_below, int(batch["covers_below"])))
            batches += 1
            events += len(lines)
            problem = _problem(batch, following, lines, previous_stored)
            if problem == "chain_broken" and _explained(batch, lines, problems, previous_id):
                problem = None
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
            previous_id = int(batch["id"])
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


def _problem(
    batch: RowMapping, following: RowMapping | None, lines: list[str], previous: str
) -> str | None:
    """What is wrong with a batch, given its events' lines and its predecessor's digest."""
    if len(lines) < batch["event_count"]:
        return "event_removed"
    if len(lines) > batch["event_count"]:
        return "event_inserted"
    from_chain = lines_digest(previous, lines)
    if from_chain == batch["digest"]:
        # The events and the chain agree; only the stored link field can be off.
        return None if batch["previous_digest"] == previous else "chain_broken"
    own_link = lines_digest(batch["previous_digest"], lines)
    if own_link == batch["digest"]:
        # Consistent with its own link, which is not the predecessor's stored digest
        # (`_explained` tells whether that predecessor's digest was altered).
        return "chain_broken"
    chains_to_truth = following is not None and following["previous_digest"] in {
        from_chain,
        own_link,
    }
    return "digest_changed" if chains_to_truth else "event_changed"


def _explained(
    batch: RowMapping, lines: list[str], problems: list[BatchProblem], previous_id: int | None
) -> bool:
    """A batch consistent with its own link is sound when its predecessor's stored digest,
    not the link, was altered."""
    return (
        lines_digest(batch["previous_digest"], lines) == batch["digest"]
        and bool(problems)
        and problems[-1].batch_id == previous_id
        and problems[-1].problem == "digest_changed"
    )


async def _batches(
    chain: AuditChainRepository, reader: ChainReader
) -> AsyncIterator[tuple[RowMapping, RowMapping | None]]:
    """Every batch, oldest first, with the one that follows it (None for the newest)."""
    held: RowMapping | None = None
    after: int | None = None
    while True:
        await reader.pause()  # the unit of work is the reader's between its pages
        page = await chain.batch_page(after_id=after, limit=BATCH_PAGE)
        for batch in page:
            if held is not None:
                yield held, batch
            held = batch
        if len(page) < BATCH_PAGE:
            break
        after = int(page[-1]["id"])
    if held is not None:
        yield held, None


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
