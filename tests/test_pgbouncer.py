"""The whole service through PgBouncer in transaction pooling mode (Debian's 1.18).

PgBouncer hands each transaction whichever server connection is free, so nothing may be
prepared under a name and no lock may outlive its transaction. The pool here is smaller
than the service's, so server connections are shared between its transactions.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from session_service import migrations
from session_service.app import create_app
from session_service.cleanup.runner import job_context
from session_service.core.db import make_engine
from session_service.core.locks import LockKey, advisory_lock_for_run
from session_service.core.settings import Settings
from tests import pgbouncer
from tests.conftest import ADMIN_URL, FakeClock, PostgresFactory
from tests.files.helpers import PDF, fetch, upload_file
from tests.helpers import Running, create_session, holder, running, validate, verify
from tests.processes import install_hint, require
from tests.test_serve import start_server


@pytest.fixture(scope="module")
def pooler() -> Iterator[int]:
    """PgBouncer's port, or a skip (a failure in CI) where it is not installed."""
    require(pgbouncer.available(), f"pgbouncer is not installed: {install_hint('pgbouncer')}")
    with pgbouncer.transaction_pooler() as port:
        yield port


@pytest.fixture
def bounced_url(postgres: PostgresFactory, pooler: int) -> str:
    """A fresh, empty database, reached through PgBouncer."""
    direct = postgres.create()
    assert ":5432/" in direct
    return direct.replace(":5432/", f":{pooler}/")


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "DATABASE_PGBOUNCER": "true"}
    return subprocess.run(
        [sys.executable, "-m", "session_service", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrations_run_again_and_again(bounced_url: str) -> None:
    """The second run used to fail: `prepared statement "__asyncpg_stmt_1__" already exists`."""
    for args in (["migrate"], ["migrate"], ["migrate", "current"]):
        done = _cli(*args, url=bounced_url)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["up_to_date"] is True


def test_a_statement_cache_size_in_the_url_is_a_number(bounced_url: str) -> None:
    """`?statement_cache_size=0` used to reach asyncpg as a string (a TypeError)."""
    url = f"{bounced_url}?statement_cache_size=0"
    migrations.upgrade(url)
    migrations.upgrade(url)
    assert migrations.current_revision(url) == migrations.head_revision()


async def test_a_run_lock_is_exclusive_and_never_outlives_its_run(bounced_url: str) -> None:
    """Two instances: one holds the lock, the other is refused, then gets it; none is left.

    A session-level lock, taken and released through PgBouncer, was released on another
    server connection than it was taken on, or taken again by a client that happened to
    be handed the holder's server connection (advisory locks are re-entrant per session).
    """
    await asyncio.to_thread(migrations.upgrade, f"{bounced_url}?statement_cache_size=0")
    settings = Settings(database_url=bounced_url, database_pgbouncer=True)
    first, second = make_engine(settings), make_engine(settings)
    try:
        for _ in range(3):
            async with advisory_lock_for_run(first, LockKey.CLEANUP) as held:
                assert held
                async with advisory_lock_for_run(second, LockKey.CLEANUP) as also:
                    assert not also
            assert await _advisory_locks_held(bounced_url) == 0
            async with advisory_lock_for_run(second, LockKey.CLEANUP) as held:
                assert held
            assert await _advisory_locks_held(bounced_url) == 0
    finally:
        await first.dispose()
        await second.dispose()


async def _visitor(client: httpx.AsyncClient, n: int) -> dict[str, Any]:
    """Everything a visitor does, as the browser would; returns the session's last token."""
    session = await create_session(client)
    token = str(session["token"])
    for _ in range(3):
        assert (await validate(client, token))["valid"] is True
    details = {"name": f"Visitor {n}", "email": f"v{n}@example.org", "consent_user_data": True}
    answer = await client.put("/api/v1/session/details", json=details, headers=holder(token))
    assert answer.status_code == 200, answer.text
    token = str(answer.json()["token"])
    file = await upload_file(client, token, name=f"file {n}.pdf")
    download = await client.get(
        f"/api/v1/session/files/{file['id']}/download", headers=holder(token)
    )
    assert (await fetch(client, download.json()["url"])).content == PDF
    for export_format in ("json", "zip"):
        exported = await client.get(
            f"/api/v1/session/export?format={export_format}", headers=holder(token)
        )
        assert exported.status_code == 200
    reset = await client.post(
        "/api/v1/session/reset", json={"reason": "expired"}, headers=holder(token)
    )
    assert reset.status_code == 201, reset.text
    return {"token": reset.json()["session"]["token"], "erase": n % 2 == 0}


async def test_every_flow_cleanup_sealing_and_retention(bounced_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(migrations.upgrade, f"{bounced_url}?statement_cache_size=0")
    clock = FakeClock()
    settings = Settings(
        database_url=bounced_url,
        database_pgbouncer=True,
        database_pool_size=8,  # more than PgBouncer's 2 server connections
        local_storage_dir=tmp_path / "storage",
        signing_key_file=tmp_path / "signing.key",
        audit_seal_interval=0,
        audit_seal_min_age=0,
        rate_limit_enabled=False,
        cleanup_enabled=False,
        audit_retention=timedelta(days=30),
        allowed_hosts=["testserver"],
    )
    async with running(create_app(settings, clock=clock)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            visitors = await asyncio.gather(*(_visitor(client, n) for n in range(8)))
            for visitor in visitors:
                if visitor["erase"]:
                    gone = await client.delete("/api/v1/session", headers=holder(visitor["token"]))
                    assert gone.status_code == 204

        await _seal(app)
        assert (await verify(app)).ok

        # Every run gets the lock and leaves none behind, whichever server connection
        # PgBouncer gave it (a session-level lock stayed held by an idle one, and every
        # later run elsewhere answered cleanup_running).
        for _ in range(3):
            report = await app.resources.cleanup.run_once(dry_run=False, ctx=job_context())
            assert report is not None
            assert report.errors == []
            assert await _advisory_locks_held(bounced_url) == 0

        clock.advance(timedelta(days=60))
        report = await app.resources.cleanup.run_once(dry_run=False, ctx=job_context())
        assert report is not None
        assert report.errors == []
        assert report.expired_sessions.count == 8  # 4 not erased, and the 4 they replaced
        await _seal(app)
        assert report.audit_events.count > 0  # sealed batches past retention were purged
        assert (await verify(app)).ok


async def _advisory_locks_held(url: str) -> int:
    """Advisory locks held in `url`'s database, seen directly (not through PgBouncer); other
    databases' are other tests' (a suite running beside this one)."""
    database = url.rsplit("/", 1)[1].split("?", 1)[0]
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        held: int = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = $1)",
            database,
        )
    finally:
        await conn.close()
    return held


async def _seal(app: Running) -> None:
    await app.resources.sealer.seal()


async def _visit_concurrently(base: str) -> None:
    """Creates and validates at once, so PgBouncer shares its server connections."""

    async def one(client: httpx.AsyncClient) -> None:
        token = (await client.post("/api/v1/sessions")).json()["token"]
        for _ in range(3):
            assert (await validate(client, token))["valid"] is True
        assert (await validate(client, str(uuid.uuid4())))["valid"] is False

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await asyncio.gather(*(one(client) for _ in range(20)))


def test_serve_migrates_and_answers(bounced_url: str, tmp_path: Path) -> None:
    """`serve` with AUTO_MIGRATE used to die at start; validate used to fail on every call."""
    env = {
        "DATABASE_URL": bounced_url,
        "DATABASE_PGBOUNCER": "true",
        "AUTO_MIGRATE": "true",
        "RATE_LIMIT_ENABLED": "false",
    }
    process, base, log_path = start_server(tmp_path, env)
    try:
        asyncio.run(_visit_concurrently(base))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert "InvalidSQLStatementName" not in log_path.read_text()
    assert "prepared statement" not in log_path.read_text()


async def test_a_busy_pgbouncer_answers_503_after_the_statement_timeout(
    bounced_url: str, pooler: int, tmp_path: Path
) -> None:
    """Every server connection busy: a validate used to wait in PgBouncer's queue for minutes."""
    await asyncio.to_thread(migrations.upgrade, f"{bounced_url}?statement_cache_size=0")
    settings = Settings(
        database_url=bounced_url,
        database_pgbouncer=True,
        database_statement_timeout=1,
        local_storage_dir=tmp_path / "storage",
        signing_key_file=tmp_path / "signing.key",
        audit_seal_interval=0,
        rate_limit_enabled=False,
        cleanup_enabled=False,
        allowed_hosts=["testserver"],
    )
    async with running(create_app(settings, clock=FakeClock())) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            token = (await create_session(client))["token"]
            # Other clients hold both of PgBouncer's server connections in open transactions.
            direct = bounced_url.replace("postgresql+asyncpg://", "postgresql://", 1)
            holders = [await asyncpg.connect(direct, statement_cache_size=0) for _ in range(2)]
            try:
                for holder_conn in holders:
                    await holder_conn.execute("BEGIN")
                    await holder_conn.execute("SELECT 1")
                answers = [
                    # The raw validate path, and a route through SQLAlchemy.
                    await client.post("/api/v1/session/validate", headers=holder(token)),
                    await client.get("/api/v1/session", headers=holder(token)),
                ]
            finally:
                for holder_conn in holders:
                    await holder_conn.close()
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert answer.json()["code"] == "database_unavailable"
                assert answer.headers["Retry-After"] == "2"
            assert (await validate(client, token))["valid"] is True  # and back at once
