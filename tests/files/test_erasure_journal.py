"""The erasure journal: a database restored from before an erasure gets the erasure again."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from session_service.cleanup.runner import job_context
from session_service.privacy.erasure import reapply_erasures
from session_service.privacy.journal import JOURNAL_PREFIX
from tests.files.helpers import upload_file
from tests.helpers import Running, audit_events, create_session, holder, session_row

DETAILS = {"name": "Restored Rita", "email": "rita@example.org", "consent_user_data": True}


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _backup(url: str, target: Path) -> None:
    """What an operator's backup does: a consistent copy of the whole database."""
    if url.startswith("sqlite"):
        with sqlite3.connect(str(make_url(url).database)) as live, sqlite3.connect(target) as copy:
            live.backup(copy)
        return
    subprocess.run(["pg_dump", "-Fc", "-f", str(target), _libpq(url)], check=True)


def _restore(url: str, source: Path) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(source) as copy, sqlite3.connect(str(make_url(url).database)) as live:
            copy.backup(live)
        return
    restore = ["pg_restore", "--clean", "--if-exists", "--single-transaction"]
    subprocess.run([*restore, "-d", _libpq(url), str(source)], check=True, capture_output=True)


async def _journaled(app: Running) -> list[str]:
    store = app.resources.store
    return [info.key async for info in store.list_prefix(JOURNAL_PREFIX)]


async def test_a_restore_from_before_an_erasure_is_erased_again(
    client: httpx.AsyncClient, app: Running, database_url: str, tmp_path: Path
) -> None:
    session = await create_session(client)
    token = (
        await client.put("/api/v1/session/details", json=DETAILS, headers=holder(session))
    ).json()["token"]
    await upload_file(client, token)
    backup = tmp_path / "backup.db"
    await asyncio.to_thread(_backup, database_url, backup)

    assert (await client.delete("/api/v1/session", headers=holder(token))).status_code == 204
    assert await _journaled(app) == [f"{JOURNAL_PREFIX}{session['id']}"]
    entry = await app.resources.store.inspect(f"{JOURNAL_PREFIX}{session['id']}", first_bytes=200)
    assert entry is not None
    assert set(json.loads(entry.first_bytes)) == {"erased_at"}  # the id and time, nothing else

    await app.resources.engine.dispose()
    await asyncio.to_thread(_restore, database_url, backup)
    await app.resources.engine.dispose()  # connections made before the restore are stale
    restored = await session_row(app, session["id"])
    assert restored is not None  # the restore brought the erased session back
    assert restored["email"] == "rita@example.org"

    resources = app.resources
    entries, reapplied = await reapply_erasures(
        resources.eraser, resources.sessionmaker, ctx=job_context()
    )
    assert (entries, [str(i) for i in reapplied]) == (1, [session["id"]])
    assert await session_row(app, session["id"]) is None
    erased = [e for e in await audit_events(app) if e["type"] == "session.erased"]
    assert erased[-1]["details"]["by"] == "journal"
    # Nothing left to do the second time.
    assert await reapply_erasures(resources.eraser, resources.sessionmaker, ctx=job_context()) == (
        1,
        [],
    )


def test_the_command_reports_what_it_reapplied(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "LOCAL_STORAGE_DIR": str(tmp_path / "storage"),
        "SIGNING_KEY_FILE": str(tmp_path / "signing.key"),
    }
    command = [sys.executable, "-m", "session_service"]
    subprocess.run([*command, "migrate", "upgrade"], env=env, check=True, capture_output=True)
    result = subprocess.run(
        [*command, "privacy", "reapply-erasures"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(result.stdout) == {"journal_entries": 0, "reapplied": []}
