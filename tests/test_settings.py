"""Grouped settings, read from the same flat environment variables and keywords as ever."""

from __future__ import annotations

from datetime import timedelta
from ipaddress import ip_network

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from session_service.core.settings import FLAT_NAMES, Settings, setting_name
from session_service.core.settings_errors import accepted_form, settings_problems


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


def test_a_list_that_is_broken_json_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPLOAD_ALLOWED_TYPES", '["application/pdf",')
    with pytest.raises(SettingsError, match="UPLOAD_ALLOWED_TYPES: not valid JSON"):
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


class TestLists:
    """Lists take JSON or comma-separated items: what a person types first works."""

    @pytest.mark.parametrize(
        ("raw", "origins"),
        [
            ("https://a.example,https://b.example", ["https://a.example", "https://b.example"]),
            (
                " https://a.example , https://b.example ,",
                ["https://a.example", "https://b.example"],
            ),
            (
                '["https://a.example", "https://b.example"]',
                ["https://a.example", "https://b.example"],
            ),
            ("https://app.example", ["https://app.example"]),
            ("", []),
            ("[]", []),
        ],
    )
    def test_json_or_comma_separated(
        self, monkeypatch: pytest.MonkeyPatch, raw: str, origins: list[str]
    ) -> None:
        monkeypatch.setenv("CORS_ORIGINS", raw)
        assert Settings().cors_origins == origins

    def test_every_list_setting_takes_both_forms(self, monkeypatch: pytest.MonkeyPatch) -> None:
        values = {
            "SERVICE_API_KEYS": ("k1,k2", '["k1", "k2"]'),
            "TRUSTED_PROXIES": ("10.0.0.0/8, ::1", '["10.0.0.0/8", "::1"]'),
            "UPLOAD_ALLOWED_TYPES": (
                "application/pdf,image/png",
                '["application/pdf","image/png"]',
            ),
            "ALLOWED_HOSTS": ("[::1],localhost", '["[::1]", "localhost"]'),
            "ALERT_EMAIL_TO": ("a@example.org,b@example.org", '["a@example.org","b@example.org"]'),
            "ADMIN_API_KEYS": ("k3 , k4", '["k3", "k4"]'),
            "SIGNING_KEYS": ("s1,s2", '["s1","s2"]'),
            "CORS_ORIGINS": (
                "https://a.example,http://b.example:8080",
                '["https://a.example", "http://b.example:8080"]',
            ),
        }
        lists = [name for name, path in FLAT_NAMES.items() if _is_list(path)]
        assert {name.upper() for name in lists} == set(values)
        for name, (typed, json_form) in values.items():
            monkeypatch.setenv(name, typed)
            comma = Settings()
            monkeypatch.setenv(name, json_form)
            assert _value(comma, name) == _value(Settings(), name), name
            assert len(_value(comma, name)) == 2

    def test_origins_must_be_origins(self) -> None:
        with pytest.raises(ValidationError, match="item 2 is not an origin"):
            Settings(cors_origins=["https://a.example", "https://b.example/"])
        assert Settings(cors_origins=["http://localhost:5173", "*"]).cors_origins


def _is_list(path: tuple[str, ...]) -> bool:
    from typing import get_origin

    from session_service.core.settings import field_at

    return get_origin(field_at(path).annotation) is list


def _value(settings: Settings, name: str) -> list[object]:
    value: object = settings
    for part in FLAT_NAMES[name.lower()]:
        value = getattr(value, part)
    assert isinstance(value, list)
    return [
        item.get_secret_value() if hasattr(item, "get_secret_value") else item for item in value
    ]


class TestDurations:
    """Seconds, units and ISO 8601 everywhere; zero only where it means something."""

    @pytest.mark.parametrize(
        ("raw", "seconds"),
        [
            ("86400", 86400),
            ("0.5", 0.5),
            ("30s", 30),
            ("15m", 900),
            ("1h", 3600),
            ("1H", 3600),
            ("7d", 604800),
            ("1h30m", 5400),
            ("PT24H", 86400),
            ("PT15M", 900),
            ("P7D", 604800),
        ],
    )
    def test_the_forms(self, monkeypatch: pytest.MonkeyPatch, raw: str, seconds: float) -> None:
        monkeypatch.setenv("SESSION_IDLE_TTL", raw)
        monkeypatch.setenv("HTTP_KEEP_ALIVE_TIMEOUT", raw if seconds <= 3600 else "60")
        settings = Settings()
        assert settings.session_idle_ttl.total_seconds() == seconds
        if seconds <= 3600:  # a float field reads the same forms
            assert settings.http.keep_alive_timeout == seconds

    @pytest.mark.parametrize("raw", ["0", "-1", "-PT5S", "0s", "1x", "inf", "nan", "", "1 h 2"])
    def test_refused_where_zero_makes_no_sense(
        self, monkeypatch: pytest.MonkeyPatch, raw: str
    ) -> None:
        monkeypatch.setenv("SESSION_IDLE_TTL", raw)
        with pytest.raises(ValidationError) as refused:
            Settings()
        [error] = refused.value.errors()
        assert setting_name(error["loc"]) == "SESSION_IDLE_TTL"

    def test_zero_where_it_is_documented_negative_nowhere(self) -> None:
        settings = Settings(audit_seal_interval="0", audit_retention="0s", last_seen_throttle=0)
        assert settings.audit_seal_interval == timedelta(0)
        assert settings.cleanup.audit_retention == timedelta(0)
        with pytest.raises(ValidationError, match="must not be negative"):
            Settings(audit_retention="-1d")
        with pytest.raises(ValidationError, match="must be more than 0"):
            Settings(cleanup_interval="-1")

    def test_whole_seconds_refuse_a_fraction(self) -> None:
        assert Settings(cors_max_age="10m").cors_max_age == 600
        with pytest.raises(ValidationError, match="whole seconds"):
            Settings(cors_max_age="1.5")


class TestRefusalLines:
    """Every refusal is one line per variable, naming it and the form it takes."""

    def test_one_line_per_variable_with_the_expected_form(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MAX_BODY_BYTES", "10")
        monkeypatch.setenv("SESSION_IDLE_TTL", "soon")
        monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,nonsense,also-nonsense")
        with pytest.raises(ValidationError) as refused:
            Settings()
        lines = sorted(settings_problems(refused.value))
        assert lines == [
            "MAX_BODY_BYTES: too small (expected an integer ≥ 1024)",
            "SESSION_IDLE_TTL: not a duration (expected a duration > 0: seconds (90), 30s, "
            "15m, 1h, 7d or ISO 8601 (PT15M, P7D))",
            "TRUSTED_PROXIES: item 2: value is not a valid IPv4 or IPv6 network; item 3: value "
            "is not a valid IPv4 or IPv6 network",
        ]

    def test_broken_json_names_the_variable_and_not_the_value(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SIGNING_KEYS", '["very-secret-signing-key"')
        with pytest.raises(SettingsError) as refused:
            Settings()
        [line] = settings_problems(refused.value)
        assert line.startswith("SIGNING_KEYS: not valid JSON (")
        assert "expected a JSON list" in line
        assert "very-secret" not in line

    def test_a_refused_secret_is_never_echoed(self) -> None:
        with pytest.raises(ValidationError) as refused:
            Settings(s3_secret_access_key="do-not-print-me")
        assert "do-not-print-me" not in " ".join(settings_problems(refused.value))

    @pytest.mark.parametrize(
        ("name", "form"),
        [
            ("max_body_bytes", "integer ≥ 1024"),
            ("database_pool_size", "integer 1 to 200"),
            ("session_idle_ttl", "duration > 0"),
            ("audit_retention", "duration ≥ 0"),
            ("http_request_timeout", "duration > 0, ≤ 1h"),
            ("shutdown_drain_seconds", "duration 0 to 5m"),
            ("cors_origins", "list"),
            ("log_level", "debug, info, warning or error"),
            ("metrics_require_admin", "true or false"),
        ],
    )
    def test_accepted_forms(self, name: str, form: str) -> None:
        assert accepted_form(name) == form
