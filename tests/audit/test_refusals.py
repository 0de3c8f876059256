"""Refusals are counted in memory: the first of a key is written at once, the rest summarised."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from session_service.app import create_app
from session_service.core.settings import Settings
from tests.conftest import T0, ClientFactory, FakeClock
from tests.faults import failing_insert
from tests.helpers import Running, audit_events, running

READ = "/api/v1/session"
SUMMARY = "request.rejected_summary"
FAILED = "session.validation_failed"


async def unknown_tokens(http: httpx.AsyncClient, count: int, **headers: str) -> None:
    for _ in range(count):
        response = await http.get(READ, headers={"X-Session-ID": str(uuid.uuid4()), **headers})
        assert response.status_code == 401


async def refused_from(client_from: ClientFactory, clock: FakeClock, count: int) -> None:
    """`count` unknown tokens from one address, then their summary's minute passes."""
    async with client_from("198.51.100.7") as http:
        await unknown_tokens(http, count)
    clock.advance(timedelta(minutes=1))


def of_type(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == event_type]


class TestCounting:
    async def test_first_at_once_then_one_summary_per_minute(
        self, client_from: ClientFactory, app: Running, clock: FakeClock
    ) -> None:
        async with client_from("198.51.100.7") as http:
            await unknown_tokens(http, 5)
            [first] = await audit_events(app)
            assert first["type"] == FAILED
            assert first["client_ip"] == "198.51.100.0/24"
            assert first["details"]["reason"] == "not_found"
            # Before the minute is over, a flush writes nothing.
            assert await app.resources.refusals.flush() == 0
            clock.advance(timedelta(minutes=1))
            assert await app.resources.refusals.flush() == 1
            await unknown_tokens(http, 3)
            clock.advance(timedelta(minutes=1))
            assert await app.resources.refusals.flush() == 1
        events = await audit_events(app)
        summaries = of_type(events, SUMMARY)
        assert len(events) == 3
        assert [s["details"]["count"] for s in summaries] == [4, 3]
        for summary in summaries:
            assert summary["client_ip"] == "198.51.100.0/24"
            assert summary["outcome"] == "failure"
            assert summary["session_id"] is None
            assert summary["details"]["event"] == FAILED
            assert summary["details"]["code"] == "not_found"
        assert summaries[0]["details"]["since"] == T0.isoformat()
        assert summaries[0]["details"]["until"] == (T0 + timedelta(minutes=1)).isoformat()

    async def test_a_quiet_key_is_forgotten_and_written_at_once_again(
        self, client_from: ClientFactory, app: Running, clock: FakeClock
    ) -> None:
        async with client_from("198.51.100.7") as http:
            await unknown_tokens(http, 1)
            clock.advance(timedelta(minutes=1))
            assert await app.resources.refusals.flush() == 0
            assert app.resources.refusals.counts == {}
            await unknown_tokens(http, 1)
        assert [e["type"] for e in await audit_events(app)] == [FAILED, FAILED]

    async def test_keys_are_per_network_and_code(
        self, client_from: ClientFactory, app: Running
    ) -> None:
        async with client_from("198.51.100.7") as http:
            await unknown_tokens(http, 2)
            assert (await http.get(READ)).status_code == 401  # malformed: another code
        async with client_from("198.51.100.200") as http:
            await unknown_tokens(http, 2)  # same /24: same key
        async with client_from("192.0.2.1") as http:
            await unknown_tokens(http, 2)
        events = await audit_events(app)
        assert [(e["client_ip"], e["details"]["reason"]) for e in events] == [
            ("198.51.100.0/24", "not_found"),
            ("198.51.100.0/24", "malformed"),
            ("192.0.2.0/24", "not_found"),
        ]

    async def test_the_keys_hold_no_token_or_user_agent(
        self, client_from: ClientFactory, app: Running, clock: FakeClock
    ) -> None:
        agent = "Mozilla/5.0 " + "x" * 500
        token = str(uuid.uuid4())
        async with client_from("198.51.100.7") as http:
            for _ in range(3):
                await http.get(READ, headers={"X-Session-ID": token, "User-Agent": agent})
        assert token not in repr(app.resources.refusals.counts)
        assert agent not in repr(app.resources.refusals.counts)
        assert "198.51.100.7" not in repr(app.resources.refusals.counts)
        clock.advance(timedelta(minutes=1))
        await app.resources.refusals.flush()
        events = await audit_events(app)
        assert len(events) == 2
        for event in events:
            assert token not in str(event)
            assert "xxxxx" not in str(event)
            assert event["user_agent"] is None

    async def test_metrics_count_every_refusal(
        self, client_from: ClientFactory, app: Running
    ) -> None:
        async with client_from("198.51.100.7") as http:
            await unknown_tokens(http, 7)
            metrics = (await http.get("/metrics")).text
        assert (
            'session_service_refusals_total{code="not_found",event="session.validation_failed"} 7.0'
            in metrics
        )


class TestMemoryBound:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"audit_refusal_keys": 2}

    async def test_keys_beyond_the_cap_are_counted_as_overflow(
        self, client_from: ClientFactory, app: Running, clock: FakeClock
    ) -> None:
        for network in range(1, 6):
            async with client_from(f"10.0.{network}.1") as http:
                await unknown_tokens(http, 2)
        assert len(app.resources.refusals.counts) == 3  # two keys and the overflow
        events = await audit_events(app)
        assert [e["client_ip"] for e in of_type(events, FAILED)] == ["10.0.1.0/24", "10.0.2.0/24"]
        [overflow] = of_type(events, SUMMARY)
        assert overflow["client_ip"] is None
        assert overflow["details"] == {
            "event": "overflow",
            "code": "overflow",
            "count": 1,
            "keys": 2,
        }
        clock.advance(timedelta(minutes=1))
        await app.resources.refusals.flush()
        summaries = of_type(await audit_events(app), SUMMARY)[1:]
        counts = {s["details"]["event"]: 0 for s in summaries}
        for summary in summaries:
            counts[summary["details"]["event"]] += summary["details"]["count"]
        # 10 refusals: 2 written singly, 1 opened the overflow, 2 + 5 summarised.
        assert counts == {FAILED: 2, "overflow": 5}


class TestDurability:
    async def test_a_failed_first_write_is_counted_in_the_summary(
        self, client_from: ClientFactory, app: Running, clock: FakeClock
    ) -> None:
        async with client_from("198.51.100.7") as http:
            async with failing_insert(app, "audit_events"):
                await unknown_tokens(http, 1)
            await unknown_tokens(http, 1)
        clock.advance(timedelta(minutes=1))
        await app.resources.refusals.flush()
        [summary] = await audit_events(app)
        assert summary["type"] == SUMMARY
        assert summary["details"]["count"] == 2

    async def test_a_failed_flush_keeps_the_counts(
        self, client_from: ClientFactory, app: Running, clock: FakeClock
    ) -> None:
        await refused_from(client_from, clock, 3)
        async with failing_insert(app, "audit_events"):
            assert await app.resources.refusals.flush() == 0
        assert await app.resources.refusals.flush() == 1
        [summary] = of_type(await audit_events(app), SUMMARY)
        assert summary["details"]["count"] == 2

    async def test_flushes_at_the_same_time_write_each_count_once(
        self, client_from: ClientFactory, app: Running, clock: FakeClock
    ) -> None:
        await refused_from(client_from, clock, 5)
        refusals = app.resources.refusals
        assert sorted(await asyncio.gather(refusals.flush(), refusals.flush())) == [0, 1]
        [summary] = of_type(await audit_events(app), SUMMARY)
        assert summary["details"]["count"] == 4

    async def test_the_background_task_writes_summaries(
        self, client_from: ClientFactory, app: Running, clock: FakeClock
    ) -> None:
        await refused_from(client_from, clock, 3)
        for _ in range(100):  # the task looks every second; wait for its write
            if of_type(await audit_events(app), SUMMARY):
                break
            await asyncio.sleep(0.1)
        [summary] = of_type(await audit_events(app), SUMMARY)
        assert summary["details"]["count"] == 2

    async def test_shutdown_writes_what_is_still_counted(
        self, app: Running, settings: Settings, clock: FakeClock
    ) -> None:
        """A second instance on the same database: its lifespan ends inside the test."""
        async with running(create_app(settings, clock=clock)) as other:
            transport = httpx.ASGITransport(app=other, client=("198.51.100.7", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                await unknown_tokens(http, 4)
        # No time has passed: only the shutdown flush can have written the summary.
        events = await audit_events(app)
        assert [e["type"] for e in events] == [FAILED, SUMMARY]
        assert events[1]["details"]["count"] == 3
