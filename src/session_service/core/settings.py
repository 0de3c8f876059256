"""Typed configuration: every setting is an environment variable with a zero-config default.

In code the settings are grouped (`settings.database.url`, `settings.storage.s3.bucket`,
`settings.rate_limits.create`, ...), but every environment variable keeps its flat name
(`DATABASE_URL`, `S3_BUCKET`, `RATE_LIMIT_CREATE`, ...) and so does every keyword of
`Settings(...)` and `Settings.with_overrides(...)`. `FLAT_NAMES` is the one table that maps
each flat name to its place in the groups. Secrets are `SecretStr`: they print as stars and
are unwrapped with `.get_secret_value()` only where they are used.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_origin
from urllib.parse import parse_qs, urlsplit

from limits import parse_many
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from session_service.core.durations import Duration, DurationOrZero, Seconds, WholeSeconds
from session_service.core.env_lists import parse_list
from session_service.core.redis import SCHEMES as REDIS_SCHEMES
from session_service.core.redis import SENTINEL_SCHEME, sentinel_parts

ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s]+", re.IGNORECASE)
"""A web origin as browsers send it: scheme, host, optional port, nothing after."""


class AuditValidations(StrEnum):
    """Which validation attempts leave an audit event."""

    FAILURES = "failures"
    ALL = "all"


class AuditClientDetail(StrEnum):
    """How much of the caller's address and user agent an audit event keeps.

    `network` (default): the address's network only (IPv4 /24, IPv6 /48), no user agent:
    enough to see that attempts came from one place, not enough to single out a person.
    `full`: address and user agent, as received (more to investigate abuse with, and
    personal data kept for the whole audit retention). `none`: neither.
    """

    FULL = "full"
    NETWORK = "network"
    NONE = "none"


class _Group(BaseModel):
    """A frozen group of settings; read from the environment only through `Settings`."""

    model_config = ConfigDict(frozen=True, extra="forbid")


DRIVER_URL_ARGS: dict[str, type[int] | type[float]] = {
    "statement_cache_size": int,
    "max_cached_statement_lifetime": int,
    "max_cacheable_statement_size": int,
    "command_timeout": float,
}
"""asyncpg arguments an operator may put in DATABASE_URL's query, with their types."""


class HttpSettings(_Group):
    """HTTP_*: what one worker accepts from a connection before the app sees a request."""

    max_connections: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Open connections per worker; above it a new connection's request is "
        "answered 503 server_busy (GET /healthz still served). Keep it below `ulimit -n`.",
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request line and headers together; larger: 431 headers_too_large.",
    )
    max_headers: int = Field(
        default=100, ge=10, le=10_000, description="Most headers per request; more: 431."
    )
    keep_alive_timeout: Seconds = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Seconds a connection may wait for its next request, or a new one for "
        "its first, before it is closed.",
    )
    header_timeout: Seconds = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Seconds from a request's first byte to its last header; later: 408.",
    )
    request_timeout: Seconds = Field(
        default=60.0,
        gt=0,
        le=3600,
        validate_default=True,
        description="Seconds from a request's first byte to the end of its body; later: 408.",
    )

    @field_validator("request_timeout")
    @classmethod
    def _head_within_request(cls, value: float, info: ValidationInfo) -> float:
        if value < info.data.get("header_timeout", 0):
            raise ValueError("must be at least HTTP_HEADER_TIMEOUT (the head is part of it)")
        return value


class DatabaseSettings(_Group):
    """DATABASE_* and AUTO_MIGRATE."""

    url: str = Field(
        default="sqlite+aiosqlite:///./var/session-service.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///... or postgresql+asyncpg://...",
    )
    pool_size: int = Field(
        default=10, ge=1, le=200, description="Pooled PostgreSQL connections per process."
    )
    max_overflow: int = Field(
        default=0,
        ge=0,
        le=200,
        description="Extra connections beyond the pool; each is closed again on return.",
    )
    pool_timeout: Seconds = Field(
        default=5.0, gt=0, description="Seconds to wait for a pooled connection."
    )
    connect_timeout: Seconds = Field(
        default=5.0, gt=0, description="Seconds to wait for a new database connection."
    )
    statement_timeout: Seconds = Field(
        default=5.0,
        ge=0,
        description="Seconds one statement may take, waiting for PgBouncer included, before "
        "it is cancelled and the request answered 503; 0: no limit. Migrations have none.",
    )
    pool_recycle: WholeSeconds = Field(
        default=1800,
        ge=0,
        description="Seconds after which a pooled connection is replaced on its next use; "
        "0: never.",
    )
    auto_migrate: bool = Field(
        default=True, description="Apply pending migrations when `serve` starts."
    )
    pgbouncer: bool = Field(
        default=False,
        description="The URL points at PgBouncer in transaction pooling mode: no prepared "
        "statement outlives its transaction and no lock outlives its transaction.",
    )
    listen_url: str | None = Field(
        default=None,
        description="Where live updates LISTEN: PostgreSQL directly, or a session-mode pool "
        "(postgresql+asyncpg://...). Unset: DATABASE_URL, unless DATABASE_PGBOUNCER (LISTEN "
        "cannot work through transaction pooling), in which case streams poll.",
    )

    @field_validator("listen_url")
    @classmethod
    def _listen_on_postgres(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_LISTEN_URL must start with postgresql+asyncpg://")
        return value

    @field_validator("url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        query = parse_qs(urlsplit(value).query)
        for name, kind in DRIVER_URL_ARGS.items():
            for given in query.get(name, ()):
                try:
                    kind(given)
                except ValueError:
                    raise ValueError(f"DATABASE_URL: {name} must be a number") from None
        return value


class S3Settings(_Group):
    """S3_*."""

    bucket: str = Field(default="session-service-uploads", description="S3 bucket.")
    region: str = Field(default="us-east-1", description="S3 region.")
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, Ceph, ...); unset for AWS."
    )
    public_endpoint_url: str | None = Field(
        default=None,
        description="The endpoint browsers reach the bucket at: presigned upload forms and "
        "download URLs are built (and signed) for it. Unset: S3_ENDPOINT_URL.",
    )
    access_key_id: str | None = Field(
        default=None, description="Unset: the default AWS credential chain."
    )
    secret_access_key: SecretStr | None = Field(default=None, validate_default=True)
    connect_timeout: Seconds = Field(
        default=5.0, gt=0, description="Seconds to wait for a connection to the S3 endpoint."
    )
    read_timeout: Seconds = Field(
        default=30.0, gt=0, description="Seconds to wait for the S3 endpoint to answer."
    )
    max_attempts: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed S3 call (botocore's count)."
    )
    server_side_encryption: str = Field(
        default="AES256", description="x-amz-server-side-encryption required on every upload."
    )

    @field_validator("secret_access_key")
    @classmethod
    def _credentials_in_pairs(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        # botocore fails on half a pair only when the client is created: refuse it up front.
        if (info.data.get("access_key_id") is None) != (value is None):
            raise ValueError(
                "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together: set both, or neither "
                "(the default AWS credential chain)"
            )
        return value

    @property
    def presign_endpoint_url(self) -> str | None:
        """The endpoint presigned URLs are built for: the public one, else the server's."""
        return self.public_endpoint_url or self.endpoint_url


class StorageSettings(_Group):
    """STORAGE_BACKEND, LOCAL_STORAGE_DIR, PUBLIC_BASE_URL, SIGNING_KEY*, UPLOAD_*, S3_*."""

    backend: Literal["local", "s3"] = Field(
        default="local", description="Where uploads go: a local directory or an S3 bucket."
    )
    local_dir: Path = Field(
        default=Path("./var/storage"), description="Root directory of the local backend."
    )
    public_base_url: str | None = Field(
        default=None,
        description="Base URL the browser reaches the service at (local upload/download "
        "URLs); required in production. Unset: derived from each request whose Host is in "
        "ALLOWED_HOSTS.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost"],
        description="Host header values (any port unless one is given) that "
        "absolute URLs may be built on while PUBLIC_BASE_URL is unset; others get 400.",
    )
    signing_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Secrets that sign local upload/download tokens; the first signs, all "
        "verify (rotation). Unset: a key generated into SIGNING_KEY_FILE.",
    )
    signing_key_file: Path = Field(
        default=Path("./var/signing.key"), description="Per-install generated signing key."
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
    s3: S3Settings = Field(default_factory=S3Settings)


class RateLimitSettings(_Group):
    """RATE_LIMIT_*."""

    enabled: bool = Field(default=True, description="Rate limits per client IP.")
    storage_uri: str = Field(
        default="memory://",
        description="Where limits count: memory:// (this process) or redis://host:port/db "
        "(shared by every instance).",
    )
    strategy: Literal["moving-window", "fixed-window", "sliding-window-counter"] = Field(
        default="moving-window",
        description="How Redis counts calls in a window (in memory: always moving-window).",
    )
    create: str = Field(default="10/minute", description="Session creations per IP.")
    reset: str = Field(default="10/minute", description="Session resets per IP.")
    # Not `validate`: that name is taken by pydantic's BaseModel.
    validation: str = Field(default="120/minute", description="Validations per IP.")
    upload: str = Field(default="5/minute", description="Upload slots per IP.")
    message: str = Field(default="60/minute", description="Messages the browser sends, per IP.")
    holder: str = Field(
        default="300/minute",
        description="Calls per IP to every route that takes X-Session-ID, on top of its own limit.",
    )
    ipv6_prefix: int = Field(
        default=64,
        ge=1,
        le=128,
        description="IPv6 clients are counted per network of this prefix (IPv4: per address).",
    )
    storage_timeout: Seconds = Field(
        default=0.25, gt=0, description="Seconds a Redis call may take before it counts as slow."
    )
    fallback_after_timeouts: int = Field(
        default=3,
        ge=1,
        description="Slow Redis calls in a row after which Redis counts as down (a failed "
        "connection counts at once); one slow call under load is not an outage.",
    )
    retry_interval: Duration = Field(
        default=timedelta(seconds=5),
        description="While Redis is down, how often to try it again.",
    )

    @field_validator("create", "reset", "validation", "upload", "message", "holder")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit: write e.g. 10/minute or 100 per hour"
            ) from None
        return value

    @field_validator("storage_uri")
    @classmethod
    def _rate_limit_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", *REDIS_SCHEMES)):
            raise ValueError(
                "RATE_LIMIT_STORAGE_URI must be memory:// or redis://, rediss://, redis+unix://, "
                "redis+sentinel://host:26379/<service>"
            )
        if value.startswith(SENTINEL_SCHEME):
            sentinel_parts(value)
        return value


class SmtpSettings(_Group):
    """SMTP_*."""

    host: str | None = Field(default=None, description="SMTP server for alert emails.")
    port: int = Field(default=587, ge=1, le=65535, description="Its port.")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (upgrade, required), tls (implicit, port 465) or none.",
    )
    username: str | None = None
    password: SecretStr | None = None
    timeout: Seconds = Field(default=10.0, gt=0, description="Seconds per SMTP exchange.")


class AlertSettings(_Group):
    """ALERT_* and SMTP_*."""

    window: Duration = Field(
        default=timedelta(minutes=5),
        description="At most one alert per distinct error in this window.",
    )
    email_to: list[str] = Field(
        default_factory=list, description="Admin addresses alerted by SMTP."
    )
    email_from: str = Field(
        default="session-service@localhost", description="Sender of alert emails."
    )
    webhook_url: str | None = Field(
        default=None, description="URL that receives each alert as a JSON POST."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs webhook bodies (X-Signature-256: sha256=<HMAC of the body>).",
    )
    webhook_timeout: Seconds = Field(default=5.0, gt=0, description="Seconds per webhook call.")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)


class ConversationSettings(_Group):
    """MESSAGE_MAX_CHARS, CONVERSATION_MAX_*."""

    message_max_chars: int = Field(
        default=32_000, ge=1, le=1_000_000, description="Characters one message may hold."
    )
    max_messages: int = Field(
        default=10_000, ge=1, description="Messages one session may hold, all conversations."
    )
    max_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1,
        description="Bytes of message text (UTF-8) one session may hold, all conversations.",
    )
    max_per_session: int = Field(
        default=100, ge=1, description="Conversations one session may hold."
    )


class LiveSettings(_Group):
    """LIVE_*: the conversation event streams (`GET .../events`)."""

    heartbeat_interval: Seconds = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Seconds between heartbeat comments on an idle stream (proxies close "
        "silent connections); each also rechecks the session and catches up from the database.",
    )
    max_streams: int = Field(
        default=250,
        ge=1,
        le=100_000,
        description="Open streams per process; beyond it 503 live_updates_unavailable. Keep "
        "it below HTTP_MAX_CONNECTIONS: each stream holds a connection.",
    )
    max_streams_per_session: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Open streams one session may hold in one process (tabs); beyond it "
        "409 stream_limit_reached.",
    )
    poll_interval: Seconds = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="Seconds between reads of the followed conversations when no LISTEN "
        "connection is possible (DATABASE_PGBOUNCER without DATABASE_LISTEN_URL).",
    )


class CleanupSettings(_Group):
    """CLEANUP_*, UPLOAD_GRACE, ORPHAN_*, AUDIT_RETENTION, ERASURE_JOURNAL_RETENTION."""

    enabled: bool = Field(
        default=True, description="Run the cleanup job in this instance (one at a time overall)."
    )
    interval: Duration = Field(
        default=timedelta(minutes=5), description="How often the cleanup job runs."
    )
    upload_grace: Duration = Field(
        default=timedelta(minutes=30),
        description="A pending upload not completed within this time is deleted.",
    )
    orphan_min_age: Duration = Field(
        default=timedelta(minutes=10),
        description="The full sweep deletes objects of no live session once this old.",
    )
    orphan_full_sweep_interval: DurationOrZero = Field(
        default=timedelta(hours=24),
        description="How often a cleanup run also lists all of storage for objects no row "
        "knows (the full sweep); 0: only when asked for (`cleanup --full-sweep`).",
    )
    batch_size: int = Field(
        default=500, ge=1, le=1000, description="Rows or objects handled per transaction or call."
    )
    alert_threshold: int = Field(
        default=1000, ge=0, description="A run deleting more than this alerts the admin."
    )
    report_limit: int = Field(
        default=100, ge=0, le=10_000, description="Ids or keys listed per kind in a report."
    )
    audit_retention: DurationOrZero = Field(
        default=timedelta(days=365),
        description="Audit events older than this are purged by cleanup, in whole sealed "
        "batches; 0 keeps them forever.",
    )
    erasure_journal_retention: DurationOrZero = Field(
        default=timedelta(days=365),
        description="Erasure journal entries older than this are deleted by cleanup; keep it "
        "longer than the oldest database backup you might restore. 0 keeps them forever.",
    )


# The one table: each flat name (environment variable, lower-cased, and keyword of
# `Settings(...)` / `Settings.with_overrides(...)`) and where it lives in the groups.
FLAT_NAMES: dict[str, tuple[str, ...]] = {
    "environment": ("environment",),
    "host": ("host",),
    "port": ("port",),
    "workers": ("workers",),
    "shutdown_drain_seconds": ("shutdown_drain_seconds",),
    "http_max_connections": ("http", "max_connections"),
    "http_max_header_bytes": ("http", "max_header_bytes"),
    "http_max_headers": ("http", "max_headers"),
    "http_keep_alive_timeout": ("http", "keep_alive_timeout"),
    "http_header_timeout": ("http", "header_timeout"),
    "http_request_timeout": ("http", "request_timeout"),
    "instance_name": ("instance_name",),
    "session_idle_ttl": ("session_idle_ttl",),
    "pending_ttl": ("pending_ttl",),
    "session_max_age": ("session_max_age",),
    "allow_client_tokens": ("allow_client_tokens",),
    "last_seen_throttle": ("last_seen_throttle",),
    "idempotency_key_ttl": ("idempotency_key_ttl",),
    "audit_validations": ("audit_validations",),
    "audit_client_detail": ("audit_client_detail",),
    "audit_seal_interval": ("audit_seal_interval",),
    "audit_seal_min_age": ("audit_seal_min_age",),
    "audit_refusal_keys": ("audit_refusal_keys",),
    "service_api_keys": ("service_api_keys",),
    "admin_api_keys": ("admin_api_keys",),
    "trusted_proxies": ("trusted_proxies",),
    "cors_origins": ("cors_origins",),
    "cors_max_age": ("cors_max_age",),
    "metrics_enabled": ("metrics_enabled",),
    "metrics_require_admin": ("metrics_require_admin",),
    "max_body_bytes": ("max_body_bytes",),
    "gc_gen0_threshold": ("gc_gen0_threshold",),
    "log_format": ("log_format",),
    "log_level": ("log_level",),
    "access_log": ("access_log",),
    "database_url": ("database", "url"),
    "database_pool_size": ("database", "pool_size"),
    "database_max_overflow": ("database", "max_overflow"),
    "database_pool_timeout": ("database", "pool_timeout"),
    "database_connect_timeout": ("database", "connect_timeout"),
    "database_statement_timeout": ("database", "statement_timeout"),
    "database_pool_recycle": ("database", "pool_recycle"),
    "auto_migrate": ("database", "auto_migrate"),
    "database_pgbouncer": ("database", "pgbouncer"),
    "database_listen_url": ("database", "listen_url"),
    "storage_backend": ("storage", "backend"),
    "local_storage_dir": ("storage", "local_dir"),
    "public_base_url": ("storage", "public_base_url"),
    "allowed_hosts": ("storage", "allowed_hosts"),
    "signing_keys": ("storage", "signing_keys"),
    "signing_key_file": ("storage", "signing_key_file"),
    "upload_allowed_types": ("storage", "upload_allowed_types"),
    "upload_max_bytes": ("storage", "upload_max_bytes"),
    "upload_max_files": ("storage", "upload_max_files"),
    "upload_session_quota_bytes": ("storage", "upload_session_quota_bytes"),
    "upload_url_ttl": ("storage", "upload_url_ttl"),
    "download_url_ttl": ("storage", "download_url_ttl"),
    "s3_bucket": ("storage", "s3", "bucket"),
    "s3_region": ("storage", "s3", "region"),
    "s3_endpoint_url": ("storage", "s3", "endpoint_url"),
    "s3_access_key_id": ("storage", "s3", "access_key_id"),
    "s3_secret_access_key": ("storage", "s3", "secret_access_key"),
    "s3_public_endpoint_url": ("storage", "s3", "public_endpoint_url"),
    "s3_connect_timeout": ("storage", "s3", "connect_timeout"),
    "s3_read_timeout": ("storage", "s3", "read_timeout"),
    "s3_max_attempts": ("storage", "s3", "max_attempts"),
    "s3_server_side_encryption": ("storage", "s3", "server_side_encryption"),
    "rate_limit_enabled": ("rate_limits", "enabled"),
    "rate_limit_storage_uri": ("rate_limits", "storage_uri"),
    "rate_limit_strategy": ("rate_limits", "strategy"),
    "rate_limit_create": ("rate_limits", "create"),
    "rate_limit_reset": ("rate_limits", "reset"),
    "rate_limit_validate": ("rate_limits", "validation"),
    "rate_limit_upload": ("rate_limits", "upload"),
    "rate_limit_holder": ("rate_limits", "holder"),
    "rate_limit_message": ("rate_limits", "message"),
    "message_max_chars": ("conversations", "message_max_chars"),
    "conversation_max_messages": ("conversations", "max_messages"),
    "conversation_max_bytes": ("conversations", "max_bytes"),
    "conversation_max_per_session": ("conversations", "max_per_session"),
    "rate_limit_ipv6_prefix": ("rate_limits", "ipv6_prefix"),
    "rate_limit_storage_timeout": ("rate_limits", "storage_timeout"),
    "rate_limit_fallback_after_timeouts": ("rate_limits", "fallback_after_timeouts"),
    "rate_limit_retry_interval": ("rate_limits", "retry_interval"),
    "alert_window": ("alerts", "window"),
    "alert_email_to": ("alerts", "email_to"),
    "alert_email_from": ("alerts", "email_from"),
    "alert_webhook_url": ("alerts", "webhook_url"),
    "alert_webhook_secret": ("alerts", "webhook_secret"),
    "alert_webhook_timeout": ("alerts", "webhook_timeout"),
    "smtp_host": ("alerts", "smtp", "host"),
    "smtp_port": ("alerts", "smtp", "port"),
    "smtp_security": ("alerts", "smtp", "security"),
    "smtp_username": ("alerts", "smtp", "username"),
    "smtp_password": ("alerts", "smtp", "password"),
    "smtp_timeout": ("alerts", "smtp", "timeout"),
    "cleanup_enabled": ("cleanup", "enabled"),
    "cleanup_interval": ("cleanup", "interval"),
    "upload_grace": ("cleanup", "upload_grace"),
    "orphan_min_age": ("cleanup", "orphan_min_age"),
    "orphan_full_sweep_interval": ("cleanup", "orphan_full_sweep_interval"),
    "cleanup_batch_size": ("cleanup", "batch_size"),
    "cleanup_alert_threshold": ("cleanup", "alert_threshold"),
    "cleanup_report_limit": ("cleanup", "report_limit"),
    "audit_retention": ("cleanup", "audit_retention"),
    "erasure_journal_retention": ("cleanup", "erasure_journal_retention"),
    "live_heartbeat_interval": ("live", "heartbeat_interval"),
    "live_max_streams": ("live", "max_streams"),
    "live_max_streams_per_session": ("live", "max_streams_per_session"),
    "live_poll_interval": ("live", "poll_interval"),
}
_PATHS = {path: name for name, path in FLAT_NAMES.items()}


def setting_name(loc: Sequence[str | int]) -> str:
    """The environment variable a validation error's location names (`RATE_LIMIT_CREATE`).

    A location inside a list keeps its index: `TRUSTED_PROXIES.0`.
    """
    parts = tuple(loc)
    for cut in range(len(parts), 0, -1):
        name = _PATHS.get(tuple(str(part) for part in parts[:cut]))
        if name is not None:
            return ".".join([name.upper(), *(str(part) for part in parts[cut:])])
    return ".".join(str(part) for part in parts).upper()


def _as_dict(value: object) -> dict[str, Any]:
    """A group given as a model or a dict, as a fresh dict (the caller's is not changed)."""
    if isinstance(value, BaseModel):
        return {name: getattr(value, name) for name in type(value).model_fields}
    if isinstance(value, dict):
        return dict(value)
    return {}


def _put(target: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    """Set `value` at `path` in nested dicts, turning groups on the way into dicts."""
    *groups, leaf = path
    for group in groups:
        target[group] = _as_dict(target.get(group))
        target = target[group]
    target[leaf] = value


def field_at(path: tuple[str, ...]) -> FieldInfo:
    """The pydantic field at `path`, for parsing its environment value."""
    model: type[BaseModel] = Settings
    *groups, leaf = path
    for group in groups:
        annotation = model.model_fields[group].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise TypeError(f"{group} is not a group of settings")
        model = annotation
    return model.model_fields[leaf]


class UnreadableSetting(SettingsError):
    """An environment value that cannot even be parsed (malformed JSON), with its variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class FlatEnvironmentSource(EnvSettingsSource):
    """Reads each flat environment variable of `FLAT_NAMES` into its group.

    pydantic-settings' own parsing applies per field (case-insensitive names, plain text),
    except that list fields take JSON or comma-separated items (`core/env_lists.py`).
    """

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, path in FLAT_NAMES.items():
            raw = self.env_vars.get(self._apply_case_sensitive(name))
            if raw is None:
                continue
            field = field_at(path)
            try:
                value = self.prepare_field_value(name, field, raw, False)
            except ValueError as error:
                raise UnreadableSetting(name.upper(), str(error)) from None
            if value is not None:
                _put(data, path, value)
        return data

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        """List settings: a JSON list or comma-separated items."""
        if get_origin(field.annotation) is list and isinstance(value, str):
            return parse_list(value)
        return super().decode_complex_value(field_name, field, value)


class Settings(BaseSettings):
    """The service's whole configuration; the README table lists every flat name."""

    # A refused value is never echoed in the error: it may be a secret.
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    environment: Literal["development", "production"] = Field(
        default="development",
        description="production refuses to start without PUBLIC_BASE_URL, with SQLite, "
        "generated signing keys, missing or weak API keys, or the local backend behind "
        "several workers; /metrics then needs the admin key unless METRICS_REQUIRE_ADMIN=false.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    instance_name: str | None = Field(
        default=None,
        max_length=128,
        description="How alerts name this instance; default: the host name and port.",
    )
    shutdown_drain_seconds: Seconds = Field(
        default=5.0,
        ge=0,
        le=300,
        description="After SIGTERM: seconds `/readyz` answers 503 while requests are still "
        "served, so load balancers stop sending before the server stops (one worker); 0: no "
        "drain.",
    )

    session_idle_ttl: Duration = Field(
        default=timedelta(hours=24), description="Idle time after which an active session expires."
    )
    pending_ttl: Duration = Field(
        default=timedelta(days=7),
        description="Idle time after which a pending_verification session expires.",
    )
    session_max_age: Duration = Field(
        default=timedelta(days=30),
        description="Absolute lifetime: every session ends this long after it was created, "
        "completed ones included, however active.",
    )
    allow_client_tokens: bool = Field(
        default=False,
        description="Accept a session value proposed by the client (older frontends); "
        "off: a proposal is refused with 422 client_tokens_disabled.",
    )
    last_seen_throttle: DurationOrZero = Field(
        default=timedelta(minutes=1),
        description="Validations refresh last_seen_at at most this often per session; "
        "0: every one does.",
    )
    idempotency_key_ttl: Duration = Field(
        default=timedelta(hours=24),
        gt=timedelta(0),
        description="How long the answer to a request sent with an `Idempotency-Key` is kept "
        "for its retries; later, the same key runs the request again.",
    )
    audit_validations: AuditValidations = AuditValidations.FAILURES
    audit_client_detail: AuditClientDetail = Field(
        default=AuditClientDetail.NETWORK,
        description="What audit events keep of the caller: `network` (IPv4 /24, IPv6 /48, "
        "no user agent), `full` (address and user agent) or `none`. The session row keeps "
        "the full address and user agent until the session is gone.",
    )
    audit_refusal_keys: int = Field(
        default=1000,
        ge=1,
        description="Distinct (kind, client network, code) refusal counts kept in memory "
        "between summaries; further ones are counted under one overflow key.",
    )
    audit_seal_interval: DurationOrZero = Field(
        default=timedelta(seconds=10),
        description="How often the background sealer runs (it also wakes after commits); "
        "0 turns the background sealer off.",
    )
    audit_seal_min_age: DurationOrZero = Field(
        default=timedelta(seconds=5),
        description="Events are sealed once this old, so none that commits late is skipped; "
        "0: at once.",
    )

    service_api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer keys of the `service` role (several allow rotation).",
    )
    admin_api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer keys of the `admin` role (several allow rotation).",
    )

    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Addresses or networks of proxies whose X-Forwarded-For "
        "is believed; unset: the direct peer is the client.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins (`https://app.example`, no path) other sites' pages may call "
        "the API from; the service's own demo page needs none.",
    )
    cors_max_age: WholeSeconds = Field(
        default=600, ge=0, description="Seconds browsers may cache a preflight answer; 0: none."
    )

    metrics_enabled: bool = Field(default=True, description="Serve /metrics (Prometheus).")
    metrics_require_admin: bool | None = Field(
        default=None,
        description="/metrics needs the admin key; unset: only when ENVIRONMENT=production.",
    )

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

    http: HttpSettings = Field(default_factory=HttpSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    cleanup: CleanupSettings = Field(default_factory=CleanupSettings)
    conversations: ConversationSettings = Field(default_factory=ConversationSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        # A browser's Origin never has a path: `https://app.example/` would never match.
        for number, origin in enumerate(value, start=1):
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"item {number} is not an origin: write scheme://host[:port] without a "
                    "path or trailing slash (https://app.example)"
                )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keywords first, then the flat environment variables (no .env, no secrets dir)."""
        return init_settings, FlatEnvironmentSource(settings_cls)

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_names(cls, data: Any) -> Any:
        """Move flat keywords (`database_url=...`) to their group (`database.url`).

        A flat keyword wins over the same setting given in a group.
        """
        if not isinstance(data, dict):
            return data
        nested: dict[str, Any] = {}
        flat: list[tuple[tuple[str, ...], object]] = []
        for key, value in data.items():
            path = FLAT_NAMES.get(key) if isinstance(key, str) else None
            if path is None:
                nested[key] = value
            else:
                flat.append((path, value))
        for path, value in flat:
            _put(nested, path, value)
        return nested

    def with_overrides(self, **flat: object) -> Settings:
        """A validated copy with some settings changed, named flat (`database_url=...`)."""
        unknown = sorted(set(flat) - set(FLAT_NAMES))
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(unknown)}")
        current = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self).model_validate({**current, **flat})

    @property
    def metrics_admin_only(self) -> bool:
        """Whether /metrics needs the admin key: as set, else in production only.

        Resolved here rather than stored, so `with_overrides(environment=...)` moves it too.
        """
        if self.metrics_require_admin is not None:
            return self.metrics_require_admin
        return self.environment == "production"

    @property
    def is_sqlite(self) -> bool:
        """Whether the embedded database is in use."""
        return self.database.url.startswith("sqlite")

    @property
    def instance(self) -> str:
        """This instance's name in alerts: INSTANCE_NAME, else `<host name>:<port>`."""
        return self.instance_name or f"{socket.gethostname()}:{self.port}"


class ConfigurationRefused(Exception):
    """Production settings that must not serve; each problem names its setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


MIN_KEY_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 10
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "admin", "test"})
# Words that mark a key copied from an example, anywhere in the key, in any case.
PLACEHOLDER_WORDS = ("example", "changeme", "replace", "secret", "password")


def _key_problems(name: str, keys: list[str]) -> list[str]:
    """One sentence per kind of weakness among `keys`; the keys themselves never appear."""
    problems = []
    if any(len(key) < MIN_KEY_LENGTH or key.lower() in PLACEHOLDER_SECRETS for key in keys):
        problems.append(
            f"{name} holds a default or short key; use at least {MIN_KEY_LENGTH} random characters."
        )
    words = sorted({word for key in keys for word in PLACEHOLDER_WORDS if word in key.lower()})
    if words:
        problems.append(
            f"{name} holds a key containing the placeholder word {', '.join(words)}; "
            "replace it with a random key."
        )
    if any(len(set(key)) < MIN_DISTINCT_CHARACTERS for key in keys):
        problems.append(
            f"{name} holds a key of fewer than {MIN_DISTINCT_CHARACTERS} distinct characters; "
            "use a random key."
        )
    return problems


def production_problems(settings: Settings, *, workers: int) -> list[str]:
    """What production refuses, one sentence each naming the setting; [] in development."""
    if settings.environment != "production":
        return []
    problems = []
    if settings.is_sqlite:
        problems.append(
            "DATABASE_URL is the embedded SQLite database; set postgresql+asyncpg://..."
        )
    if not settings.storage.signing_keys:
        problems.append(
            "SIGNING_KEYS is unset (a key generated per install differs between instances); "
            "set it to a list of long random secrets."
        )
    service = [key.get_secret_value() for key in settings.service_api_keys]
    admin = [key.get_secret_value() for key in settings.admin_api_keys]
    signing = [key.get_secret_value() for key in settings.storage.signing_keys]
    for name, keys in (
        ("SERVICE_API_KEYS", service),
        ("ADMIN_API_KEYS", admin),
        ("SIGNING_KEYS", signing),
    ):
        if not keys and name != "SIGNING_KEYS":
            problems.append(f"{name} is unset; set a list of keys.")
        problems.extend(_key_problems(name, keys))
    if set(service) & set(admin):
        problems.append(
            "ADMIN_API_KEYS repeats a key of SERVICE_API_KEYS; give each role its own keys."
        )
    if settings.storage.backend == "local" and workers > 1:
        problems.append(
            f"STORAGE_BACKEND=local behind WORKERS={workers}: use STORAGE_BACKEND=s3 "
            "(or one worker)."
        )
    if not settings.storage.public_base_url:
        problems.append(
            "PUBLIC_BASE_URL is unset (URLs would be built from each request's Host header); "
            "set the URL browsers reach the service at."
        )
    return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
