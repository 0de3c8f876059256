"""The exit-code table (docs/operations.md), each documented code produced by a real invocation.

`SCENARIOS` holds one run per cell of the table; the table and the scenarios must name the
same (command, code) pairs, and the table must name every command the CLI has.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import typer

from session_service import migrations
from session_service.cli import cli
from session_service.core.locks import LockKey
from tests.cli_runs import refusal, run_cli
from tests.conftest import PostgresFactory
from tests.processes import free_port
from tests.test_readme import OPERATIONS
from tests.test_serve import start_server

BAD_SETTING = {"SESSION_IDLE_TTL": "0"}


@dataclass
class Run:
    """Where a scenario runs: its own directory, PostgreSQL when it needs it."""

    home: Path
    request: pytest.FixtureRequest

    @property
    def sqlite(self) -> str:
        return f"sqlite+aiosqlite:///{self.home / 'cli.db'}"

    def migrated(self) -> str:
        migrations.upgrade(self.sqlite)
        return self.sqlite

    def postgres(self) -> str:
        factory: PostgresFactory = self.request.getfixturevalue("postgres")
        url = factory.create()
        migrations.upgrade(url)
        return url

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.home, *args, **env)


def _documented() -> set[tuple[str, int]]:
    section = OPERATIONS.split("## Command line", 1)[1].split("\n## ", 1)[0]
    cells = set()
    for row in re.findall(r"^\| `([a-z -]+)` \|(.*)\|$", section, flags=re.MULTILINE):
        command, rest = row
        for code, text in enumerate(rest.split("|")):
            if text.strip():
                cells.add((command, code))
    return cells


def _commands(group: object, prefix: str = "") -> set[str]:
    """Every command the CLI has, with its group (`audit verify`)."""
    found = set()
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "commands", None):
            found |= _commands(command, f"{prefix}{name} ")
        else:
            found.add(f"{prefix}{name}")
    return found


def _serve_stops_on(sig: signal.Signals) -> Callable[[Run], None]:
    def scenario(run: Run) -> None:
        process, _, log_path = start_server(run.home)
        process.send_signal(sig)
        assert process.wait(timeout=30) == 0, log_path.read_text()

    return scenario


def serve_3(run: Run) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run.cli("serve", PORT=str(port), DATABASE_URL=run.sqlite)
    assert result.returncode == 3, result.stderr
    assert "address already in use" in result.stdout


def cleanup_1(run: Run) -> None:
    """A storage step fails: the bucket's endpoint does not answer."""
    result = run.cli(
        "cleanup",
        DATABASE_URL=run.migrated(),
        STORAGE_BACKEND="s3",
        S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        S3_ACCESS_KEY_ID="test",
        S3_SECRET_ACCESS_KEY="test",
        S3_MAX_ATTEMPTS="0",
    )
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["errors"]


def cleanup_3(run: Run) -> None:
    """Another run holds the lock (PostgreSQL: the advisory lock every instance shares)."""
    url = run.postgres()

    async def while_locked() -> subprocess.CompletedProcess[str]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", int(LockKey.CLEANUP))
                return await asyncio.to_thread(run.cli, "cleanup", DATABASE_URL=url)
        finally:
            await conn.close()

    result = asyncio.run(while_locked())
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["skipped"] is True


def audit_verify_1(run: Run) -> None:
    url = run.migrated()
    with sqlite3.connect(run.home / "cli.db") as conn:
        conn.execute(
            "INSERT INTO audit_events (occurred_at, type, outcome, details)"
            " VALUES ('2026-01-01 00:00:00.000000', 'session.created', 'success', '{}')"
        )
    assert run.cli("audit", "seal", DATABASE_URL=url, AUDIT_SEAL_MIN_AGE="0").returncode == 0
    with sqlite3.connect(run.home / "cli.db") as conn:
        conn.execute("UPDATE audit_events SET details = '{\"n\": 1}'")
    result = run.cli("audit", "verify", DATABASE_URL=url)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["ok"] is False


def _succeeds(*args: str) -> Callable[[Run], None]:
    def scenario(run: Run) -> None:
        result = run.cli(*args, DATABASE_URL=run.migrated())
        assert result.returncode == 0, result.stderr
        json.loads(result.stdout)

    return scenario


def _refused(*args: str) -> Callable[[Run], None]:
    def scenario(run: Run) -> None:
        refusal(run.cli(*args, **BAD_SETTING), "SESSION_IDLE_TTL")

    return scenario


def migrate_2_unknown_target(run: Run) -> None:
    result = run.cli("migrate", "upgrade", "9999")
    assert result.returncode == 2
    assert "9999" in result.stderr


SCENARIOS: dict[tuple[str, int], list[Callable[[Run], None]]] = {
    ("serve", 0): [_serve_stops_on(signal.SIGTERM), _serve_stops_on(signal.SIGINT)],
    ("serve", 2): [_refused("serve")],
    ("serve", 3): [serve_3],
    ("migrate", 0): [_succeeds("migrate", "upgrade")],
    ("migrate", 2): [_refused("migrate"), migrate_2_unknown_target],
    ("cleanup", 0): [_succeeds("cleanup")],
    ("cleanup", 1): [cleanup_1],
    ("cleanup", 2): [_refused("cleanup")],
    ("cleanup", 3): [cleanup_3],
    ("audit verify", 0): [_succeeds("audit", "verify")],
    ("audit verify", 1): [audit_verify_1],
    ("audit verify", 2): [_refused("audit", "verify")],
    ("audit seal", 0): [_succeeds("audit", "seal")],
    ("audit seal", 2): [_refused("audit", "seal")],
    ("privacy reapply-erasures", 0): [_succeeds("privacy", "reapply-erasures")],
    ("privacy reapply-erasures", 2): [_refused("privacy", "reapply-erasures")],
    ("openapi", 0): [_succeeds("openapi")],
    ("openapi", 2): [_refused("openapi")],
}


def test_the_table_names_every_command_and_every_scenario() -> None:
    documented = _documented()
    assert {command for command, _ in documented} == _commands(typer.main.get_command(cli))
    assert documented == set(SCENARIOS)


@pytest.mark.parametrize(
    "scenario",
    [(cell, index) for cell, runs in SCENARIOS.items() for index in range(len(runs))],
    ids=lambda cell: f"{cell[0][0]} -> {cell[0][1]} #{cell[1] + 1}",
)
def test_the_documented_code(
    scenario: tuple[tuple[str, int], int], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cell, index = scenario
    SCENARIOS[cell][index](Run(home=tmp_path, request=request))
