"""The bench's scratch PostgreSQL databases: created fresh and migrated to head."""

from __future__ import annotations

import asyncio
import os

import asyncpg

from session_service import migrations

ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def dsn(database: str) -> str:
    """asyncpg's URL of `database` on the bench server."""
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{database}"


async def fresh_database(database: str) -> str:
    """Drop and recreate `database`, migrate it to head; its asyncpg URL."""
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    url = dsn(database)
    await asyncio.to_thread(
        migrations.upgrade, url.replace("postgresql://", "postgresql+asyncpg://", 1)
    )
    return url
