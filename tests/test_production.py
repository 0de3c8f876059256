"""Production mode refuses configurations that must not serve, naming each setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from session_service.app import create_app
from session_service.core.settings import ConfigurationRefused, Settings, production_problems

# Long, varied and free of placeholder words: what production accepts.
KEY = "Xk7pQ2mZ9vL4tR8wN3bH6jD1fG5sC0yAu"
SERVICE_KEY = "sV3nK8qW1zT6rY0pL5mB9xC2hJ7fD4gNe"
ADMIN_KEY = "aM6tP1wQ8rZ3kL0yN7vB2xC5hJ9fD4gSu"
READY: dict[str, object] = {
    "environment": "production",
    "database_url": "postgresql+asyncpg://app@db:5432/sessions",
    "storage_backend": "s3",
    "signing_keys": [KEY],
    "service_api_keys": [SERVICE_KEY],
    "admin_api_keys": [ADMIN_KEY],
    "public_base_url": "https://sessions.example",
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
        ({"service_api_keys": []}, "SERVICE_API_KEYS"),
        ({"admin_api_keys": []}, "ADMIN_API_KEYS"),
        ({"service_api_keys": ["sV3nK8qW1zT6rY0pL5mB9x"]}, "SERVICE_API_KEYS"),
        ({"admin_api_keys": [ADMIN_KEY, "aM6tP1wQ8rZ3"]}, "ADMIN_API_KEYS"),
        ({"storage_backend": "local", "workers": 2}, "STORAGE_BACKEND"),
        ({"public_base_url": None}, "PUBLIC_BASE_URL"),
    ],
)
def test_each_refusal_names_its_setting(changes: dict[str, object], setting: str) -> None:
    [problem] = refused(**changes)
    assert problem.startswith(setting), problem


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("signing_keys", "changeme"),
        ("admin_api_keys", "secret"),
        ("service_api_keys", "short-key"),
    ],
)
def test_a_short_placeholder_is_refused_for_each_of_its_weaknesses(setting: str, key: str) -> None:
    problems = refused(**{setting: [key]})
    assert problems
    assert all(problem.startswith(setting.upper()) for problem in problems), problems
    assert any("default or short key" in problem for problem in problems)


@pytest.mark.parametrize("setting", ["service_api_keys", "admin_api_keys", "signing_keys"])
@pytest.mark.parametrize(
    "word", ["example", "changeme", "replace", "secret", "password", "EXAMPLE", "PassWord"]
)
def test_a_placeholder_word_anywhere_in_a_long_key_is_refused(setting: str, word: str) -> None:
    # Long and varied otherwise: the placeholder word alone is the problem.
    key = f"Zq7Lm2Xv9Tp4Fy{word}Rk8Wn3Bh6Jd1Gu"
    [problem] = refused(**{setting: [key]})
    assert problem.startswith(setting.upper()), problem
    assert word.lower() in problem
    assert key not in problem  # the key itself is never printed


@pytest.mark.parametrize("setting", ["service_api_keys", "admin_api_keys", "signing_keys"])
def test_a_long_key_of_few_distinct_characters_is_refused(setting: str) -> None:
    low_variety = "abcdefghi" * 5  # 45 characters, 9 distinct
    [problem] = refused(**{setting: [low_variety]})
    assert problem.startswith(setting.upper()), problem
    assert "fewer than 10 distinct characters" in problem
    assert low_variety not in problem


def test_ten_distinct_characters_are_enough() -> None:
    assert refused(service_api_keys=["abcdefghij" * 4]) == []


def test_a_key_shared_by_both_roles_is_refused() -> None:
    [problem] = refused(service_api_keys=[SERVICE_KEY, ADMIN_KEY], admin_api_keys=[ADMIN_KEY])
    assert problem.startswith("ADMIN_API_KEYS"), problem
    assert "SERVICE_API_KEYS" in problem
    assert ADMIN_KEY not in problem


def test_the_signing_key_may_not_be_checked_against_the_roles() -> None:
    # Only the two API key settings must differ; a signing key is a separate secret.
    assert refused(signing_keys=[KEY], service_api_keys=[SERVICE_KEY]) == []


SECRETS: dict[str, object] = {
    "service_api_keys": ["service-value-1f4e9a"],
    "admin_api_keys": ["admin-value-7c2b8d"],
    "signing_keys": ["signing-value-3a9e1c"],
    "smtp_password": "smtp-value-5d8f2b",
    "alert_webhook_secret": "webhook-value-9b3c7e",
    "s3_secret_access_key": "s3-value-2e6a4f",
}
NOT_SECRET = {"s3_access_key_id": "s3-access-key-id"}  # the pair S3_SECRET_ACCESS_KEY needs


def test_secrets_never_show_in_repr_or_str() -> None:
    settings = Settings(**SECRETS, **NOT_SECRET)  # type: ignore[arg-type]
    shown = repr(settings) + str(settings)
    for name, value in SECRETS.items():
        for secret in value if isinstance(value, list) else [value]:
            assert str(secret) not in shown, name
    # ... and yet each is there for the code that uses it.
    assert settings.service_api_keys[0].get_secret_value() == "service-value-1f4e9a"
    assert settings.admin_api_keys[0].get_secret_value() == "admin-value-7c2b8d"
    assert settings.storage.signing_keys[0].get_secret_value() == "signing-value-3a9e1c"
    assert settings.alerts.smtp.password is not None
    assert settings.alerts.smtp.password.get_secret_value() == "smtp-value-5d8f2b"
    assert settings.alerts.webhook_secret is not None
    assert settings.alerts.webhook_secret.get_secret_value() == "webhook-value-9b3c7e"
    assert settings.storage.s3.secret_access_key is not None
    assert settings.storage.s3.secret_access_key.get_secret_value() == "s3-value-2e6a4f"


def test_secrets_read_from_the_environment_are_secret_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADMIN_API_KEYS", '["env-admin-value-4f1a"]')
    monkeypatch.setenv("s3_secret_access_key", "env-s3-value-8c2d")
    monkeypatch.setenv("S3_ACCESS_KEY_ID", "s3-access-key-id")
    settings = Settings()
    assert "env-admin-value-4f1a" not in repr(settings)
    assert "env-s3-value-8c2d" not in str(settings)
    assert [key.get_secret_value() for key in settings.admin_api_keys] == ["env-admin-value-4f1a"]


def test_the_local_backend_with_one_worker_is_allowed() -> None:
    assert refused(storage_backend="local", workers=1) == []


def test_every_problem_is_reported_at_once() -> None:
    settings = Settings(environment="production")
    problems = production_problems(settings, workers=1)
    assert {p.split(" ", 1)[0] for p in problems} == {
        "PUBLIC_BASE_URL",
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
        "PUBLIC_BASE_URL",
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
