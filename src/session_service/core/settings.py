"""Typed configuration: every setting is an environment variable with a zero-config default."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from limits import parse_many
from pydantic import (
    BeforeValidator,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


def _seconds_or_iso(value: object) -> object:
    """Environment values are text: a plain number means seconds (`86400`, `0.5`)."""
    if isinstance(value, str):
        try:
            return timedelta(seconds=float(value))
        except ValueError:
            return value  # ISO 8601 (`PT24H`) or `HH:MM:SS`, parsed by pydantic
    return value


# A duration setting: seconds (`86400`) or ISO 8601 (`PT24H`, `P7D`).
Duration = Annotated[timedelta, BeforeValidator(_seconds_or_iso)]


class AuditValidations(StrEnum):
    """Which validation attempts leave an audit event."""

    FAILURES = "failures"
    ALL = "all"


class Settings(BaseSettings):
    """The service's whole configuration; the README table mirrors these fields."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Literal["development", "production"] = Field(
        default="development",
        description="production refuses to start with SQLite, generated signing keys, "
        "missing or weak API keys, or the local backend behind several workers.",
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/session-service.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///... or postgresql+asyncpg://...",
    )
    database_pool_size: int = Field(
        default=10, ge=1, le=200, description="Pooled PostgreSQL connections per process."
    )
    database_max_overflow: int = Field(
        default=0,
        ge=0,
        le=200,
        description="Extra connections beyond the pool; each is closed again on return.",
    )
    database_pool_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a pooled connection."
    )
    database_connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a new database connection."
    )
    auto_migrate: bool = Field(
        default=True, description="Apply pending migrations when `serve` starts."
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    session_idle_ttl: Duration = Field(
        default=timedelta(hours=24), description="Idle time after which an active session expires."
    )
    pending_ttl: Duration = Field(
        default=timedelta(days=7),
        description="Idle time after which a pending_verification session expires.",
    )
    last_seen_throttle: Duration = Field(
        default=timedelta(minutes=1),
        description="Validations refresh last_seen_at at most this often per session.",
    )
    audit_validations: AuditValidations = AuditValidations.FAILURES
    audit_seal_interval: Duration = Field(
        default=timedelta(seconds=10),
        description="How often the background sealer runs (it also wakes after commits); "
        "0 turns the background sealer off.",
    )
    audit_seal_min_age: Duration = Field(
        default=timedelta(seconds=5),
        description="Events are sealed once this old, so none that commits late is skipped.",
    )

    audit_retention: Duration = Field(
        default=timedelta(days=365),
        description="Audit events older than this are purged by cleanup, in whole sealed "
        "batches; 0 keeps them forever.",
    )

    cleanup_enabled: bool = Field(
        default=True, description="Run the cleanup job in this instance (one at a time overall)."
    )
    cleanup_interval: Duration = Field(
        default=timedelta(minutes=5), description="How often the cleanup job runs."
    )
    upload_grace: Duration = Field(
        default=timedelta(minutes=30),
        description="A pending upload not completed within this time is deleted.",
    )
    orphan_min_age: Duration = Field(
        default=timedelta(minutes=10),
        description="Objects of no live session are deleted once this old.",
    )
    cleanup_batch_size: int = Field(
        default=500, ge=1, le=1000, description="Rows or objects handled per transaction or call."
    )
    cleanup_alert_threshold: int = Field(
        default=1000, ge=0, description="A run deleting more than this alerts the admin."
    )
    cleanup_report_limit: int = Field(
        default=100, ge=0, le=10_000, description="Ids or keys listed per kind in a report."
    )

    storage_backend: Literal["local", "s3"] = Field(
        default="local", description="Where uploads go: a local directory or an S3 bucket."
    )
    local_storage_dir: Path = Field(
        default=Path("./var/storage"), description="Root directory of the local backend."
    )
    public_base_url: str | None = Field(
        default=None,
        description="Base URL the browser reaches the service at (local upload/download "
        "URLs); derived from each request when unset.",
    )
    signing_keys: list[str] = Field(
        default_factory=list,
        description="Secrets that sign local upload/download tokens; the first signs, all "
        "verify (rotation). Unset: a key generated into SIGNING_KEY_FILE.",
    )
    signing_key_file: Path = Field(
        default=Path("./var/signing.key"), description="Per-install generated signing key."
    )
    s3_bucket: str = Field(default="session-service-uploads", description="S3 bucket.")
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, Ceph, ...); unset for AWS."
    )
    s3_access_key_id: str | None = Field(
        default=None, description="Unset: the default AWS credential chain."
    )
    s3_secret_access_key: str | None = None
    s3_connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a connection to the S3 endpoint."
    )
    s3_max_attempts: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed S3 call (botocore's count)."
    )
    s3_server_side_encryption: str = Field(
        default="AES256", description="x-amz-server-side-encryption required on every upload."
    )
    upload_allowed_types: list[str] = Field(
        default_factory=lambda: ["application/pdf"],
        description="Content types an upload slot may declare.",
    )
    upload_max_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1, description="Largest single upload."
    )
    upload_max_files: int = Field(
        default=20, ge=1, description="Files (pending or uploaded) one session may hold."
    )
    upload_session_quota_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1, description="Bytes one session may hold in total."
    )
    upload_url_ttl: Duration = Field(
        default=timedelta(minutes=5), description="How long an upload slot accepts the file."
    )
    download_url_ttl: Duration = Field(
        default=timedelta(minutes=5), description="How long a download URL works."
    )

    service_api_keys: list[str] = Field(
        default_factory=list,
        description="Bearer keys of the `service` role (JSON list; several allow rotation).",
    )
    admin_api_keys: list[str] = Field(
        default_factory=list,
        description="Bearer keys of the `admin` role (JSON list; several allow rotation).",
    )

    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Addresses or networks (JSON list) of proxies whose X-Forwarded-For "
        "is believed; unset: the direct peer is the client.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins (JSON list, `https://app.example`) other sites' pages may call "
        "the API from; the service's own demo page needs none.",
    )
    cors_max_age: int = Field(
        default=600, ge=0, description="Seconds browsers may cache a preflight answer."
    )

    rate_limit_enabled: bool = Field(default=True, description="Rate limits per client IP.")
    rate_limit_storage_uri: str = Field(
        default="memory://",
        description="Where limits count: memory:// (this process) or redis://host:port/db "
        "(shared by every instance).",
    )
    rate_limit_strategy: Literal["moving-window", "fixed-window", "sliding-window-counter"] = Field(
        default="moving-window",
        description="How Redis counts calls in a window (in memory: always moving-window).",
    )
    rate_limit_create: str = Field(default="10/minute", description="Session creations per IP.")
    rate_limit_reset: str = Field(default="10/minute", description="Session resets per IP.")
    rate_limit_validate: str = Field(default="120/minute", description="Validations per IP.")
    rate_limit_upload: str = Field(default="5/minute", description="Upload slots per IP.")
    rate_limit_storage_timeout: float = Field(
        default=0.25, gt=0, description="Seconds a Redis call may take before it counts as down."
    )
    rate_limit_retry_interval: Duration = Field(
        default=timedelta(seconds=5),
        description="While Redis is down, how often to try it again.",
    )

    alert_window: Duration = Field(
        default=timedelta(minutes=5),
        description="At most one alert per distinct error in this window.",
    )
    alert_email_to: list[str] = Field(
        default_factory=list, description="Admin addresses (JSON list) alerted by SMTP."
    )
    alert_email_from: str = Field(
        default="session-service@localhost", description="Sender of alert emails."
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for alert emails.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="Its port.")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (upgrade, required), tls (implicit, port 465) or none.",
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=10.0, gt=0, description="Seconds per SMTP exchange.")
    alert_webhook_url: str | None = Field(
        default=None, description="URL that receives each alert as a JSON POST."
    )
    alert_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs webhook bodies (X-Signature-256: sha256=<HMAC of the body>).",
    )
    alert_webhook_timeout: float = Field(default=5.0, gt=0, description="Seconds per webhook call.")

    metrics_enabled: bool = Field(default=True, description="Serve /metrics (Prometheus).")
    metrics_require_admin: bool = Field(default=False, description="/metrics needs the admin key.")

    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest accepted request body on JSON routes."
    )
    gc_gen0_threshold: int = Field(
        default=10_000,
        ge=0,
        description="Allocations between young-generation GC passes (0 keeps Python's 700).",
    )
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(default=True, description="Log one line per request.")

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @field_validator(
        "rate_limit_create", "rate_limit_reset", "rate_limit_validate", "rate_limit_upload"
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit: write e.g. 10/minute or 100 per hour"
            ) from None
        return value

    @field_validator("rate_limit_storage_uri")
    @classmethod
    def _rate_limit_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            raise ValueError(
                "RATE_LIMIT_STORAGE_URI must be memory:// or redis://, rediss://, redis+unix://"
            )
        return value

    @property
    def is_sqlite(self) -> bool:
        """Whether the embedded database is in use."""
        return self.database_url.startswith("sqlite")


class ConfigurationRefused(Exception):
    """Production settings that must not serve; each problem names its setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


MIN_KEY_LENGTH = 32
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "admin", "test"})


def production_problems(settings: Settings, *, workers: int) -> list[str]:
    """What production refuses, one sentence each naming the setting; [] in development."""
    if settings.environment != "production":
        return []
    problems = []
    if settings.is_sqlite:
        problems.append(
            "DATABASE_URL is the embedded SQLite database; set postgresql+asyncpg://..."
        )
    if not settings.signing_keys:
        problems.append(
            "SIGNING_KEYS is unset (a key generated per install differs between instances); "
            "set it to a JSON list of long random secrets."
        )
    for name, keys in (
        ("SERVICE_API_KEYS", settings.service_api_keys),
        ("ADMIN_API_KEYS", settings.admin_api_keys),
        ("SIGNING_KEYS", settings.signing_keys),
    ):
        if not keys and name != "SIGNING_KEYS":
            problems.append(f"{name} is unset; set a JSON list of keys.")
        weak = [
            key for key in keys if len(key) < MIN_KEY_LENGTH or key.lower() in PLACEHOLDER_SECRETS
        ]
        if weak:
            problems.append(
                f"{name} holds a default or short key; use at least {MIN_KEY_LENGTH} random "
                "characters."
            )
    if settings.storage_backend == "local" and workers > 1:
        problems.append(
            f"STORAGE_BACKEND=local behind WORKERS={workers}: use STORAGE_BACKEND=s3 "
            "(or one worker)."
        )
    return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
