"""The command line: migrate and openapi, as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from session_service import migrations

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

    def test_help_lists_the_commands(self) -> None:
        result = _run("--help")
        assert result.returncode == 0
        for command in ("serve", "migrate", "openapi"):
            assert command in result.stdout


class TestOpenApiCommand:
    def test_prints_the_document(self) -> None:
        result = _run("openapi")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["info"]["title"] == "session-service"
