"""One local storage directory per database: the marker, the refusal, the adoption."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import asyncpg
import pytest

from session_service import migrations
from session_service.core.settings import Settings
from session_service.storage.ownership import (
    MARKER,
    StorageOfAnotherDatabase,
    ensure_storage_owner,
    read_owner,
)
from tests.cli_runs import refusal, run_cli
from tests.conftest import PostgresFactory
from tests.test_serve import start_server


def _settings(url: str, storage: Path) -> Settings:
    return Settings(database_url=url, local_storage_dir=storage)


def _user_version(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


class TestSqlite:
    async def test_the_first_run_claims_the_directory(self, tmp_path: Path) -> None:
        database, storage = tmp_path / "a.db", tmp_path / "storage"
        await ensure_storage_owner(
            _settings(f"sqlite+aiosqlite:///{database}", storage), adopt=False
        )
        owner = read_owner(storage)
        assert owner == {
            "kind": "sqlite",
            "path": str(database.resolve()),
            "id": str(_user_version(database)),
        }
        assert _user_version(database) > 0
        assert (storage / MARKER).stat().st_mode & 0o777 == 0o600
        document = json.loads((storage / MARKER).read_text())
        assert document["format"] == "session-service.storage-owner.v1"
        # The same database again: accepted, nothing rewritten.
        before = (storage / MARKER).read_text()
        await ensure_storage_owner(
            _settings(f"sqlite+aiosqlite:///{database}", storage), adopt=False
        )
        assert (storage / MARKER).read_text() == before

    async def test_another_database_is_refused_until_adopted(self, tmp_path: Path) -> None:
        storage = tmp_path / "storage"
        first = _settings(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", storage)
        second = _settings(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", storage)
        await ensure_storage_owner(first, adopt=False)
        with pytest.raises(StorageOfAnotherDatabase) as refused:
            await ensure_storage_owner(second, adopt=False)
        assert str(tmp_path / "a.db") in str(refused.value)
        assert str(tmp_path / "b.db") in str(refused.value)
        await ensure_storage_owner(second, adopt=True)
        assert read_owner(storage) == {
            "kind": "sqlite",
            "path": str((tmp_path / "b.db").resolve()),
            "id": str(_user_version(tmp_path / "b.db")),
        }
        with pytest.raises(StorageOfAnotherDatabase):
            await ensure_storage_owner(first, adopt=False)

    async def test_a_new_file_in_the_same_place_is_another_database(self, tmp_path: Path) -> None:
        database, storage = tmp_path / "a.db", tmp_path / "storage"
        settings = _settings(f"sqlite+aiosqlite:///{database}", storage)
        await ensure_storage_owner(settings, adopt=False)
        database.unlink()  # `rm var/session-service.db`: a fresh database at the same path
        with pytest.raises(StorageOfAnotherDatabase, match=r"\(id 0\)"):
            await ensure_storage_owner(settings, adopt=False, dry_run=True)
        with pytest.raises(StorageOfAnotherDatabase):
            await ensure_storage_owner(settings, adopt=False)

    async def test_a_dry_run_writes_nothing(self, tmp_path: Path) -> None:
        database, storage = tmp_path / "a.db", tmp_path / "storage"
        settings = _settings(f"sqlite+aiosqlite:///{database}", storage)
        await ensure_storage_owner(settings, adopt=False, dry_run=True)
        assert not (storage / MARKER).exists()
        assert _user_version(database) == 0


class TestPostgres:
    def test_the_identity_is_the_cluster_and_the_database(
        self, tmp_path: Path, postgres: PostgresFactory
    ) -> None:
        url = postgres.create()
        storage = tmp_path / "storage"
        asyncio.run(ensure_storage_owner(_settings(url, storage), adopt=False))

        async def identity() -> tuple[str, str]:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
            try:
                system = await conn.fetchval(
                    "SELECT system_identifier::text FROM pg_control_system()"
                )
                return system, await conn.fetchval("SELECT current_database()")
            finally:
                await conn.close()

        system, name = asyncio.run(identity())
        assert read_owner(storage) == {
            "kind": "postgresql",
            "system_identifier": system,
            "database": name,
        }
        asyncio.run(ensure_storage_owner(_settings(url, storage), adopt=False))  # accepted

    def test_another_database_of_the_cluster_is_refused(
        self, tmp_path: Path, postgres: PostgresFactory
    ) -> None:
        storage = tmp_path / "storage"
        asyncio.run(ensure_storage_owner(_settings(postgres.create(), storage), adopt=False))
        other = _settings(postgres.create(), storage)
        with pytest.raises(StorageOfAnotherDatabase, match="PostgreSQL database"):
            asyncio.run(ensure_storage_owner(other, adopt=False))


def test_a_make_run_install_moved_to_postgresql(tmp_path: Path, postgres: PostgresFactory) -> None:
    """The issue's case: `./var/storage` kept while DATABASE_URL changes to PostgreSQL.

    The new database knows none of the old one's objects, so its cleanup would delete
    them all as orphans: serve and cleanup refuse, until the directory is adopted.
    """
    assert run_cli(tmp_path, "migrate").returncode == 0
    assert run_cli(tmp_path, "cleanup").returncode == 0  # SQLite: claims ./storage
    orphan_to_be = tmp_path / "storage" / "objects" / "uploads" / "s" / "f" / "c"
    orphan_to_be.parent.mkdir(parents=True)
    orphan_to_be.write_bytes(b"%PDF-1.7 the SQLite install's file")
    day_ago = time.time() - 86400
    os.utime(orphan_to_be, (day_ago, day_ago))

    url = postgres.create()
    migrations.upgrade(url)
    for command in (["cleanup"], ["cleanup", "--dry-run"], ["serve"]):
        line = refusal(run_cli(tmp_path, *command, DATABASE_URL=url), "LOCAL_STORAGE_DIR")
        assert "belongs to the SQLite database" in line
        assert "--adopt-storage" in line
    assert orphan_to_be.exists()

    adopted = run_cli(tmp_path, "cleanup", "--adopt-storage", DATABASE_URL=url)
    assert adopted.returncode == 0, adopted.stderr
    assert json.loads(adopted.stdout)["orphaned_objects"]["count"] == 1
    assert not orphan_to_be.exists()
    assert read_owner(tmp_path / "storage") is not None
    assert (read_owner(tmp_path / "storage") or {})["kind"] == "postgresql"
    # Now the SQLite database is the stranger.
    refusal(run_cli(tmp_path, "cleanup"), "LOCAL_STORAGE_DIR")


def test_serve_claims_the_directory_on_its_first_run(tmp_path: Path) -> None:
    process, _, log_path = start_server(tmp_path)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log_path.read_text()
    assert read_owner(tmp_path / "var" / "storage") == {
        "kind": "sqlite",
        "path": str((tmp_path / "serve.db").resolve()),
        "id": str(_user_version(tmp_path / "serve.db")),
    }
    assert "storage_claimed" in log_path.read_text()
