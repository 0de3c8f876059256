"""How the sealer and verify read the chain: rows as the database hands them over, in pages.

The lines made from `chain_rows` are the recipe's lines of the same events read plainly
(PostgreSQL formats times, session ids and details itself); the reader's ranges are
exactly `chain_rows`' ranges, read on from page to page; sealing and verifying in tiny
pages and runs gives the batches that the recipe gives.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from session_service.audit import sealing
from session_service.audit.chain import GENESIS, batch_digest, canonical, canonical_lines
from session_service.audit.chain_reader import ChainReader
from session_service.audit.chain_repository import AuditChainRepository
from session_service.audit.models import AuditEvent
from session_service.audit.sealing import AuditSealer, verify_chain
from session_service.core.db import read_scope
from session_service.core.sqltypes import table_of
from tests.conftest import T0, FakeClock
from tests.helpers import Running, rows

EVENTS = table_of(AuditEvent)
# PostgreSQL: chosen transaction keys sit below every real one (as migration 0009 keyed
# older events), so the events are ready to seal whatever the server's counter.
BASE = -(2**62)
PIECES = ["a", "é", "日本", "😀", '"', "\\", "/", "\n", "\t", "\x01", "\x1f", "\x7f", "\u2028", " "]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 8)))


def _details(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 2 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**53 + 1, 10**20, -(10**25), rng.randrange(-(10**9), 10**9)])
    if kind == 2:
        return rng.choice([0.1, 1.5, -2.5e-5, 1e16, 3.0, 123456.789, rng.random()])
    if kind in (3, 4):
        return _text(rng)
    if kind == 5:
        return [_details(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {_text(rng): _details(rng, depth + 1) for _ in range(rng.randrange(4))}


FIRST, LAST = (
    datetime(1000, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
)


def _event(rng: random.Random, event_id: int, latest: datetime = LAST) -> dict[str, Any]:
    """An event of any shape; it occurred at `latest` at the latest (the sealer's clock)."""
    span = int((LAST - FIRST) / timedelta(microseconds=1))
    moment = rng.choice(
        [
            FIRST,
            LAST,
            T0,
            T0 - timedelta(seconds=1),
            FIRST + timedelta(microseconds=rng.randrange(span)),
        ]
    )
    return {
        "id": event_id,
        "occurred_at": min(moment, latest),
        "type": rng.choice(["session.created", _text(rng)]),
        "session_id": rng.choice([None, uuid.UUID(int=rng.getrandbits(128))]),
        "request_id": rng.choice([None, _text(rng)]),
        "client_ip": rng.choice([None, "203.0.113.0/24", _text(rng)]),
        "user_agent": rng.choice([None, _text(rng)]),
        "outcome": rng.choice(["success", "failure"]),
        "details": {"n": event_id, "v": _details(rng)},
    }


async def _insert(app: Running, backend: str, events: list[dict[str, Any]], **keys: int) -> None:
    """The events, each its own transaction key (or `keys[str(id)]`) on PostgreSQL."""
    values = []
    for event in events:
        value = dict(event)
        if backend == "postgresql":
            value["txid"] = BASE + keys.get(str(event["id"]), event["id"])
        values.append(value)
    async with app.resources.engine.begin() as conn:
        await conn.execute(EVENTS.insert(), values)


async def _recipe_events(app: Running, backend: str) -> list[dict[str, Any]]:
    """Every event read plainly, in chain order: what the README's recipe reads."""
    key = "txid" if backend == "postgresql" else "id"
    return await rows(app, f"SELECT * FROM audit_events ORDER BY {key}, id")


async def test_lines_from_chain_rows_are_the_recipes(app: Running, backend: str) -> None:
    rng = random.Random(20261207)
    await _insert(app, backend, [_event(rng, n) for n in range(1, 301)])
    async with read_scope(app.resources.sessionmaker) as db:
        read = await AuditChainRepository(db).chain_rows(None, None)
    expected = [canonical(event).decode() for event in await _recipe_events(app, backend)]
    assert canonical_lines(read) == expected


async def test_the_reader_takes_exactly_chain_rows_ranges(app: Running, backend: str) -> None:
    rng = random.Random(7)
    # Keys 1..60, some shared by several events (one transaction's) on PostgreSQL.
    keys = {str(n): (n + 1) // 2 if backend == "postgresql" else n for n in range(1, 61)}
    await _insert(app, backend, [_event(rng, n) for n in range(1, 61)], **keys)
    base = BASE if backend == "postgresql" else 0
    bounds = [None, *range(base, base + 70, 3)]
    async with read_scope(app.resources.sessionmaker) as db:
        chain = AuditChainRepository(db)
        async with ChainReader(chain, None, None, page=4) as reader:
            start: int | None = None
            for _ in range(60):  # mostly on from the last range; now and then anywhere
                if rng.random() < 0.3:
                    start = rng.choice(bounds)
                low = base if start is None else start
                below = low + rng.randrange(-2, 12)
                expected = list(await _plain(chain, reader, start, below))
                assert [tuple(row) for row in await reader.take(start, below)] == expected
                start = below


async def _plain(
    chain: AuditChainRepository, reader: ChainReader, start: int | None, below: int
) -> list[tuple[Any, ...]]:
    """`chain_rows(start, below)` in one query, while the reader waits."""
    await reader.pause()
    if start is not None and below <= start:
        return []
    return [tuple(row) for row in await chain.chain_rows(start, below)]


async def test_sealing_and_verifying_in_small_pages_and_runs(
    app: Running, clock: FakeClock, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(3)
    await _insert(app, backend, [_event(rng, n, T0) for n in range(1, 42)])
    sealer = AuditSealer(
        app.resources.sessionmaker,
        clock=clock,
        min_age=timedelta(0),
        batch_size=3,
        page_size=5,
        run_batches=2,
    )
    assert await sealer.seal() == 41
    batches = await rows(app, "SELECT * FROM audit_batches ORDER BY id")
    events = await _recipe_events(app, backend)
    assert [batch["event_count"] for batch in batches] == [3] * 13 + [2]
    previous = GENESIS
    for index, batch in enumerate(batches):
        covered = events[index * 3 : index * 3 + 3]
        assert batch["first_event_id"] == covered[0]["id"]
        assert batch["previous_digest"] == previous
        assert batch["digest"] == batch_digest(previous, covered)
        previous = batch["digest"]
    monkeypatch.setattr(sealing, "BATCH_PAGE", 2)  # stored batches in pages of 2 as well
    async with read_scope(app.resources.sessionmaker) as db:
        report = await verify_chain(db, page_size=4)
    assert (report.ok, report.batches, report.events) == (True, 14, 41)
    sealed_below = int(batches[-1]["covers_below"])
    async with app.resources.engine.begin() as conn:  # one more, sealed on its own
        await conn.execute(
            EVENTS.insert(),
            {**_event(rng, 99, T0), **({"txid": sealed_below} if backend == "postgresql" else {})},
        )
    assert await sealer.seal() == 1


async def test_one_transaction_larger_than_a_batch_is_one_batch(
    app: Running, clock: FakeClock, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite's key is the id: one event per key")
    rng = random.Random(11)
    keys = {"1": 1, "2": 1, "3": 2, "4": 2, "5": 2, "6": 2, "7": 2, "8": 3}
    await _insert(app, backend, [_event(rng, n, T0) for n in range(1, 9)], **keys)
    sealer = AuditSealer(
        app.resources.sessionmaker, clock=clock, min_age=timedelta(0), batch_size=3, page_size=4
    )
    assert await sealer.seal() == 8
    batches = await rows(app, "SELECT * FROM audit_batches ORDER BY id")
    assert [(b["first_event_id"], b["event_count"]) for b in batches] == [(1, 2), (3, 5), (8, 1)]
    assert [int(b["covers_below"]) for b in batches][:2] == [BASE + 2, BASE + 3]
    events = await _recipe_events(app, backend)
    assert batches[1]["digest"] == batch_digest(batches[0]["digest"], events[2:7])
    async with read_scope(app.resources.sessionmaker) as db:
        assert (await verify_chain(db, page_size=2)).ok
    assert json.loads(json.dumps(events[0]["details"])) == events[0]["details"]
