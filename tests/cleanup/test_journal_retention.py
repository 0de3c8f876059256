"""Erasure journal entries are kept for ERASURE_JOURNAL_RETENTION, then cleanup deletes them."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from session_service.privacy.journal import JOURNAL_PREFIX
from tests.cleanup.conftest import run_cleanup
from tests.conftest import FakeClock
from tests.helpers import Running, audit_events, create_session, holder

RETENTION = timedelta(days=30)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"erasure_journal_retention": RETENTION}


async def _journal(app: Running) -> list[str]:
    return [info.key async for info in app.resources.store.list_prefix(JOURNAL_PREFIX)]


async def _erase(client: httpx.AsyncClient) -> str:
    session = await create_session(client)
    assert (await client.delete("/api/v1/session", headers=holder(session))).status_code == 204
    return str(session["id"])


async def test_entries_go_once_older_than_the_retention(
    client: httpx.AsyncClient, app: Running, clock: FakeClock
) -> None:
    erased = await _erase(client)
    assert await _journal(app) == [f"{JOURNAL_PREFIX}{erased}"]

    clock.advance(RETENTION - timedelta(hours=1))
    report = await run_cleanup(app)
    assert report.erasure_journal.count == 0
    assert await _journal(app) == [f"{JOURNAL_PREFIX}{erased}"]

    clock.advance(timedelta(hours=2))
    dry = await run_cleanup(app, dry_run=True)
    assert (dry.erasure_journal.count, dry.erasure_journal.items) == (1, [erased])
    assert await _journal(app) == [f"{JOURNAL_PREFIX}{erased}"]

    report = await run_cleanup(app)
    assert (report.erasure_journal.count, report.erasure_journal.items) == (1, [erased])
    assert await _journal(app) == []
    [summary] = [e for e in await audit_events(app) if e["type"] == "cleanup.completed"][-1:]
    assert summary["details"]["counts"]["erasure_journal"] == 1


@pytest.mark.parametrize("settings_overrides", [{"erasure_journal_retention": 0}])
async def test_a_retention_of_zero_keeps_them_forever(
    client: httpx.AsyncClient, app: Running, clock: FakeClock
) -> None:
    erased = await _erase(client)
    clock.advance(timedelta(days=3650))
    report = await run_cleanup(app)
    assert report.erasure_journal.count == 0
    assert await _journal(app) == [f"{JOURNAL_PREFIX}{erased}"]
