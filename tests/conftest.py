"""Fixtures: a migrated throwaway database per backend, the app over its lifespan, a client.

The core suites run twice, on SQLite and on a real PostgreSQL (a database created for this
run and dropped after it). Set TEST_POSTGRES_ADMIN_URL to point at another server;
REQUIRE_POSTGRES=1 (set by CI) turns "PostgreSQL unreachable" from a skip into a failure.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from session_service import migrations
from session_service.app import create_app
from session_service.core.settings import Settings
from session_service.observability.logging import configure_logging
from session_service.resources import Resources
from tests.helpers import Running, running

ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
TABLES = (
    "audit_anchors",
    "audit_batches",
    "audit_events",
    "cleanup_marks",
    "deletion_queue",
    "files",
    "idempotency_keys",
    "sessions",
    "session_tombstones",
)
T0 = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    """Log as the service does (console renderer, plain tracebacks)."""
    configure_logging(Settings())


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The service's log output, as JSON lines, while the test runs."""
    stream = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=stream)
    yield stream
    configure_logging(Settings())


def service_log_lines(stream: io.StringIO) -> list[dict[str, object]]:
    """The service's own lines (the test client's httpx lines are not the service's)."""
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("logger") != "httpx"]


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _asyncpg_url(database: str) -> str:
    base = ADMIN_URL.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{database}"


class PostgresFactory:
    """Creates throwaway databases on the test server and drops them at the end."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self) -> str:
        name = f"session_service_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return _asyncpg_url(name)

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresFactory]:
    """Access to the PostgreSQL test server, or a skip (a failure in CI) without one."""
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as error:
        message = f"PostgreSQL not reachable at {ADMIN_URL}: {error}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    factory = PostgresFactory()
    yield factory
    factory.drop_all()


def _sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'test.db'}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated to head, one per backend for the whole run."""
    if request.param == "sqlite":
        url = _sqlite_url(tmp_path_factory.mktemp("sqlite"))
    else:
        url = request.getfixturevalue("postgres").create()
    migrations.upgrade(url)
    return url


@pytest.fixture
def backend(database_url: str) -> str:
    """`sqlite` or `postgresql`."""
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Tests override single settings by redefining this fixture or updating the dict."""
    return {}


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, object], tmp_path: Path) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "access_log": False,
        "local_storage_dir": tmp_path / "storage",
        "signing_key_file": tmp_path / "signing.key",
        "audit_seal_interval": 0,
        "audit_seal_min_age": 0,
        # Suites create many sessions from one address; tests/protection turns limits on.
        "rate_limit_enabled": False,
        "cleanup_enabled": False,  # tests run cleanup themselves, with their own `now`
        # The test clients' host (http://testserver): URLs are built on allowed hosts only.
        "allowed_hosts": ["testserver", "127.0.0.1", "localhost"],
    }
    return Settings(**{**values, **settings_overrides})  # type: ignore[arg-type]


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Running]:
    """The app with its lifespan running; tables emptied afterwards."""
    application = create_app(settings, clock=clock)
    async with running(application) as started:
        try:
            yield started
        finally:
            engine = started.resources.engine
    # After the lifespan: background jobs (sealer, cleanup) have finished their work, so
    # nothing they write can outlive the emptying into the next test. The engine is
    # disposed by then; its next connection is a new one.
    await empty_tables(engine)


@pytest.fixture
def resources(app: Running) -> Resources:
    """The running app's resources (engine, store, services...)."""
    return app.resources


async def empty_tables(engine: AsyncEngine) -> None:
    """Delete every row of every table (the append-only guard switched off for it)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # the append-only guard's purge switch
            await conn.execute(text("SET LOCAL session_service.audit_purge = 'on'"))
        for table in TABLES:
            await conn.execute(text(f"DELETE FROM {table}"))
    await engine.dispose()


@pytest.fixture
async def client(app: Running) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


ClientFactory = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client_from(app: Running) -> ClientFactory:
    """Clients whose connections come from a given address."""

    @asynccontextmanager
    async def open_client(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http

    return open_client
