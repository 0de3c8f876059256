"""The sessions table."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, Column, Index, String, Uuid
from sqlmodel import Field, SQLModel

from session_service.core.sqltypes import UTCDateTime


class SessionStatus(StrEnum):
    """Lifecycle of a session (SPEC §2)."""

    ACTIVE = "active"
    PENDING_VERIFICATION = "pending_verification"
    COMPLETED = "completed"
    RESET = "reset"
    EXPIRED = "expired"


class Session(SQLModel, table=True):
    """An anonymous user session; its id is a bearer secret held by the browser."""

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('active', 'pending_verification', 'completed', 'reset', 'expired')",
            name="ck_sessions_status",
        ),
        # Cleanup finds expiring and long-superseded sessions by these.
        Index("ix_sessions_status_expires_at", "status", "expires_at"),
        Index("ix_sessions_status_updated_at", "status", "updated_at"),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid(), primary_key=True))
    status: SessionStatus = Field(sa_column=Column(String(32), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    name: str | None = Field(default=None, sa_column=Column(String(100)))
    email: str | None = Field(default=None, sa_column=Column(String(320)))
    consent_user_data: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, default=False)
    )
    consent_given_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    client_ip: str | None = Field(default=None, sa_column=Column(String(45)))
    user_agent: str | None = Field(default=None, sa_column=Column(String(512)))
    previous_session_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid()))
    # Names the session's storage prefix (`uploads/{storage_id}/...`). Storage keys end up
    # in presigned download URLs, which people share; the session id is a bearer secret and
    # must never be in a URL, so storage gets its own random id that grants nothing.
    storage_id: uuid.UUID = Field(sa_column=Column(Uuid(), nullable=False, unique=True))


class SessionTombstone(SQLModel, table=True):
    """The digest of a bearer value whose session has ended: it can never start one again.

    Kept as long as the audit trail (AUDIT_RETENTION), then purged with it. A SHA-256
    digest, so the table grants nothing to whoever reads it.
    """

    __tablename__ = "session_tombstones"
    __table_args__ = (Index("ix_session_tombstones_ended_at", "ended_at"),)

    digest: str = Field(sa_column=Column(String(64), primary_key=True))
    ended_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
