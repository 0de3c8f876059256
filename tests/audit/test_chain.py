"""The hash chain: sealing, and verify naming each broken batch after real tampering."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from session_service.audit.chain import GENESIS, batch_digest, canonical
from session_service.audit.models import AuditEvent
from session_service.audit.sealing import AuditSealer
from session_service.core.sqltypes import table_of
from tests.conftest import FakeClock
from tests.helpers import Running, rows, verify

ADMIN_KEY = "adm-" + "h" * 40
EVENTS = table_of(AuditEvent)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"admin_api_keys": [ADMIN_KEY]}


async def _seed(app: Running, clock: FakeClock, ids: list[int]) -> None:
    """Events with chosen ids (gaps on purpose: ids of rolled-back inserts are gaps too).

    One transaction each, in id order: on PostgreSQL the chain orders events by their
    transaction, and keeps one transaction's events in one batch.
    """
    for event_id in ids:
        async with app.resources.engine.begin() as conn:
            await conn.execute(
                EVENTS.insert(),
                {
                    "id": event_id,
                    "occurred_at": clock.now,
                    "type": "session.created",
                    "session_id": None,
                    "outcome": "success",
                    "details": {"n": event_id, "nested": {"b": 1, "a": [1, "é"]}},
                },
            )


def _sealer(app: Running, clock: FakeClock, batch_size: int = 3) -> AuditSealer:
    return AuditSealer(
        app.resources.sessionmaker, clock=clock, min_age=timedelta(0), batch_size=batch_size
    )


async def _tamper(app: Running, statement: str, **params: Any) -> None:
    async with app.resources.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # An attacker with database access can switch the append-only triggers off.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(statement), params)


async def _problems(app: Running) -> list[tuple[int, str]]:
    report = await verify(app)
    return [(problem.first_event_id, problem.problem) for problem in report.problems]


IDS = [10, 20, 30, 40, 50, 60, 70, 80, 90]  # batches of 3: [10..30] [40..60] [70..90]


class TestSealing:
    async def test_events_are_sealed_in_id_order_and_verify(
        self, app: Running, clock: FakeClock
    ) -> None:
        await _seed(app, clock, IDS)
        assert await _sealer(app, clock).seal() == 9
        batches = await rows(app, "SELECT * FROM audit_batches ORDER BY id")
        assert [(b["first_event_id"], b["last_event_id"]) for b in batches] == [
            (10, 30),
            (40, 60),
            (70, 90),
        ]
        assert batches[0]["previous_digest"] == GENESIS
        assert batches[1]["previous_digest"] == batches[0]["digest"]
        report = await verify(app)
        assert (report.ok, report.batches, report.events, report.unsealed_events) == (
            True,
            3,
            9,
            0,
        )
        assert await _sealer(app, clock).seal() == 0

    async def test_a_third_party_can_recompute_a_digest_from_the_readme_recipe(
        self, app: Running, clock: FakeClock
    ) -> None:
        await _seed(app, clock, IDS[:3])
        await _sealer(app, clock).seal()
        [batch] = await rows(app, "SELECT * FROM audit_batches")
        events = await rows(app, "SELECT * FROM audit_events ORDER BY id")
        line = canonical(events[0]).decode()
        assert line.startswith('{"client_ip":null,"details":{"n":10,"nested":{"a":[1,"é"],"b":1}}')
        assert '"occurred_at":"2026-01-15T09:30:00.000000Z"' in line
        assert batch_digest(GENESIS, events) == batch["digest"]

    async def test_events_younger_than_the_minimum_age_wait(
        self, app: Running, clock: FakeClock
    ) -> None:
        await _seed(app, clock, IDS[:3])
        sealer = AuditSealer(app.resources.sessionmaker, clock=clock, min_age=timedelta(seconds=5))
        assert await sealer.seal() == 0
        clock.advance(timedelta(seconds=5))
        assert await sealer.seal() == 3

    async def test_concurrent_sealers_never_seal_twice(
        self, app: Running, clock: FakeClock
    ) -> None:
        await _seed(app, clock, list(range(1, 301)))
        sealers = [_sealer(app, clock, batch_size=7) for _ in range(3)]
        await asyncio.gather(*(sealer.seal() for sealer in sealers))
        await sealers[0].seal()
        report = await verify(app)
        assert report.ok
        assert report.events == 300


class TestTampering:
    @pytest.fixture(autouse=True)
    async def _sealed(self, app: Running, clock: FakeClock) -> None:
        await _seed(app, clock, IDS)
        await _sealer(app, clock).seal()

    async def test_a_changed_event(self, app: Running) -> None:
        details = json.dumps({"n": 50, "forged": True})
        await _tamper(app, "UPDATE audit_events SET details = :d WHERE id = 50", d=details)
        assert await _problems(app) == [(40, "event_changed")]

    async def test_a_removed_event(self, app: Running) -> None:
        await _tamper(app, "DELETE FROM audit_events WHERE id = 80")
        assert await _problems(app) == [(70, "event_removed")]

    async def test_an_inserted_event(self, app: Running, clock: FakeClock, backend: str) -> None:
        if backend == "postgresql":  # into the past: by the transaction of a sealed event
            await _tamper(
                app,
                "INSERT INTO audit_events (id, occurred_at, type, outcome, details, txid)"
                " SELECT 25, occurred_at, type, outcome, details, txid"
                " FROM audit_events WHERE id = 20",
            )
        else:
            await _seed(app, clock, [25])
        assert await _problems(app) == [(10, "event_inserted")]

    async def test_a_late_commit_with_a_low_id_is_sealed_next_not_an_insertion(
        self, app: Running, clock: FakeClock, backend: str
    ) -> None:
        """PostgreSQL draws ids at insert: an id below sealed ones can still be committing."""
        if backend != "postgresql":
            pytest.skip("SQLite draws ids in commit order")
        await _seed(app, clock, [25])
        report = await verify(app)
        assert (report.ok, report.unsealed_events) == (True, 1)
        assert await _sealer(app, clock).seal() == 1
        assert (await verify(app)).ok

    async def test_an_altered_batch_digest(self, app: Running) -> None:
        await _tamper(
            app,
            "UPDATE audit_batches SET digest = :d WHERE first_event_id = 40",
            d="f" * 64,
        )
        assert await _problems(app) == [(40, "digest_changed")]

    async def test_two_separate_problems_are_both_named(self, app: Running) -> None:
        await _tamper(
            app, "UPDATE audit_batches SET digest = :d WHERE first_event_id = 10", d="e" * 64
        )
        await _tamper(app, "DELETE FROM audit_events WHERE id = 80")
        assert await _problems(app) == [(10, "digest_changed"), (70, "event_removed")]

    async def test_a_rewritten_link_is_chain_broken(self, app: Running) -> None:
        await _tamper(
            app,
            "UPDATE audit_batches SET previous_digest = :d WHERE first_event_id = 70",
            d="d" * 64,
        )
        assert (70, "chain_broken") in await _problems(app)

    async def test_new_events_after_the_chain_are_reported_unsealed(
        self, app: Running, clock: FakeClock
    ) -> None:
        await _seed(app, clock, [100, 110])
        report = await verify(app)
        assert report.ok
        assert report.unsealed_events == 2


class TestVerifyEndpointAndCommand:
    async def test_admin_endpoint(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        await _seed(app, clock, IDS)
        await _sealer(app, clock).seal()
        await _tamper(app, "DELETE FROM audit_events WHERE id = 20")
        response = await client.get(
            "/api/v1/admin/audit/verify", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["ok"] is False
        assert body["problems"] == [
            {
                "batch_id": body["problems"][0]["batch_id"],
                "first_event_id": 10,
                "last_event_id": 30,
                "problem": "event_removed",
            }
        ]
        assert (await client.get("/api/v1/admin/audit/verify")).status_code == 401
