"""A refused setting ends every command the same way: exit 2, one line naming the variable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from session_service.cli import cli
from session_service.core.settings import get_settings
from tests.cli_runs import run_cli

COMMANDS = [
    ["serve"],
    ["cleanup"],
    ["cleanup", "--dry-run"],
    ["migrate"],
    ["audit", "verify"],
    ["audit", "seal"],
    ["privacy", "reapply-erasures"],
    ["openapi"],
]

# (variable, value): each refused for its own reason, and said so in one line.
REFUSED = [
    ("CORS_ORIGINS", "https://app.example/"),  # a path: never an Origin a browser sends
    ("SESSION_IDLE_TTL", "0"),  # every session would expire at birth
    ("CLEANUP_INTERVAL", "-1"),  # cleanup back to back
    ("UPLOAD_URL_TTL", "soon"),
    ("SESSION_MAX_AGE", "inf"),
    ("MAX_BODY_BYTES", "10"),  # below its documented minimum
    ("UPLOAD_ALLOWED_TYPES", '["application/pdf",'),  # broken JSON: pydantic-settings' error
    ("SIGNING_KEYS", '["a-secret-value"'),
    ("TRUSTED_PROXIES", "10.0.0.0/8,nonsense"),
    ("HTTP_REQUEST_TIMEOUT", "5"),  # below HTTP_HEADER_TIMEOUT
    ("LOG_LEVEL", "loud"),
    ("AUTO_MIGRATE", "maybe"),
    ("PORT", "70000"),
    ("RATE_LIMIT_CREATE", "lots"),
    ("DATABASE_URL", "mysql://db/sessions"),
    ("S3_SECRET_ACCESS_KEY", "half-a-pair"),
    ("CORS_MAX_AGE", "1.5"),
]


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Each invocation reads the environment it is given (the settings are cached)."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("variable", "value"), REFUSED, ids=[v for v, _ in REFUSED])
def test_every_command_refuses_in_one_line(
    tmp_path: Path, command: list[str], variable: str, value: str
) -> None:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'never-opened.db'}",
        "LOCAL_STORAGE_DIR": str(tmp_path / "storage"),
        variable: value,
    }
    result = CliRunner().invoke(cli, command, env=env, prog_name="session-service")
    assert result.exit_code == 2, (result.output, result.exception)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"configuration refused: {variable}: "), line
    assert result.stdout == ""
    if "secret" in value:
        assert value not in line
    assert not (tmp_path / "never-opened.db").exists()  # refused before anything is touched


def test_serve_as_a_process_prints_the_line_and_no_traceback(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "serve", SESSION_IDLE_TTL="0", CORS_ORIGINS="https://app.example")
    assert result.returncode == 2
    assert result.stderr == (
        "configuration refused: SESSION_IDLE_TTL: must be more than 0 (expected a duration > 0: "
        "seconds (90), 30s, 15m, 1h, 7d or ISO 8601 (PT15M, P7D))\n"
    )


def test_what_a_person_types_is_accepted(tmp_path: Path) -> None:
    """The issue's first contact: a comma-separated list and `1h` start the service."""
    result = run_cli(
        tmp_path,
        "openapi",
        CORS_ORIGINS="https://app.example, https://admin.example",
        SERVICE_API_KEYS="k1,k2",
        SESSION_IDLE_TTL="1h",
        CLEANUP_INTERVAL="15m",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{")
