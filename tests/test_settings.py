"""Grouped settings, read from the same flat environment variables and keywords as ever."""

from __future__ import annotations

from datetime import timedelta
from ipaddress import ip_network

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from session_service.core.settings import FLAT_NAMES, Settings, setting_name


def _leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= _leaves(annotation, (*prefix, name))
        else:
            found.add((*prefix, name))
    return found


def test_the_table_names_every_setting_exactly_once() -> None:
    paths = list(FLAT_NAMES.values())
    assert len(paths) == len(set(paths))
    assert set(paths) == _leaves(Settings)


def test_flat_environment_variables_reach_their_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app@db/sessions")
    monkeypatch.setenv("s3_bucket", "lower-case-name")  # names are case-insensitive
    monkeypatch.setenv("Rate_Limit_Validate", "7/minute")
    monkeypatch.setenv("SMTP_HOST", "mail.internal")
    monkeypatch.setenv("CLEANUP_INTERVAL", "PT2M")
    monkeypatch.setenv("ALERT_EMAIL_TO", '["ops@example.org"]')
    monkeypatch.setenv("TRUSTED_PROXIES", '["10.0.0.0/8"]')
    monkeypatch.setenv("PORT", "9000")
    settings = Settings()
    assert settings.database.url == "postgresql+asyncpg://app@db/sessions"
    assert not settings.is_sqlite
    assert settings.storage.s3.bucket == "lower-case-name"
    assert settings.rate_limits.validation == "7/minute"
    assert settings.alerts.smtp.host == "mail.internal"
    assert settings.cleanup.interval == timedelta(minutes=2)
    assert settings.alerts.email_to == ["ops@example.org"]
    assert settings.trusted_proxies == [ip_network("10.0.0.0/8")]
    assert settings.port == 9000


def test_keywords_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_BUCKET", "from-env")
    monkeypatch.setenv("S3_REGION", "eu-west-1")
    settings = Settings(s3_bucket="from-keyword")
    assert settings.storage.s3.bucket == "from-keyword"
    assert settings.storage.s3.region == "eu-west-1"


def test_a_list_that_is_not_json_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPLOAD_ALLOWED_TYPES", "application/pdf")
    with pytest.raises(SettingsError, match="upload_allowed_types"):
        Settings()


def test_with_overrides_validates_and_keeps_the_rest() -> None:
    base = Settings(s3_region="eu-west-1", rate_limit_enabled=False)
    changed = base.with_overrides(s3_bucket="other", cleanup_interval="60")
    assert changed.storage.s3.bucket == "other"
    assert changed.storage.s3.region == "eu-west-1"
    assert changed.cleanup.interval == timedelta(seconds=60)
    assert changed.rate_limits.enabled is False
    assert base.storage.s3.bucket == "session-service-uploads"  # frozen, unchanged
    with pytest.raises(ValueError, match="is not a rate limit"):
        base.with_overrides(rate_limit_create="lots")
    with pytest.raises(TypeError, match="unknown settings: s3_bukket"):
        base.with_overrides(s3_bukket="typo")


def test_groups_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.database.url = "postgresql+asyncpg://x"  # type: ignore[misc]


def test_errors_name_the_environment_variable() -> None:
    assert setting_name(("rate_limits", "validation")) == "RATE_LIMIT_VALIDATE"
    assert setting_name(("storage", "s3", "max_attempts")) == "S3_MAX_ATTEMPTS"
    assert setting_name(("trusted_proxies", 0)) == "TRUSTED_PROXIES.0"


@pytest.mark.parametrize(
    "half", [{"s3_access_key_id": "key-id"}, {"s3_secret_access_key": "secret-value"}]
)
def test_half_an_s3_key_pair_is_refused_naming_the_secret(half: dict[str, str]) -> None:
    # botocore would only fail when the client is created, after start-up.
    with pytest.raises(ValidationError) as refused:
        Settings(**half)  # type: ignore[arg-type]
    [error] = refused.value.errors()
    assert setting_name(error["loc"]) == "S3_SECRET_ACCESS_KEY"
    assert "secret-value" not in str(refused.value)
