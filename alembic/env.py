"""Async Alembic environment.

The URL comes from `config.attributes["database_url"]` (set by the service's migration
helper) or else from the service settings. Each run takes a PostgreSQL advisory lock inside
its transaction, so instances starting together apply migrations one at a time.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from session_service.core.db import make_engine
from session_service.core.settings import Settings, get_settings
from session_service.migrations import MIGRATION_LOCK_KEY, target_metadata

config = context.config


def _settings() -> Settings:
    url = config.attributes.get("database_url")
    base = get_settings()
    return base.with_overrides(database_url=url) if url else base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


async def _run_online() -> None:
    engine = make_engine(_settings(), timeouts=False)  # DDL may take long on big tables
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=_settings().database.url, target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
