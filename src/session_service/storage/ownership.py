"""One local storage directory per database: a marker file says whose objects it holds.

Cleanup deletes every object no file row of its database refers to. Pointing a second
database at a directory full of another database's objects (a `make run` install moved
to PostgreSQL keeps `./var/storage`) would make the newcomer delete them all as orphans.
So the directory records its database in `.session-service-storage.json`; the first
`serve` or `cleanup` writes it, later ones refuse a different database unless told to
adopt the directory (`--adopt-storage`, which rewrites the marker).

A database's identity must stay the same for its whole life, across restarts and
restores in place, and differ between two databases that could be live at once:

- PostgreSQL: the cluster's system identifier (`pg_control_system()`, fixed when the
  cluster is created, and kept by streaming replicas and in-place restores) and the
  database's name. A dump restored into another cluster is another database until
  adopted: the copy and the original may both be running. Where the function is not
  granted (some managed services), the URL's host and port stand in for the cluster.
- SQLite: the database file's resolved path and a random number the service stores in
  the file's header (`PRAGMA user_version`, which SQLite keeps for applications and
  Alembic does not use), written with the first marker. The path tells copies apart, the
  number a different file put in the same place.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Final

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from session_service.core.clock import utc_now
from session_service.core.db import make_engine
from session_service.core.settings import Settings

log = structlog.get_logger(__name__)

MARKER: Final = ".session-service-storage.json"
FORMAT: Final = "session-service.storage-owner.v1"

Identity = dict[str, str]


class StorageOfAnotherDatabase(Exception):
    """The local storage directory belongs to another database than DATABASE_URL's."""

    def __init__(self, directory: Path, owner: Identity, current: Identity) -> None:
        super().__init__(
            f"LOCAL_STORAGE_DIR: {directory} belongs to {describe(owner)}, but DATABASE_URL is "
            f"{describe(current)}, whose cleanup would delete those objects as orphans; point "
            "LOCAL_STORAGE_DIR at a directory of its own, or run with --adopt-storage to hand "
            "this one over"
        )


def describe(identity: Identity) -> str:
    """A database in words, for the refusal."""
    if identity.get("kind") == "sqlite":
        return f"the SQLite database {identity.get('path')} (id {identity.get('id')})"
    if "system_identifier" in identity:
        server = f"system {identity['system_identifier']}"
    else:
        server = f"server {identity.get('server')}"
    return f'the PostgreSQL database "{identity.get("database")}" of {server}'


async def database_identity(engine: AsyncEngine, *, assign: bool) -> Identity:
    """The identity of `engine`'s database; `assign`: give a SQLite file its id if new."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            return await _postgres_identity(conn)
        return await _sqlite_identity(conn, assign=assign)


async def _postgres_identity(conn: AsyncConnection) -> Identity:
    database = str(await conn.scalar(text("SELECT current_database()")))
    granted = await conn.scalar(
        text("SELECT has_function_privilege('pg_control_system()', 'EXECUTE')")
    )
    if granted:
        system = await conn.scalar(text("SELECT system_identifier::text FROM pg_control_system()"))
        return {"kind": "postgresql", "system_identifier": str(system), "database": database}
    url = conn.engine.url
    return {
        "kind": "postgresql",
        "server": f"{url.host or 'localhost'}:{url.port or 5432}",
        "database": database,
    }


async def _sqlite_identity(conn: AsyncConnection, *, assign: bool) -> Identity:
    number = int(await conn.scalar(text("PRAGMA user_version")) or 0)
    if number == 0 and assign:
        number = 1 + secrets.randbelow(2**31 - 1)  # a positive 32-bit signed integer
        await conn.exec_driver_sql(f"PRAGMA user_version = {number}")
    path = await asyncio.to_thread(_resolved, conn.engine.url.database or "")
    return {"kind": "sqlite", "path": path, "id": str(number)}


def _resolved(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def read_owner(directory: Path) -> Identity | None:
    """The database the directory's marker names; None when there is no marker."""
    try:
        document = json.loads((directory / MARKER).read_text())
    except FileNotFoundError:
        return None
    database = document.get("database") if isinstance(document, dict) else None
    if not isinstance(database, dict):
        return {"kind": "unreadable marker"}
    return {str(key): str(value) for key, value in database.items()}


def write_owner(directory: Path, identity: Identity) -> None:
    """Record `identity` as the directory's database (atomically, readable by its owner)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    document = {"format": FORMAT, "database": identity, "written_at": utc_now().isoformat()}
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".marker-")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(temporary, directory / MARKER)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


async def ensure_storage_owner(settings: Settings, *, adopt: bool, dry_run: bool = False) -> None:
    """Refuse a local directory of another database; claim a new one (unless `dry_run`).

    `adopt` hands the directory to this database. A dry run writes nothing: no marker, no
    SQLite id; it only refuses what a real run would refuse.
    """
    if settings.storage.backend != "local":
        return
    directory = settings.storage.local_dir
    engine = make_engine(settings, pool_size=1)
    try:
        current = await database_identity(engine, assign=not dry_run)
    finally:
        await engine.dispose()
    owner = read_owner(directory)
    if owner == current:
        return
    if owner is not None and not adopt:
        raise StorageOfAnotherDatabase(directory, owner, current)
    if dry_run:
        return
    write_owner(directory, current)
    log.info(
        "storage_adopted" if owner else "storage_claimed",
        directory=str(directory),
        database=describe(current),
    )
