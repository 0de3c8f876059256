"""An audit event commits with its change or not at all, in both directions.

Failures are real: database triggers make a statement or the COMMIT itself fail.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from tests.faults import failing_commit, failing_insert
from tests.helpers import (
    Running,
    assert_problem,
    audit_events,
    count_sessions,
    create_session,
    holder,
    rows,
    session_row,
)

Fault = Callable[[Running], AbstractAsyncContextManager[None]]

FAULTS: dict[str, Fault] = {
    # No change without its event: the event's INSERT fails after the change was written.
    "event_write_fails": lambda app: failing_insert(app, "audit_events"),
    # No event without its change: the change's INSERT fails.
    "change_write_fails": lambda app: failing_insert(app, "sessions"),
    # Every statement succeeds, COMMIT fails: also proves the commit runs before the
    # response is sent (otherwise the client would get a 201 for nothing).
    "commit_fails": lambda app: failing_commit(app, "sessions"),
}


@pytest.fixture(params=sorted(FAULTS))
def fault(request: pytest.FixtureRequest) -> Fault:
    return FAULTS[request.param]


class TestAtomicity:
    async def test_failed_create_leaves_neither_session_nor_event(
        self, client: httpx.AsyncClient, app: Running, fault: Fault
    ) -> None:
        async with fault(app):
            response = await client.post("/api/v1/sessions")
        assert_problem(response, 500, "internal_error")
        assert "injected" not in response.text
        assert await count_sessions(app) == 0
        assert await audit_events(app) == []

    async def test_failed_reset_changes_nothing(
        self, client: httpx.AsyncClient, app: Running, fault: Fault
    ) -> None:
        old = await create_session(client)
        async with fault(app):
            response = await client.post(
                "/api/v1/session/reset",
                headers=holder(old),
                json={"reason": "expired"},
            )
        assert_problem(response, 500, "internal_error")
        row = await session_row(app, old["id"])
        assert row is not None
        assert row["status"] == "active"
        assert await count_sessions(app) == 1
        assert [e["type"] for e in await audit_events(app)] == ["session.created"]
        # The old token was not buried either: it still works.
        assert await rows(app, "SELECT digest FROM session_tombstones") == []
        validate = await client.post("/api/v1/session/validate", headers=holder(old))
        assert validate.json()["valid"] is True
