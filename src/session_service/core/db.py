"""One engine per process, the unit of work, and database errors translated at the boundary.

A unit of work commits on success and rolls back on any exception; services and
repositories may flush, never commit. Requests get theirs from one dependency
(`http/deps.get_db_session`), background jobs and the CLI from `job_scope`: both are this
module's `unit_of_work`, the only place that commits.

Driver errors that mean "the database cannot be reached right now" become
`DatabaseUnavailable` (503) here, where the database is called: failed connects in the
engine's `do_connect` hook, and failed statements and commits by their `.orig` in the unit
of work. Everything else stays what it is (a 500 that alerts).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from session_service.core.errors import DatabaseUnavailable
from session_service.core.settings import DRIVER_URL_ARGS, Settings

log = structlog.get_logger(__name__)

# Driver errors meaning "not now": the connection is gone or refused, the server is
# starting or shutting down (57P0x), out of connection slots (53300), a statement ran past
# its timeout (57014, or asyncpg's own timeout), or SQLite busy.
DRIVER_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable; TimeoutError (asyncpg's command_timeout) is one
    asyncpg.QueryCanceledError,  # statement_timeout
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # ConnectionDoesNotExistError and other lost connections
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.exceptions.InternalClientError,
    sqlite3.OperationalError,  # locked past the busy timeout, disk I/O
)
UNAVAILABLE_DETAIL = "The database is not reachable right now; try again shortly."

SQLITE_BUSY_TIMEOUT_MS = 10_000
# An execution option: this SQLite transaction only reads (`read_scope`), so it begins
# deferred and never takes the write lock.
SQLITE_READ_ONLY = "session_service_read_only"


def unavailable(error: BaseException) -> DatabaseUnavailable | None:
    """`DatabaseUnavailable` for an error that means the database cannot be reached now.

    Only errors that come from the database layer are classified (SQLAlchemy's, its
    driver adapters', the drivers'); the driver's own exception sits behind them (`.orig`,
    then `__cause__`), and decides. An `OSError` from anywhere else is not the database's.
    """
    if isinstance(error, DatabaseUnavailable):
        return error
    if not _from_database(error):
        return None
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection within the timeout
        return DatabaseUnavailable(UNAVAILABLE_DETAIL)
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return DatabaseUnavailable(UNAVAILABLE_DETAIL)
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, DRIVER_UNAVAILABLE):
            return DatabaseUnavailable(UNAVAILABLE_DETAIL)
        orig = cause.orig if isinstance(cause, sa_exc.DBAPIError) else None
        cause = orig if orig is not None else cause.__cause__
    return None


def _from_database(error: BaseException) -> bool:
    return (
        isinstance(error, sa_exc.SQLAlchemyError | asyncpg.PostgresError | asyncpg.InterfaceError)
        or type(error).__module__.startswith("sqlalchemy.")
        or (isinstance(error, OSError) and _raised_in_driver(error))
    )


def _raised_in_driver(error: BaseException) -> bool:
    """Whether asyncpg raised this plain error (its `command_timeout` raises TimeoutError)."""
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_globals.get("__name__", "").startswith("asyncpg."):
            return True
        frame = frame.tb_next
    return False


@asynccontextmanager
async def translated_errors() -> AsyncIterator[None]:
    """Re-raise database errors that mean "unreachable now" as `DatabaseUnavailable`."""
    try:
        yield
    except Exception as error:
        translated = unavailable(error)
        if translated is None or translated is error:
            raise
        raise translated from error


def _prepare_sqlite_file(url: str) -> None:
    """The directory, and a new database file readable by its owner only (0600).

    SQLite gives its `-wal` and `-shm` files the database file's permissions.
    """
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Real transactions on SQLite: our own `BEGIN IMMEDIATE`, WAL, a busy timeout.

    `BEGIN IMMEDIATE` takes the write lock up front, so two writers queue on the busy
    timeout instead of one failing with SQLITE_BUSY when it upgrades a read lock; only a
    `read_scope` begins deferred (a WAL snapshot, no lock), since it never writes.
    `secure_delete` overwrites deleted content with zeros instead of leaving it in free
    pages (an erasure then checkpoints the WAL away: `scrub_sqlite`).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(SQLITE_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _translate_connect_errors(engine: AsyncEngine) -> None:
    """A connect that fails (refused, no slots, starting up) raises `DatabaseUnavailable`.

    Connect errors reach SQLAlchemy's pool unwrapped (the driver's `OSError`) or in the
    adapter's own class, so they are translated where the connection is made.
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except DRIVER_UNAVAILABLE as error:  # refused, timed out: the driver's own OSError
            raise DatabaseUnavailable(UNAVAILABLE_DETAIL) from error
        except Exception as error:
            translated = unavailable(error)
            if translated is None:
                raise
            raise translated from error


def _driver_args(url: str) -> tuple[URL, dict[str, Any]]:
    """The URL without asyncpg's typed arguments, and those arguments, typed.

    SQLAlchemy hands query values to asyncpg as strings, which asyncpg then fails to
    compare (`statement_cache_size=0` gave a TypeError); settings checked they are numbers.
    """
    parsed = make_url(url)
    typed: dict[str, Any] = {}
    for name, kind in DRIVER_URL_ARGS.items():
        if name in parsed.query:
            value = parsed.query[name]
            typed[name] = kind(value if isinstance(value, str) else value[-1])
    return parsed.difference_update_query(DRIVER_URL_ARGS), typed


def behind_pgbouncer(settings: Settings) -> bool:
    """Whether DATABASE_URL goes through PgBouncer's transaction pooling: said so, or implied
    by `statement_cache_size=0` in its query."""
    _, driver_args = _driver_args(settings.database.url)
    return settings.database.pgbouncer or driver_args.get("statement_cache_size") == 0


def driver_dsn(url: str) -> str:
    """A `postgresql+asyncpg://` URL as asyncpg's own DSN, without the typed arguments
    (asyncpg would send unknown query parameters to the server as settings)."""
    parsed, _ = _driver_args(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(
    settings: Settings, *, timeouts: bool = True, pool_size: int | None = None
) -> AsyncEngine:
    """Create the process's engine for the configured database.

    `pool_size`: a pool of that many connections and no overflow instead of the
    configured pool (readiness probes have one of their own, apart from the requests').

    `timeouts`: statements are cancelled after DATABASE_STATEMENT_TIMEOUT (the server's
    `statement_timeout`, and asyncpg's own `command_timeout`, which also covers waiting in
    PgBouncer's queue); migrations, whose DDL may run long, go without.

    `hide_parameters`: bound values (names, emails) never appear in exception messages, so
    no traceback or error log can carry them.

    Behind PgBouncer in transaction mode (`DATABASE_PGBOUNCER`) consecutive transactions
    may run on different server connections, so nothing may be prepared under a name:
    asyncpg's statement cache and SQLAlchemy's are off, and every statement is prepared
    unnamed, in the transaction (or single protocol sync) that runs it.
    """
    url = settings.database.url
    if settings.is_sqlite:
        _prepare_sqlite_file(url)
        engine = create_async_engine(
            url, pool_size=pool_size or 5, max_overflow=0, pool_timeout=30, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    database = settings.database
    parsed, driver_args = _driver_args(url)
    pgbouncer = behind_pgbouncer(settings)
    if pgbouncer:
        driver_args.update(statement_cache_size=0, prepared_statement_cache_size=0)
    server_settings = {"application_name": "session-service"}
    if timeouts and database.statement_timeout:
        driver_args.setdefault("command_timeout", database.statement_timeout)
        if not pgbouncer:  # PgBouncer refuses startup parameters it does not track
            server_settings["statement_timeout"] = str(int(database.statement_timeout * 1000))
    engine = create_async_engine(
        parsed,
        pool_size=pool_size or database.pool_size,
        # Overflow connections are closed on check-in, so under steady load they are opened
        # and closed per request; a fixed pool that requests queue on is faster.
        max_overflow=0 if pool_size else database.max_overflow,
        pool_timeout=database.pool_timeout,
        pool_recycle=database.pool_recycle or -1,
        hide_parameters=True,
        connect_args={
            "timeout": database.connect_timeout,
            "server_settings": server_settings,
            **driver_args,
        },
    )
    _translate_connect_errors(engine)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """ORM sessions that keep loaded values after commit (responses are built after it)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def is_postgres(db: AsyncSession | AsyncEngine) -> bool:
    """Whether this unit of work (or engine) talks to PostgreSQL rather than SQLite."""
    bind = db.get_bind() if isinstance(db, AsyncSession) else db
    return bind.dialect.name == "postgresql"


async def ping(engine: AsyncEngine) -> None:
    """One round trip on a pooled connection; raises `DatabaseUnavailable` if there is none."""
    async with translated_errors(), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@asynccontextmanager
async def read_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A transaction that only reads, every read on one snapshot; always rolled back.

    For long reads (audit verify): PostgreSQL reads at REPEATABLE READ, read-only; SQLite
    opens a deferred transaction, a WAL snapshot that takes no write lock, so writers go on
    while it reads. Whatever is to be recorded about the read goes in a unit of work after.
    """
    async with translated_errors(), maker() as db:
        try:
            if is_postgres(db):
                options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            else:
                options = {SQLITE_READ_ONLY: True}
            await db.connection(execution_options=options)
            yield db
        finally:
            await db.rollback()


AFTER_COMMIT_KEY = "after_commit"
AFTER_COMMIT_AWAIT_KEY = "after_commit_await"


def after_commit(db: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once this unit of work has committed; dropped if it rolls back."""
    db.info.setdefault(AFTER_COMMIT_KEY, []).append(callback)


def after_commit_await(db: AsyncSession, job: Callable[[], Awaitable[None]]) -> None:
    """Await `job` once this unit of work has committed (before a request's answer goes)."""
    db.info.setdefault(AFTER_COMMIT_AWAIT_KEY, []).append(job)


async def scrub_sqlite(engine: AsyncEngine) -> None:
    """Checkpoint the WAL into the database file and truncate it, after an erasure.

    With `secure_delete` the erased rows' pages were rewritten with zeros, but the WAL
    still holds their earlier versions until it is checkpointed and truncated. Other
    connections' open reads can keep a frame alive: the WAL is then emptied by the next
    erasure's or SQLite's own checkpoint, and the log says so.
    """
    pooled = await engine.raw_connection()
    try:
        driver: Any = pooled.driver_connection  # aiosqlite's connection
        cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy, _, _ = await cursor.fetchone()
        if busy:
            log.warning("sqlite_checkpoint_incomplete")
    finally:
        await greenlet_spawn(pooled.close)


@asynccontextmanager
async def unit_of_work(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Commit on success, roll back on any exception; the only place that commits."""
    async with translated_errors(), maker() as db:  # a failed rollback is translated too
        try:
            yield db
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
        for callback in db.info.pop(AFTER_COMMIT_KEY, ()):
            callback()
        for job in db.info.pop(AFTER_COMMIT_AWAIT_KEY, ()):
            await job()


def job_scope(maker: async_sessionmaker[AsyncSession]) -> AbstractAsyncContextManager[AsyncSession]:
    """One unit of work for a background job, the CLI, or a refusal's own audit event."""
    return unit_of_work(maker)
