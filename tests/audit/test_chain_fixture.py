"""A chain sealed by earlier code still seals and verifies the same, bit for bit.

`fixtures/sealed_chain.json` holds 45 events of every shape the canonical form meets
(non-ASCII and control characters, large and negative numbers, floats, nesting, keys that
sort oddly, null columns, whole-second timestamps), and what the code of the time made of
them on each backend: the canonical line of each event as read back, and the batches it
sealed (7 events a batch). PostgreSQL's jsonb normalises numbers (`1e16` is read back as
`10000000000000000`), so the two backends' digests differ, and each is kept.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from session_service.audit.chain import canonical
from session_service.audit.models import AuditBatch, AuditEvent
from session_service.audit.sealing import AuditSealer
from session_service.core.sqltypes import table_of
from tests.conftest import FakeClock
from tests.helpers import Running, rows, verify

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "sealed_chain.json").read_text())
EVENTS = table_of(AuditEvent)
BATCHES = table_of(AuditBatch)
BATCH_FIELDS = (
    "first_event_id",
    "last_event_id",
    "event_count",
    "digest",
    "previous_digest",
    "covers_below",
)


# PostgreSQL: each event's transaction key is its id less this, below every real transaction
# id (as migration 0009 keyed older events), so every one is ready to seal whatever the
# server's transaction counter; batch ranges shift alike.
PG_KEY_OFFSET = 2**62


def _offset(backend: str) -> int:
    return PG_KEY_OFFSET if backend == "postgresql" else 0


async def _insert_events(app: Running, backend: str) -> None:
    """The fixture's events; on PostgreSQL each its own transaction key, in id order."""
    values = []
    for event in FIXTURE["events"]:
        value = dict(event)
        value["occurred_at"] = datetime.fromisoformat(event["occurred_at"])
        session_id = event["session_id"]
        value["session_id"] = None if session_id is None else uuid.UUID(session_id)
        if backend == "postgresql":
            value["txid"] = event["id"] - PG_KEY_OFFSET
        values.append(value)
    async with app.resources.engine.begin() as conn:
        await conn.execute(EVENTS.insert(), values)


async def test_events_read_back_have_the_canonical_lines_of_before(
    app: Running, backend: str
) -> None:
    await _insert_events(app, backend)
    stored = await rows(app, "SELECT * FROM audit_events ORDER BY id")
    assert [canonical(row).decode() for row in stored] == FIXTURE["canonical"][backend]


async def test_the_same_events_seal_to_the_same_batches(
    app: Running, clock: FakeClock, backend: str
) -> None:
    await _insert_events(app, backend)
    sealer = AuditSealer(
        app.resources.sessionmaker,
        clock=clock,
        min_age=timedelta(0),
        batch_size=FIXTURE["batch_size"],
    )
    assert await sealer.seal() == len(FIXTURE["events"])
    sealed = await rows(app, f"SELECT {', '.join(BATCH_FIELDS)} FROM audit_batches ORDER BY id")
    before = [
        {**batch, "covers_below": batch["covers_below"] - _offset(backend)}
        for batch in FIXTURE["sealed"][backend]
    ]
    # The newest batch reaches up to the horizon: on PostgreSQL, the oldest running txid.
    assert sealed[-1].pop("covers_below") > sealed[-1]["last_event_id"] - _offset(backend)
    assert sealed == [*before[:-1], {k: v for k, v in before[-1].items() if k != "covers_below"}]


@pytest.mark.parametrize("tampered", [False, True])
async def test_a_chain_sealed_before_verifies(app: Running, backend: str, tampered: bool) -> None:
    await _insert_events(app, backend)
    sealed_at = datetime(2026, 1, 1, tzinfo=UTC)
    async with app.resources.engine.begin() as conn:
        await conn.execute(
            BATCHES.insert(),
            [
                {
                    **batch,
                    "covers_below": batch["covers_below"] - _offset(backend),
                    "sealed_at": sealed_at,
                }
                for batch in FIXTURE["sealed"][backend]
            ],
        )
    if tampered:  # the check is not vacuous: one changed character breaks its batch
        third = FIXTURE["sealed"][backend][2]
        async with app.resources.engine.begin() as conn:
            if backend == "postgresql":
                await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(
                text("UPDATE audit_events SET request_id = 'x' WHERE id = :id"),
                {"id": third["last_event_id"]},
            )
    report = await verify(app)
    problems: list[tuple[int, str]] = [(p.first_event_id, p.problem) for p in report.problems]
    expected: list[Any] = [(third["first_event_id"], "event_changed")] if tampered else []
    assert problems == expected
    assert (report.batches, report.events, report.unsealed_events) == (
        len(FIXTURE["sealed"][backend]),
        len(FIXTURE["events"]),
        0,
    )
