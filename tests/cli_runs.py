"""Running `session-service` as an operator does: a process, its exit code, its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REFUSED = "configuration refused: "


def run_cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`session-service ARGS` in `home` with `env` over this environment (SQLite and local
    storage under `home` unless `env` says otherwise)."""
    return subprocess.run(
        [sys.executable, "-m", "session_service", *args],
        env={**os.environ, **home_env(home), **env},
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def home_env(home: Path) -> dict[str, str]:
    """A database, a storage directory and a signing key of `home`'s own."""
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{home / 'cli.db'}",
        "LOCAL_STORAGE_DIR": str(home / "storage"),
        "SIGNING_KEY_FILE": str(home / "signing.key"),
    }


def refusal(result: subprocess.CompletedProcess[str], variable: str) -> str:
    """The one refusal line of a run that exited 2 without a traceback; it names `variable`."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout
    [line] = [line for line in result.stderr.splitlines() if line.startswith(REFUSED)]
    assert line.startswith(f"{REFUSED}{variable}: "), line
    return line.removeprefix(f"{REFUSED}{variable}: ")
