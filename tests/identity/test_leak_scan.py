"""Every flow once, then a search for every token it issued: logs, alerts, audit, database.

The token appears only in the answer that issues it. The run logs as JSON with the access
log on, sends its alert to a real webhook receiver, and reads the trail through the admin
audit query; a text dump of every table must hold no token either (only digests).
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from session_service.migrations import target_metadata
from session_service.sessions.deps import CurrentSession
from tests.files.helpers import upload_file
from tests.helpers import Running, create_session, holder
from tests.notify.conftest import WebhookReceiver, webhook_server  # noqa: F401  (fixture)

SERVICE_KEY = "s" * 40
ADMIN_KEY = "a" * 40
ALICE = {"name": "Alice", "email": "alice@example.org", "consent_user_data": True}


@pytest.fixture
def settings_overrides(webhook_server: WebhookReceiver) -> dict[str, Any]:  # noqa: F811
    return {
        "access_log": True,
        "service_api_keys": [SERVICE_KEY],
        "admin_api_keys": [ADMIN_KEY],
        "alert_webhook_url": webhook_server.url,
        "allow_client_tokens": True,
    }


async def _dump(app: Running) -> str:
    """Every row of every table, as text."""
    lines: list[str] = []
    async with app.resources.engine.connect() as conn:
        for table in target_metadata.sorted_tables:
            result = await conn.execute(text(f"SELECT * FROM {table.name}"))
            lines.extend(repr(tuple(row)) for row in result)
    return "\n".join(lines)


async def _every_flow(client: httpx.AsyncClient, app: Running) -> tuple[list[str], str]:
    """Create, validate, read, details, upload, export, reset, erase...; tokens issued, an id."""
    service = {"Authorization": f"Bearer {SERVICE_KEY}"}
    issued: list[str] = []
    first = await create_session(client)
    issued.append(first["token"])
    session_id = first["id"]
    assert (await client.post("/api/v1/session/validate", headers=holder(first))).json()["valid"]
    assert (await client.get("/api/v1/session", headers=holder(first))).status_code == 200
    details = await client.put("/api/v1/session/details", json=ALICE, headers=holder(first))
    token = details.json()["token"]
    issued.append(token)
    # The old token, now rotated: refused, audited, logged.
    assert (await client.get("/api/v1/session", headers=holder(first))).status_code == 401
    bad = await client.put("/api/v1/session/details", json={"name": "Al"}, headers=holder(token))
    assert bad.status_code == 422
    file = await upload_file(client, token)
    listed = await client.get("/api/v1/session/files", headers=holder(token))
    assert listed.status_code == 200
    link = await client.get(f"/api/v1/session/files/{file['id']}/download", headers=holder(token))
    assert link.status_code == 200
    assert (await client.get("/api/v1/session/export", headers=holder(token))).status_code == 200
    assert (await client.get(f"/api/v1/sessions/{session_id}", headers=service)).status_code == 200
    done = await client.post(f"/api/v1/sessions/{session_id}/complete", headers=service)
    assert done.status_code == 200
    failed = await client.get("/test-explode-held", headers=holder(token))  # alerts the admin
    assert failed.status_code == 500
    await app.resources.notifier.drain()
    reset = await client.post(
        "/api/v1/session/reset", json={"reason": "user_requested"}, headers=holder(token)
    )
    issued.append(reset.json()["session"]["token"])
    proposed = await client.post("/api/v1/sessions", json={"id": reset.json()["session"]["token"]})
    assert proposed.status_code == 409
    second = reset.json()["session"]
    assert (await client.delete("/api/v1/session", headers=holder(second))).status_code == 204
    third = await create_session(client)
    issued.append(third["token"])
    return issued, session_id


async def test_no_token_in_logs_alerts_audit_or_database(
    client: httpx.AsyncClient,
    app: Running,
    json_log: io.StringIO,
    webhook_server: WebhookReceiver,  # noqa: F811
) -> None:
    async def explode(session: CurrentSession) -> None:
        raise RuntimeError("fails after the token was checked")

    app.app.add_api_route("/test-explode-held", explode)
    issued, session_id = await _every_flow(client, app)
    await asyncio.sleep(0)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    trail = await client.get("/api/v1/admin/audit-events?limit=200", headers=admin)
    assert trail.status_code == 200
    places = {
        "log": json_log.getvalue(),
        "alerts": "\n".join(request.body.decode() for request in webhook_server.requests),
        "audit query": trail.text,
        "database": await _dump(app),
    }
    assert len(issued) == 4
    for place in ("log", "alerts", "audit query", "database"):  # the scan reads real content
        assert session_id in places[place], place
    assert '"path": "/api/v1/sessions/' in places["log"]  # the service routes' access log
    found = {
        place: sum(content.count(token) for token in issued) for place, content in places.items()
    }
    print(json.dumps({"tokens_issued": len(issued), "found": found}))
    assert found == dict.fromkeys(places, 0)
