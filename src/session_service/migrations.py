"""Programmatic Alembic: upgrade, downgrade and inspect the schema from the CLI and tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from session_service.audit import models as _audit_models  # noqa: F401  (registers tables)
from session_service.cleanup import models as _cleanup_models  # noqa: F401
from session_service.conversations import models as _conversation_models  # noqa: F401
from session_service.core.db import make_engine
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


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; call outside the event loop)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Revert migrations down to `revision` (`base` removes every table)."""
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
    """The revision the database is at, or None when it has no schema yet."""

    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return inspect_database(database_url, _read)
