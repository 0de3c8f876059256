"""One engine per process, the request-owned transaction, and database error classes.

The request (or job) owns the transaction: `get_db` and `session_scope` commit on success
and roll back on any exception. Services and repositories may flush, never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import Request
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from session_service.core.settings import Settings

# Failures that mean "the database cannot be reached", answered 503 rather than 500.
# Connect errors from asyncpg arrive unwrapped as OSError (TimeoutError is one too).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,  # admin or crash shutdown (57P0x)
    asyncpg.TooManyConnectionsError,
)

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Real transactions on SQLite: our own `BEGIN IMMEDIATE`, WAL, a busy timeout.

    `BEGIN IMMEDIATE` takes the write lock up front, so two writers queue on the busy
    timeout instead of one failing with SQLITE_BUSY when it upgrades a read lock.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(settings: Settings) -> AsyncEngine:
    """Create the process's single engine for the configured database.

    `hide_parameters`: bound values (later: names, emails) never appear in exception
    messages, so no traceback or error log can carry them.
    """
    url = settings.database_url
    if settings.is_sqlite:
        _prepare_sqlite_file(url)
        engine = create_async_engine(
            url, pool_size=5, max_overflow=0, pool_timeout=30, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        # Overflow connections are closed on check-in, so under steady load they are opened
        # and closed per request; a fixed pool that requests queue on is faster.
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args={
            "timeout": settings.database_connect_timeout,
            "server_settings": {"application_name": "session-service"},
        },
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """ORM sessions that keep loaded values after commit (responses are built after it)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


AFTER_COMMIT_KEY = "after_commit"


def after_commit(db: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once this unit of work has committed; dropped if it rolls back."""
    db.info.setdefault(AFTER_COMMIT_KEY, []).append(callback)


@asynccontextmanager
async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work for requests, jobs and the CLI: commit on success, roll back on error."""
    async with maker() as db:
        try:
            yield db
            await db.commit()
        except BaseException as error:
            if getattr(error, "keeps_changes", False):
                await db.commit()
            else:
                await db.rollback()
            raise
        for callback in db.info.pop(AFTER_COMMIT_KEY, ()):
            callback()


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work; commits before the response is sent.

    Declared with `Depends(get_db, scope="function")` so the commit runs when the endpoint
    returns, before the response goes out: a failing commit becomes a 5xx, not a lie.
    """
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with session_scope(maker) as db:
        yield db
