"""Audit retention: whole sealed batches purged, the chain verifiable from the anchor."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from session_service.audit.events import EventType
from session_service.audit.models import AuditEvent
from session_service.audit.retention import PurgeResult, purge_before
from session_service.audit.sealing import AuditSealer
from session_service.core.context import RequestContext
from session_service.core.db import job_scope
from session_service.core.locks import LockKey
from session_service.core.sqltypes import table_of
from tests.conftest import T0, FakeClock
from tests.helpers import Running, audit_events, create_session, rows, verify

ADMIN_KEY = "adm-" + "r" * 40
CTX = RequestContext(request_id="cleanup-run-1", client_ip=None, user_agent="cleanup")
RETENTION = timedelta(days=365)
EVENTS = table_of(AuditEvent)
NOTHING = PurgeResult(batches=0, events=0, through_event_id=None, anchor_digest=None, dry_run=False)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"admin_api_keys": [ADMIN_KEY]}


async def _record(app: Running, count: int) -> list[int]:
    """`count` events at the clock's current time; their ids."""
    ids = []
    for n in range(count):
        async with job_scope(app.resources.sessionmaker) as db:
            ids.append(
                await app.resources.audit.record(
                    EventType.SESSION_VALIDATION_FAILED, db=db, ctx=CTX, details={"n": n}
                )
            )
    return ids


async def _seal(app: Running, clock: FakeClock, batch_size: int = 3) -> int:
    sealer = AuditSealer(
        app.resources.sessionmaker, clock=clock, min_age=timedelta(0), batch_size=batch_size
    )
    sealed: int = await sealer.seal()
    return sealed


async def _purge(app: Running, cutoff: datetime, **options: Any) -> PurgeResult:
    return await purge_before(
        app.resources.sessionmaker, cutoff=cutoff, audit=app.resources.audit, ctx=CTX, **options
    )


async def _tamper(app: Running, statement: str, **params: Any) -> None:
    async with app.resources.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # An attacker with database access can switch the append-only triggers off.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(statement), params)


async def _problems(app: Running) -> list[tuple[int, int, str]]:
    report = await verify(app)
    return [(p.batch_id, p.first_event_id, p.problem) for p in report.problems]


async def _batches(app: Running) -> list[dict[str, Any]]:
    return await rows(app, "SELECT * FROM audit_batches ORDER BY id")


async def _anchors(app: Running) -> list[dict[str, Any]]:
    return await rows(app, "SELECT * FROM audit_anchors ORDER BY id")


async def _purge_events(app: Running) -> list[dict[str, Any]]:
    return [e for e in await audit_events(app) if e["type"] == EventType.AUDIT_PURGED]


async def _snapshot(app: Running) -> tuple[list[dict[str, Any]], ...]:
    return (await audit_events(app), await _batches(app), await _anchors(app))


async def _old_and_new(app: Running, clock: FakeClock) -> tuple[list[int], list[int]]:
    """Six old events in two batches, then (400 days on) three new ones in a third."""
    old = await _record(app, 6)
    await _seal(app, clock)
    clock.advance(timedelta(days=400))
    new = await _record(app, 3)
    await _seal(app, clock)
    return old, new


class TestPurge:
    async def test_old_batches_go_and_verify_starts_at_the_anchor(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        for _ in range(3):  # real traffic: the events the API writes
            await create_session(client)
        await _record(app, 1)
        await _seal(app, clock, batch_size=2)
        old_batches = await _batches(app)
        old_events = await audit_events(app)
        clock.advance(timedelta(days=400))
        new = await _record(app, 2)
        await _seal(app, clock, batch_size=2)

        result = await _purge(app, clock.now - RETENTION)

        last = old_batches[-1]
        assert result == PurgeResult(
            batches=len(old_batches),
            events=len(old_events),
            through_event_id=last["last_event_id"],
            anchor_digest=last["digest"],
            dry_run=False,
        )
        remaining = await audit_events(app)
        assert [e["id"] for e in remaining][:2] == new
        assert [e["type"] for e in remaining][2:] == [EventType.AUDIT_PURGED]
        [batch] = await _batches(app)
        assert batch["previous_digest"] == last["digest"]
        [anchor] = await _anchors(app)
        assert (anchor["last_batch_id"], anchor["last_event_id"], anchor["digest"]) == (
            last["id"],
            last["last_event_id"],
            last["digest"],
        )
        assert (anchor["batches_purged"], anchor["events_purged"]) == (
            len(old_batches),
            len(old_events),
        )

        report = await verify(app)
        assert (report.ok, report.batches, report.events, report.unsealed_events) == (
            True,
            1,
            2,
            1,
        )
        assert report.anchor == {
            "last_batch_id": last["id"],
            "last_event_id": last["last_event_id"],
            "covers_below": last["covers_below"],
            "digest": last["digest"],
            "purged_at": clock.now.isoformat(),
        }
        response = await client.get(
            "/api/v1/admin/audit/verify", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert response.json()["ok"] is True
        answered = response.json()["anchor"]
        assert answered == {**report.anchor, "purged_at": answered["purged_at"]}
        assert datetime.fromisoformat(answered["purged_at"]) == clock.now

    async def test_a_batch_with_one_newer_event_is_kept_and_all_after_it(
        self, app: Running, clock: FakeClock
    ) -> None:
        first = await _record(app, 4)
        clock.now = T0 + timedelta(days=400)
        await _record(app, 1)  # the middle of the second batch: its last event is old
        clock.now = T0
        await _record(app, 4)  # ends the second batch, and a third batch all old
        clock.now = T0 + timedelta(days=400)
        await _seal(app, clock)
        before = await _batches(app)
        assert len(before) == 3

        result = await _purge(app, T0 + timedelta(days=1))

        assert (result.batches, result.events, result.through_event_id) == (1, 3, first[2])
        assert await _batches(app) == before[1:]
        assert [e["id"] for e in await audit_events(app)][:6] == list(range(first[3], first[3] + 6))
        assert (await verify(app)).ok

    async def test_unsealed_old_events_are_never_purged(
        self, app: Running, clock: FakeClock
    ) -> None:
        await _record(app, 3)
        clock.advance(timedelta(days=400))
        assert await _purge(app, clock.now - RETENTION) == NOTHING
        assert len(await audit_events(app)) == 3

    async def test_a_dry_run_reports_exactly_what_the_real_run_purges(
        self, app: Running, clock: FakeClock
    ) -> None:
        await _old_and_new(app, clock)
        before = await _snapshot(app)

        dry = await _purge(app, clock.now - RETENTION, dry_run=True)

        assert dry.dry_run
        assert (dry.batches, dry.events) == (2, 6)
        assert await _snapshot(app) == before
        real = await _purge(app, clock.now - RETENTION)
        assert real == dataclasses.replace(dry, dry_run=False)

    async def test_the_sealer_continues_from_the_anchor_after_every_batch_is_purged(
        self, app: Running, clock: FakeClock
    ) -> None:
        old = await _record(app, 6)
        await _seal(app, clock)
        clock.advance(timedelta(days=400))

        result = await _purge(app, clock.now - RETENTION)

        assert (result.batches, result.through_event_id) == (2, old[-1])
        assert await _batches(app) == []
        new = await _record(app, 2)
        assert await _seal(app, clock) == 3  # the audit.purged event, then the new ones
        [batch] = await _batches(app)
        assert batch["previous_digest"] == result.anchor_digest
        assert batch["first_event_id"] > old[-1]
        assert batch["last_event_id"] == new[-1]
        report = await verify(app)
        assert (report.ok, report.batches, report.events, report.unsealed_events) == (
            True,
            1,
            3,
            0,
        )
        assert report.anchor is not None
        assert report.anchor["last_event_id"] == old[-1]

    async def test_max_batches_purges_in_steps_each_leaving_a_verifiable_chain(
        self, app: Running, clock: FakeClock
    ) -> None:
        await _old_and_new(app, clock)
        cutoff = clock.now - RETENTION
        first = await _purge(app, cutoff, max_batches=1)
        assert (first.batches, first.events) == (1, 3)
        assert (await verify(app)).ok
        second = await _purge(app, cutoff, max_batches=1)
        assert (second.batches, second.events) == (1, 3)
        assert len(await _anchors(app)) == 2
        report = await verify(app)
        assert report.ok
        assert report.anchor is not None
        assert report.anchor["digest"] == second.anchor_digest

    async def test_purging_twice_is_idempotent(self, app: Running, clock: FakeClock) -> None:
        await _old_and_new(app, clock)
        cutoff = clock.now - RETENTION
        assert (await _purge(app, cutoff)).batches == 2
        after_first = await _snapshot(app)

        assert await _purge(app, cutoff) == NOTHING

        assert await _snapshot(app) == after_first
        assert len(await _purge_events(app)) == 1

    async def test_the_purge_is_audited_with_its_counts(
        self, app: Running, clock: FakeClock
    ) -> None:
        await _old_and_new(app, clock)
        cutoff = clock.now - RETENTION

        result = await _purge(app, cutoff)

        [event] = await _purge_events(app)
        assert event["details"] == {
            "batches": 2,
            "events": 6,
            "through_event_id": result.through_event_id,
            "anchor_digest": result.anchor_digest,
            "cutoff": cutoff.isoformat(),
        }
        assert (event["outcome"], event["request_id"]) == ("success", CTX.request_id)

    async def test_a_naive_cutoff_is_refused(self, app: Running) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            await _purge(app, datetime(2026, 1, 1))


class TestTamperingAfterAPurge:
    @pytest.fixture(autouse=True)
    async def _purged(self, app: Running, clock: FakeClock) -> None:
        await _old_and_new(app, clock)
        await _purge(app, clock.now - RETENTION)
        await _seal(app, clock)  # the audit.purged event, in a batch of its own

    async def test_a_changed_remaining_event(self, app: Running) -> None:
        batch = (await _batches(app))[0]
        details = json.dumps({"forged": True})
        await _tamper(
            app,
            "UPDATE audit_events SET details = :d WHERE id = :id",
            d=details,
            id=batch["first_event_id"],
        )
        assert await _problems(app) == [(batch["id"], batch["first_event_id"], "event_changed")]

    async def test_a_deleted_anchor_breaks_the_chain(self, app: Running) -> None:
        await _tamper(app, "DELETE FROM audit_anchors")
        first = (await _batches(app))[0]
        assert await _problems(app) == [(first["id"], first["first_event_id"], "chain_broken")]

    async def test_a_rewritten_anchor_breaks_the_chain(self, app: Running) -> None:
        await _tamper(app, "UPDATE audit_anchors SET digest = :d", d="a" * 64)
        first = (await _batches(app))[0]
        assert await _problems(app) == [(first["id"], first["first_event_id"], "chain_broken")]

    async def test_an_event_inserted_below_the_anchor(self, app: Running, backend: str) -> None:
        [anchor] = await _anchors(app)
        forged = anchor["last_event_id"] - 1
        # Below the anchor in chain order: by id on SQLite, by transaction on PostgreSQL.
        key = {"txid": anchor["covers_below"] - 1} if backend == "postgresql" else {}
        async with app.resources.engine.begin() as conn:  # inserts pass the append-only guard
            await conn.execute(
                EVENTS.insert().values(
                    id=forged,
                    occurred_at=T0,
                    type="session.created",
                    outcome="success",
                    details={},
                    **key,
                )
            )
        report = await verify(app)
        assert not report.ok
        assert [
            (p.batch_id, p.first_event_id, p.last_event_id, p.problem) for p in report.problems
        ] == [(0, forged, forged, "event_inserted")]


class TestConcurrency:
    async def test_concurrent_purges_delete_once(self, app: Running, clock: FakeClock) -> None:
        await _record(app, 30)
        await _seal(app, clock)
        clock.advance(timedelta(days=400))
        await _record(app, 3)
        await _seal(app, clock)
        cutoff = clock.now - RETENTION

        results = await asyncio.gather(*(_purge(app, cutoff) for _ in range(2)))

        assert sorted(result.batches for result in results) == [0, 10]
        assert sum(result.events for result in results) == 30
        assert len(await _anchors(app)) == 1
        assert len(await _purge_events(app)) == 1
        assert (await verify(app)).ok

    async def test_a_purge_skips_while_the_chain_lock_is_held(
        self, app: Running, clock: FakeClock, backend: str
    ) -> None:
        if backend != "postgresql":
            pytest.skip("the advisory lock is PostgreSQL's; SQLite serialises writers itself")
        await _old_and_new(app, clock)
        cutoff = clock.now - RETENTION
        async with app.resources.engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(LockKey.AUDIT_CHAIN)}
            )
            assert await _purge(app, cutoff) == NOTHING
        assert (await _purge(app, cutoff)).batches == 2


class TestAnchorsAreAppendOnly:
    @pytest.fixture(autouse=True)
    def _postgres_only(self, backend: str) -> None:
        if backend != "postgresql":
            pytest.skip("the database-level guard is PostgreSQL's")

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_anchors SET digest = 'f'",
            "DELETE FROM audit_anchors",
            "TRUNCATE audit_anchors",
        ],
    )
    async def test_plain_changes_are_refused(
        self, app: Running, clock: FakeClock, statement: str
    ) -> None:
        await _old_and_new(app, clock)
        await _purge(app, clock.now - RETENTION)
        before = await _anchors(app)
        with pytest.raises(DBAPIError, match="append-only"):
            async with app.resources.engine.begin() as conn:
                await conn.execute(text(statement))
        assert await _anchors(app) == before
