"""Production mode refuses configurations that must not serve, naming each setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from session_service.app import create_app
from session_service.core.settings import ConfigurationRefused, Settings, production_problems

KEY = "k" * 40
READY: dict[str, object] = {
    "environment": "production",
    "database_url": "postgresql+asyncpg://app@db:5432/sessions",
    "storage_backend": "s3",
    "signing_keys": [KEY],
    "service_api_keys": ["s" * 40],
    "admin_api_keys": ["a" * 40],
}


def refused(**changes: object) -> list[str]:
    settings = Settings(**{**READY, **changes})  # type: ignore[arg-type]
    return production_problems(settings, workers=settings.workers)


def test_a_complete_production_configuration_is_accepted() -> None:
    assert refused() == []


def test_development_accepts_everything() -> None:
    assert production_problems(Settings(), workers=4) == []


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"database_url": "sqlite+aiosqlite:///./var/x.db"}, "DATABASE_URL"),
        ({"signing_keys": []}, "SIGNING_KEYS"),
        ({"signing_keys": ["changeme"]}, "SIGNING_KEYS"),
        ({"service_api_keys": []}, "SERVICE_API_KEYS"),
        ({"admin_api_keys": []}, "ADMIN_API_KEYS"),
        ({"admin_api_keys": ["secret"]}, "ADMIN_API_KEYS"),
        ({"service_api_keys": ["short-key"]}, "SERVICE_API_KEYS"),
        ({"storage_backend": "local", "workers": 2}, "STORAGE_BACKEND"),
    ],
)
def test_each_refusal_names_its_setting(changes: dict[str, object], setting: str) -> None:
    [problem] = refused(**changes)
    assert problem.startswith(setting), problem


def test_the_local_backend_with_one_worker_is_allowed() -> None:
    assert refused(storage_backend="local", workers=1) == []


def test_every_problem_is_reported_at_once() -> None:
    settings = Settings(environment="production")
    problems = production_problems(settings, workers=1)
    assert {p.split(" ", 1)[0] for p in problems} == {
        "DATABASE_URL",
        "SIGNING_KEYS",
        "SERVICE_API_KEYS",
        "ADMIN_API_KEYS",
    }


def test_the_app_refuses_to_build() -> None:
    with pytest.raises(ConfigurationRefused) as refusal:
        create_app(Settings(environment="production"))
    assert any(p.startswith("DATABASE_URL") for p in refusal.value.problems)


def test_serve_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    env = {**os.environ, "ENVIRONMENT": "production", "WORKERS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "session_service", "serve", "--workers", "3"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("configuration refused: ") for line in lines)
    named = {line.removeprefix("configuration refused: ").split(" ", 1)[0] for line in lines}
    assert named == {
        "DATABASE_URL",
        "SIGNING_KEYS",
        "SERVICE_API_KEYS",
        "ADMIN_API_KEYS",
        "STORAGE_BACKEND=local",
    }


def test_serve_reports_an_invalid_value_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "RATE_LIMIT_CREATE": "ten a minute"}
    result = subprocess.run(
        [sys.executable, "-m", "session_service", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("configuration refused: RATE_LIMIT_CREATE:")
    assert "Traceback" not in result.stderr


def test_cleanup_refuses_too(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "session_service", "cleanup"],
        env={**os.environ, "ENVIRONMENT": "production"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("configuration refused: DATABASE_URL")
    assert result.stdout == ""
