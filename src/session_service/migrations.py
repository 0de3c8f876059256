"""Programmatic Alembic: upgrade, downgrade and inspect the schema from the CLI and tests."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import MetaData, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from session_service.audit import models as _audit_models  # noqa: F401  (registers tables)
from session_service.cleanup import models as _cleanup_models  # noqa: F401
from session_service.conversations import models as _conversation_models  # noqa: F401
from session_service.core.db import make_engine
from session_service.core.db_failures import causes, database_failure
from session_service.core.settings import Settings
from session_service.deletions import models as _deletion_models  # noqa: F401
from session_service.files import models as _file_models  # noqa: F401
from session_service.idempotency import models as _idempotency_models  # noqa: F401
from session_service.sessions import models as _session_models  # noqa: F401

target_metadata: MetaData = SQLModel.metadata
T = TypeVar("T")

# Arbitrary constant shared by every instance: pg_advisory_xact_lock(MIGRATION_LOCK_KEY).
MIGRATION_LOCK_KEY = 0x5E55_0001


def _ini_path() -> Path:
    """alembic.ini at the project root (source checkout or the image's /app)."""
    for candidate in (Path(__file__).resolve().parents[2], Path.cwd()):
        path = candidate / "alembic.ini"
        if path.is_file():
            return path
    raise FileNotFoundError("alembic.ini not found next to the project or in the working directory")


def alembic_config(database_url: str) -> Config:
    """An Alembic config bound to one database URL."""
    config = Config(str(_ini_path()))
    config.attributes["database_url"] = database_url
    return config


DRIVER_ERRORS = (asyncpg.PostgresError, sqlite3.Error)
"""The drivers' own errors, whose messages are the server's words."""


class MigrationRefused(Exception):
    """The database refused a migration's statement (a missing privilege, a conflict)."""


@contextmanager
def _refusals(database_url: str) -> Iterator[None]:
    """A statement the database refused becomes `MigrationRefused` with the server's words.

    Failures to connect at all stay what they are (`core/db_failures` names them).
    """
    try:
        yield
    except sa_exc.DBAPIError as error:
        if database_failure(error, database_url) is not None:
            raise
        driver = next(
            (cause for cause in causes(error) if isinstance(cause, DRIVER_ERRORS)), error.orig
        )
        reason = (str(driver).strip().splitlines() or [type(driver).__name__])[0]
        code = getattr(driver, "sqlstate", None)
        raise MigrationRefused(f"{reason} (SQLSTATE {code})" if code else reason) from error


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; call outside the event loop)."""
    with _refusals(database_url):
        command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Revert migrations down to `revision` (`base` removes every table)."""
    with _refusals(database_url):
        command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def inspect_database(database_url: str, read: Callable[[Connection], T]) -> T:
    """Run a synchronous inspection on a short-lived connection (outside the event loop)."""

    async def _main() -> T:
        engine = make_engine(Settings(database_url=database_url))
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(_main())


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None when it has no schema yet.

    Read from Alembic's version table directly: a migration context would log two lines
    about itself on every command that only checks the schema.
    """

    def _read(connection: Connection) -> str | None:
        if not inspect(connection).has_table("alembic_version"):
            return None
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if revision is None else str(revision)

    return inspect_database(database_url, _read)


def schema_problem(database_url: str) -> str | None:
    """Why the database's schema is not ready for this version; None when it is.

    No schema yet, or migrations this version knows still pending: the command would fail
    on its first query. A revision this version does not know is a newer schema, which an
    older version may still use (as during a rolling upgrade): not refused here.
    """
    current = current_revision(database_url)
    head = head_revision()
    if current == head:
        return None
    if current is None:
        return "the database has no schema yet; run `session-service migrate` first"
    try:
        ScriptDirectory.from_config(alembic_config(database_url)).get_revision(current)
    except CommandError:
        return None
    return (
        f"the database is at revision {current} and this version needs {head}; run "
        "`session-service migrate` first"
    )
