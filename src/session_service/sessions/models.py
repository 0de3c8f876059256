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


class TokenEnd(StrEnum):
    """Why a token stopped working (kept with its tombstone; validate answers with it)."""

    ROTATED = "rotated"  # replaced by a new one when details were given
    RESET = "reset"  # its session was replaced by a new one
    ENDED = "ended"  # its session was erased or removed after expiry
    UPGRADED = "upgraded"  # it was a bearer id from before tokens and ids were apart


class Session(SQLModel, table=True):
    """An anonymous user session: a public id, and the digest of its secret token.

    The browser holds the token; the database keeps only its SHA-256 digest, so a dump
    grants no session. `token_digest` is NULL once the session has no live token (reset,
    or carried over from before tokens existed).
    """

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('active', 'pending_verification', 'completed', 'reset', 'expired')",
            name="ck_sessions_status",
        ),
        # Cleanup finds expiring and long-superseded sessions by these.
        Index("ix_sessions_status_expires_at", "status", "expires_at"),
        Index("ix_sessions_status_updated_at", "status", "updated_at"),
        # Every check looks a session up by its token's digest.
        Index("uq_sessions_token_digest", "token_digest", unique=True),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid(), primary_key=True))
    token_digest: str | None = Field(default=None, sa_column=Column(String(64)))
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
    # Names the session's storage prefix (`uploads/{storage_id}/...`): the session id for
    # sessions opened since ids stopped being bearer values, a random id for older ones
    # (their objects keep the keys they were stored under).
    storage_id: uuid.UUID = Field(sa_column=Column(Uuid(), nullable=False, unique=True))


class SessionTombstone(SQLModel, table=True):
    """The digest of a token that stopped working: it never works or starts a session again.

    Kept as long as the audit trail (AUDIT_RETENTION), then purged with it. A SHA-256
    digest, so the table grants nothing to whoever reads it; `reason` lets validate tell
    the holder of a stale token what happened (`rotated`, `reset`, `upgraded`).
    """

    __tablename__ = "session_tombstones"
    __table_args__ = (Index("ix_session_tombstones_ended_at", "ended_at"),)

    digest: str = Field(sa_column=Column(String(64), primary_key=True))
    ended_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reason: TokenEnd = Field(
        sa_column=Column(String(16), nullable=False, server_default=TokenEnd.ENDED.value)
    )
