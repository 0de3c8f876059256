"""The command line: migrate and openapi, as an operator runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from session_service import migrations
from session_service.cli import cli

CLI = [sys.executable, "-m", "session_service"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


class TestMigrateCommand:
    def test_upgrade_current_and_downgrade_report_json(self, tmp_path: Path) -> None:
        env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
        current = _run("migrate", "current", env=env)
        assert current.returncode == 0, current.stderr
        assert json.loads(current.stdout.splitlines()[-1])["current"] is None

        upgraded = _run("migrate", "upgrade", env=env)
        assert upgraded.returncode == 0, upgraded.stderr
        report = json.loads(upgraded.stdout.splitlines()[-1])
        assert report == {
            "current": migrations.head_revision(),
            "head": migrations.head_revision(),
            "up_to_date": True,
        }

        down = _run("migrate", "downgrade", "base", env=env)
        assert down.returncode == 0, down.stderr
        assert json.loads(down.stdout.splitlines()[-1])["current"] is None

    def test_downgrade_without_target_exits_2(self, tmp_path: Path) -> None:
        env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
        result = _run("migrate", "downgrade", env=env)
        assert result.returncode == 2
        assert "target revision" in result.stderr

    # Help is only parsing: in process (a subprocess costs seconds of imports per test).
    def test_help_lists_the_commands(self) -> None:
        result = CliRunner().invoke(cli, ["--help"], prog_name="session-service")
        assert result.exit_code == 0, result.output
        for command in ("serve", "migrate", "cleanup", "audit", "privacy", "openapi"):
            assert command in result.stdout

    @pytest.mark.parametrize(
        "command",
        [
            ["serve"],
            ["migrate"],
            ["cleanup"],
            ["audit", "verify"],
            ["audit", "seal"],
            ["privacy", "reapply-erasures"],
            ["openapi"],
        ],
    )
    def test_every_command_has_help(self, command: list[str]) -> None:
        result = CliRunner().invoke(cli, [*command, "--help"], prog_name="session-service")
        assert result.exit_code == 0, result.stderr
        assert "Usage:" in result.stdout

    def test_an_unknown_revision_exits_2_and_json_stays_clean(self, tmp_path: Path) -> None:
        env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
        result = _run("migrate", "upgrade", "9999", env=env)
        assert result.returncode == 2
        assert "9999" in result.stderr
        assert result.stdout == ""
        upgraded = _run("migrate", "upgrade", env=env)
        json.loads(upgraded.stdout)  # only the report on stdout; logs go to stderr


class TestOpenApiCommand:
    def test_prints_the_document(self) -> None:
        result = _run("openapi")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["info"]["title"] == "session-service"


class TestAuditCommands:
    def test_seal_then_verify_and_exit_1_after_tampering(self, tmp_path: Path) -> None:
        import sqlite3

        database = tmp_path / "audit.db"
        env = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "AUDIT_SEAL_MIN_AGE": "0"}
        assert _run("migrate", "upgrade", env=env).returncode == 0
        with sqlite3.connect(database) as conn:
            conn.executemany(
                "INSERT INTO audit_events (occurred_at, type, outcome, details)"
                " VALUES ('2026-01-01 00:00:00.000000', 'session.created', 'success', ?)",
                [(f'{{"n": {n}}}',) for n in range(5)],
            )
        sealed = _run("audit", "seal", env=env)
        assert json.loads(sealed.stdout.splitlines()[-1]) == {"sealed_events": 5}
        verified = _run("audit", "verify", env=env)
        assert verified.returncode == 0, verified.stderr
        assert json.loads(verified.stdout.splitlines()[-1])["ok"] is True
        with sqlite3.connect(database) as conn:
            conn.execute("UPDATE audit_events SET details = '{\"n\": 99}' WHERE id = 3")
        broken = _run("audit", "verify", env=env)
        assert broken.returncode == 1
        report = json.loads(broken.stdout.splitlines()[-1])
        assert [p["problem"] for p in report["problems"]] == ["event_changed"]


@pytest.mark.parametrize(
    "command",
    [[], ["serve"], ["migrate"], ["cleanup"], ["audit"], ["audit", "verify"], ["openapi"]],
    ids=lambda command: " ".join(command) or "session-service",
)
def test_help_has_no_type_labels(command: list[str]) -> None:
    """`--port PORT`, `--dry-run`: not `<int>`, `<bool>` or `<str>`."""
    result = CliRunner().invoke(cli, [*command, "--help"], prog_name="session-service")
    assert result.exit_code == 0
    assert not re.search(r"<[a-z|\[\]-]+>", result.stdout), result.stdout
