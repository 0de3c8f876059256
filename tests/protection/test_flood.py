"""A flood of bad requests from one address costs counters, not audit rows."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from tests.conftest import FakeClock
from tests.helpers import Running, audit_events
from tests.protection.conftest import ClientFactory

FLOOD = 10_000
MAX_ROWS = 60
SUMMARY = "request.rejected_summary"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """The default limits (create 10/minute, holder 300/minute), counted in memory."""
    return {"rate_limit_enabled": True, "rate_limit_storage_uri": "memory://"}


async def bad_request(http: httpx.AsyncClient, index: int) -> httpx.Response:
    """Unknown tokens, 422 bodies and over-limit creates, in turn; the first 10: 422 bodies."""
    kind = 1 if index < 10 else index % 3
    if kind == 0:
        return await http.get("/api/v1/session", headers={"X-Session-ID": str(uuid.uuid4())})
    if kind == 1:
        return await http.post("/api/v1/sessions", json={"id": "not-a-uuid"})
    return await http.post("/api/v1/sessions")


class TestFlood:
    async def test_ten_thousand_bad_requests_write_a_few_dozen_rows(
        self, client_from: ClientFactory, app: Running, clock: FakeClock
    ) -> None:
        statuses: Counter[int] = Counter()
        async with client_from("203.0.113.66") as http:
            for index in range(FLOOD):
                statuses[(await bad_request(http, index)).status_code] += 1
                if index % 2_500 == 2_499:  # a minute of the service's clock passes
                    clock.advance(timedelta(minutes=1))
                    await app.resources.refusals.flush()
        assert set(statuses) == {401, 422, 429}, statuses
        events = await audit_events(app)
        summaries = [e for e in events if e["type"] == SUMMARY]
        singles = [e for e in events if e["type"] != SUMMARY]
        total = len(singles) + sum(s["details"]["count"] for s in summaries)
        print(f"flood: {len(events)} audit rows, {len(singles)} single, summaries sum to {total}")
        assert len(events) <= MAX_ROWS
        assert total == FLOOD
        assert {e["client_ip"] for e in events} == {"203.0.113.0/24"}
        assert {e["type"] for e in singles} == {
            "session.validation_failed",
            "request.rejected",
            "request.rate_limited",
        }
        # One summary per key per minute: four minutes, at most one per key in each.
        per_minute = Counter(
            (s["details"]["until"], s["details"]["event"], s["details"]["code"]) for s in summaries
        )
        assert set(per_minute.values()) == {1}
