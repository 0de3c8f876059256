"""A database a command cannot use is one line naming DATABASE_URL and the remedy, exit 2.

Before, a missing database was a 723-line traceback and nothing on the port 547 lines.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from session_service import migrations
from tests.cli_runs import refusal, run_cli
from tests.conftest import PostgresFactory, _admin
from tests.processes import free_port

# serve and two others that each reach the database their own way.
COMMANDS = [["serve"], ["cleanup"], ["audit", "verify"], ["migrate", "upgrade"]]


def _postgres_url(postgres: PostgresFactory, *, user: str | None = None, database: str) -> str:
    url = make_url(postgres.create()).set(database=database)
    if user is not None:
        url = url.set(username=user)
    return url.render_as_string(hide_password=False)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_missing_database_names_createdb(
    tmp_path: Path, postgres: PostgresFactory, command: list[str]
) -> None:
    url = _postgres_url(postgres, database="session_service_no_such_db")
    line = refusal(run_cli(tmp_path, *command, DATABASE_URL=url), "DATABASE_URL")
    target = make_url(url)
    assert line == (
        f'database "session_service_no_such_db" does not exist on {target.host}:{target.port}; '
        f"create it: createdb -h {target.host} -p {target.port} -U {target.username} "
        "session_service_no_such_db"
    )


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_nothing_listening_on_the_port(tmp_path: Path, command: list[str]) -> None:
    port = free_port()
    url = f"postgresql+asyncpg://app@127.0.0.1:{port}/sessions"
    line = refusal(run_cli(tmp_path, *command, DATABASE_URL=url), "DATABASE_URL")
    assert line.startswith(f"nothing listens on 127.0.0.1:{port} (connection refused)")


def test_a_server_that_never_answers(tmp_path: Path) -> None:
    """Something listens but never speaks PostgreSQL: refused after the connect timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        url = f"postgresql+asyncpg://app@127.0.0.1:{port}/sessions"
        result = run_cli(tmp_path, "serve", DATABASE_URL=url, DATABASE_CONNECT_TIMEOUT="0.5s")
    line = refusal(result, "DATABASE_URL")
    assert line.startswith(f"127.0.0.1:{port} did not answer within DATABASE_CONNECT_TIMEOUT")


@pytest.mark.parametrize("command", [["serve"], ["audit", "seal"]], ids=" ".join)
def test_wrong_credentials(tmp_path: Path, postgres: PostgresFactory, command: list[str]) -> None:
    url = _postgres_url(postgres, user="session_service_no_such_role", database="postgres")
    line = refusal(run_cli(tmp_path, *command, DATABASE_URL=url), "DATABASE_URL")
    assert line.startswith('role "session_service_no_such_role" does not exist on ')
    assert line.endswith("; check the user and password")


@pytest.fixture
def role_without_ddl(postgres: PostgresFactory) -> Iterator[str]:
    """A login that may connect but not create tables (PostgreSQL 15's default for `public`)."""
    name = f"session_service_test_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE ROLE "{name}" LOGIN'))
    asyncio.run(_admin(f'REVOKE CREATE ON SCHEMA public FROM PUBLIC, "{name}"'))
    yield name
    asyncio.run(_admin(f'DROP ROLE IF EXISTS "{name}"'))


@pytest.mark.parametrize("command", [["serve"], ["migrate", "upgrade"]], ids=" ".join)
def test_a_refused_migration(
    tmp_path: Path, postgres: PostgresFactory, role_without_ddl: str, command: list[str]
) -> None:
    database = make_url(postgres.create()).database
    assert database
    url = _postgres_url(postgres, user=role_without_ddl, database=database)
    line = refusal(run_cli(tmp_path, *command, DATABASE_URL=url), "DATABASE_URL")
    assert line == (
        "the database refused a migration: permission denied for schema public (SQLSTATE 42501)"
    )


def test_a_database_from_a_newer_version(tmp_path: Path) -> None:
    database = tmp_path / "newer.db"
    url = f"sqlite+aiosqlite:///{database}"
    migrations.upgrade(url)
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00dfeed'")
    line = refusal(run_cli(tmp_path, "serve", DATABASE_URL=url), "DATABASE_URL")
    assert line == (
        "migrations cannot run: Can't locate revision identified by 'f00dfeed' "
        "(was it migrated by a newer version?)"
    )


@pytest.mark.parametrize("command", [["serve"], ["audit", "seal"]], ids=" ".join)
def test_a_sqlite_file_that_cannot_be_created(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    url = f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'x.db'}"
    line = refusal(run_cli(tmp_path, *command, DATABASE_URL=url), "DATABASE_URL")
    assert line.startswith(f"the SQLite file {tmp_path / 'a-file' / 'x.db'} cannot be created")


@pytest.mark.parametrize(
    "command",
    [["cleanup"], ["audit", "verify"], ["audit", "seal"], ["privacy", "reapply-erasures"]],
    ids=" ".join,
)
def test_a_database_without_the_schema(tmp_path: Path, command: list[str]) -> None:
    """Before, `cleanup` on a fresh database said it was unreachable, in a traceback."""
    line = refusal(run_cli(tmp_path, *command), "DATABASE_URL")
    assert line == "the database has no schema yet; run `session-service migrate` first"


def test_serve_without_auto_migrate_needs_the_schema(tmp_path: Path) -> None:
    line = refusal(run_cli(tmp_path, "serve", AUTO_MIGRATE="false"), "DATABASE_URL")
    assert line == "the database has no schema yet; run `session-service migrate` first"


def test_pending_migrations_are_refused_a_newer_schema_is_not(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    head = migrations.head_revision()
    [previous] = [
        revision.down_revision
        for revision in ScriptDirectory.from_config(migrations.alembic_config(url)).walk_revisions()
        if revision.revision == head
    ]
    migrations.upgrade(url, str(previous))
    line = refusal(run_cli(tmp_path, "cleanup"), "DATABASE_URL")
    assert line == (
        f"the database is at revision {previous} and this version needs {head}; run "
        "`session-service migrate` first"
    )
    migrations.upgrade(url)
    with sqlite3.connect(tmp_path / "cli.db") as conn:  # as a newer version would leave it
        conn.execute("UPDATE alembic_version SET version_num = 'f00dfeed'")
    verified = run_cli(tmp_path, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
