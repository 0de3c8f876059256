"""Driver errors are classified where the database is called: unreachable now is a 503."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from session_service.app import create_app
from session_service.core.db import make_engine, unavailable
from session_service.core.errors import DatabaseUnavailable
from session_service.core.settings import Settings
from tests.helpers import assert_problem, create_session, holder, running, validate


def _wrapped(driver_error: BaseException) -> sa_exc.DBAPIError:
    """As SQLAlchemy's asyncpg adapter wraps it: the driver's error behind `.orig`."""
    adapted = Exception("adapted")
    adapted.__cause__ = driver_error
    return sa_exc.DBAPIError("SELECT 1", {}, adapted)


class TestClassification:
    @pytest.mark.parametrize(
        "driver_error",
        [
            asyncpg.TooManyConnectionsError("too many connections"),
            asyncpg.CannotConnectNowError("the database system is starting up"),
            asyncpg.exceptions.AdminShutdownError("terminating connection"),
            asyncpg.ConnectionDoesNotExistError("connection was closed"),
            ConnectionRefusedError(111, "refused"),
            sqlite3.OperationalError("database is locked"),
        ],
    )
    def test_unreachable_now_is_database_unavailable(self, driver_error: BaseException) -> None:
        assert isinstance(unavailable(_wrapped(driver_error)), DatabaseUnavailable)

    @pytest.mark.parametrize(
        "driver_error",
        [
            asyncpg.UniqueViolationError("duplicate key"),
            asyncpg.UndefinedTableError("no such table"),
            sqlite3.IntegrityError("constraint failed"),
        ],
    )
    def test_a_bug_or_a_constraint_stays_a_500(self, driver_error: BaseException) -> None:
        assert unavailable(_wrapped(driver_error)) is None

    def test_a_pool_timeout_is_database_unavailable(self) -> None:
        assert isinstance(unavailable(sa_exc.TimeoutError()), DatabaseUnavailable)

    def test_an_error_from_elsewhere_is_left_alone(self) -> None:
        assert unavailable(IsADirectoryError(21, "a directory")) is None


class TestNoConnectionSlots:
    """A role at its connection limit (SQLSTATE 53300) answers 503, not 500."""

    @pytest.fixture
    async def limited_client(
        self, settings: Settings, database_url: str
    ) -> AsyncIterator[httpx.AsyncClient]:
        if not database_url.startswith("postgresql"):
            pytest.skip("connection limits are PostgreSQL's")
        role = f"limited_{uuid.uuid4().hex[:8]}"
        admin_url = database_url.replace("postgresql+asyncpg://", "postgresql://")
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
        try:
            url = database_url.replace(
                "postgresql+asyncpg://postgres@", f"postgresql+asyncpg://{role}@"
            )
            app = create_app(settings.with_overrides(database_url=url))
            async with running(app) as started:
                transport = httpx.ASGITransport(app=started)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    yield http
        finally:
            await admin.execute(f'DROP ROLE "{role}"')
            await admin.close()

    async def test_create_and_validate_answer_503(self, limited_client: httpx.AsyncClient) -> None:
        created = await limited_client.post("/api/v1/sessions")
        assert_problem(created, 503, "database_unavailable")
        validated = await limited_client.post(
            "/api/v1/session/validate", headers={"X-Session-ID": str(uuid.uuid4())}
        )
        assert_problem(validated, 503, "database_unavailable")
        assert created.headers["Retry-After"] == "2"


class TestStatementTimeout:
    """A statement past DATABASE_STATEMENT_TIMEOUT is cancelled: 503, and the lock it waited
    for is not waited for any longer."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(database_statement_timeout=1)

    async def test_a_statement_waiting_on_a_lock_answers_503(
        self, client: httpx.AsyncClient, database_url: str
    ) -> None:
        if not database_url.startswith("postgresql"):
            pytest.skip("statement timeouts are PostgreSQL's (SQLite waits on its busy timeout)")
        session = await create_session(client)
        direct = await asyncpg.connect(
            database_url.replace("postgresql+asyncpg://", "postgresql://")
        )
        try:
            async with direct.transaction():
                await direct.execute(
                    "SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", uuid.UUID(session["id"])
                )
                answer = await client.put(
                    "/api/v1/session/details",
                    json={"name": "Ada", "email": "ada@example.org", "consent_user_data": True},
                    headers=holder(session),
                )
        finally:
            await direct.close()
        assert_problem(answer, 503, "database_unavailable")
        assert answer.headers["Retry-After"] == "2"
        assert (await validate(client, session["token"]))["valid"] is True

    async def test_migrations_go_without(self, settings: Settings, database_url: str) -> None:
        """Long DDL on a big table must not be cancelled half-way through a deploy."""
        if not database_url.startswith("postgresql"):
            pytest.skip("statement timeouts are PostgreSQL's")
        for timeouts, expected in ((True, "1s"), (False, "0")):
            engine = make_engine(settings, timeouts=timeouts)
            try:
                async with engine.connect() as conn:
                    assert await conn.scalar(text("SHOW statement_timeout")) == expected
            finally:
                await engine.dispose()


@pytest.mark.parametrize(("seconds", "pool_recycle"), [(600, 600), (0, -1)])
def test_pooled_connections_are_replaced_after_the_recycle_time(
    seconds: int, pool_recycle: int
) -> None:
    """DATABASE_POOL_RECYCLE reaches the pool; 0 means never (SQLAlchemy's -1)."""
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        database_pool_recycle=seconds,
    )
    engine = make_engine(settings)
    assert engine.pool._recycle == pool_recycle  # the pool has no public view of it
