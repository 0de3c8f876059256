"""Migration 0008 on data: no id from before it works as a token, and nothing is lost."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from session_service import migrations
from session_service.app import create_app
from session_service.core.settings import Settings
from tests.helpers import create_session, holder, running
from tests.test_migrations import fresh_url  # noqa: F401  (fixture: a new database, both backends)

SERVICE = {"Authorization": "Bearer " + "s" * 40}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_STAMP = sa.DateTime(timezone=True)
SESSIONS = sa.table(
    "sessions",
    *(sa.column(name, sa.Uuid()) for name in ("id", "storage_id")),
    *(sa.column(name, sa.String()) for name in ("status", "name", "email")),
    *(sa.column(name, _STAMP) for name in ("created_at", "updated_at", "last_seen_at")),
    sa.column("expires_at", _STAMP),
    sa.column("consent_user_data", sa.Boolean()),
)
FILES = sa.table(
    "files",
    *(sa.column(name, sa.Uuid()) for name in ("id", "session_id")),
    *(sa.column(name, sa.String()) for name in ("storage_key", "original_name")),
    *(sa.column(name, sa.String()) for name in ("content_type", "status")),
    *(sa.column(name, sa.BigInteger()) for name in ("declared_size", "stored_size")),
    *(sa.column(name, _STAMP) for name in ("created_at", "updated_at", "uploaded_at")),
)


async def _old_data(url: str) -> tuple[uuid.UUID, str]:
    """A pending session with a stored file, as written before tokens existed."""
    now = datetime.now(UTC)
    session_id, storage_id, file_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    key = f"uploads/{storage_id}/{file_id}/a.pdf"
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            SESSIONS.insert(),
            [
                {
                    "id": session_id,
                    "storage_id": storage_id,
                    "status": "pending_verification",
                    "name": "Old",
                    "email": "old@example.org",
                    "created_at": now,
                    "updated_at": now,
                    "last_seen_at": now,
                    "expires_at": now + timedelta(days=1),
                    "consent_user_data": True,
                }
            ],
        )
        await conn.execute(
            FILES.insert(),
            [
                {
                    "id": file_id,
                    "session_id": session_id,
                    "storage_key": key,
                    "original_name": "a.pdf",
                    "content_type": "application/pdf",
                    "status": "uploaded",
                    "declared_size": 10,
                    "stored_size": 10,
                    "created_at": now,
                    "updated_at": now,
                    "uploaded_at": now,
                }
            ],
        )
    await engine.dispose()
    return session_id, key


async def test_old_ids_never_work_as_tokens_and_rows_stay_reachable(
    fresh_url: str,  # noqa: F811  (the imported fixture)
    tmp_path: Path,
) -> None:
    url = fresh_url
    await asyncio.to_thread(migrations.upgrade, url, "0007")
    old_id, key = await _old_data(url)
    await asyncio.to_thread(migrations.upgrade, url)
    settings = Settings(
        database_url=url,
        local_storage_dir=tmp_path / "storage",
        signing_key_file=tmp_path / "signing.key",
        service_api_keys=["s" * 40],
        rate_limit_enabled=False,
        cleanup_enabled=False,
        audit_seal_interval=0,
    )
    async with running(create_app(settings)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            check = await client.post("/api/v1/session/validate", headers=holder(str(old_id)))
            assert check.json() == {"valid": False, "reason": "upgraded", "action": "reset"}
            found = await client.get(f"/api/v1/sessions/{old_id}", headers=SERVICE)
            assert found.status_code == 200
            assert found.json()["email"] == "old@example.org"
            # A reset with the old id starts a new session; the old row stays as it was.
            reset = await client.post(
                "/api/v1/session/reset", json={"reason": "upgraded"}, headers=holder(str(old_id))
            )
            assert reset.status_code == 201
            new = await create_session(client)
            # No value the audit trail holds works as a token.
            async with app.resources.engine.connect() as conn:
                trail = " ".join(
                    repr(tuple(row))
                    for row in await conn.execute(sa.text("SELECT * FROM audit_events"))
                )
                keys = [
                    row[0] for row in await conn.execute(sa.text("SELECT storage_key FROM files"))
                ]
            values = set(UUID.findall(trail)) | {str(old_id), new["id"]}
            assert values
            for value in values:
                answer = await client.post("/api/v1/session/validate", headers=holder(value))
                assert answer.json()["valid"] is False, value
            assert keys == [key]  # the file keeps its key
            assert (await client.post("/api/v1/session/validate", headers=holder(new))).json()[
                "valid"
            ]
    await asyncio.to_thread(migrations.downgrade, url, "0007")
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        result = await conn.execute(sa.text("SELECT id, status FROM sessions"))
        statuses = {uuid.UUID(str(row[0])): row[1] for row in result}
    await engine.dispose()
    assert statuses[old_id] == "pending_verification"  # works again by its id, as before
    assert statuses[uuid.UUID(new["id"])] == "expired"  # its id was logged as a public name
    await asyncio.to_thread(migrations.upgrade, url)
