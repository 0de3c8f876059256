"""The audit events table: append-only, one row per event."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, Integer, String, Uuid
from sqlmodel import Field, SQLModel

from session_service.core.sqltypes import BigIntIdentity, JSONDocument, UTCDateTime


class Outcome(StrEnum):
    """How the audited attempt ended."""

    SUCCESS = "success"
    FAILURE = "failure"


class AuditEvent(SQLModel, table=True):
    """One audited fact; never updated, deleted only by the retention purge."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("outcome IN ('success', 'failure')", name="ck_audit_events_outcome"),
        # A session's trail, in order (export, admin queries by session).
        Index("ix_audit_events_session_id_id", "session_id", "id"),
        # Admin queries by type, and time ranges (queries, retention).
        Index("ix_audit_events_type_id", "type", "id"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        # The chain's key on PostgreSQL: what a batch covers (see `chain_repository`).
        Index("ix_audit_events_txid_id", "txid", "id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigIntIdentity, primary_key=True, autoincrement=True)
    )
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    type: str = Field(sa_column=Column(String(64), nullable=False))
    session_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid()))
    request_id: str | None = Field(default=None, sa_column=Column(String(128)))
    client_ip: str | None = Field(default=None, sa_column=Column(String(45)))
    user_agent: str | None = Field(default=None, sa_column=Column(String(512)))
    outcome: Outcome = Field(sa_column=Column(String(16), nullable=False))
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDocument, nullable=False)
    )
    # PostgreSQL: the writing transaction's id, set by the server (`pg_current_xact_id()`,
    # migration 0009), never by the service; not part of the event's canonical form.
    # SQLite: unused (NULL), its transactions are serialised.
    txid: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))


class AuditBatch(SQLModel, table=True):
    """A sealed run of events: its digest covers them and the previous batch's digest."""

    __tablename__ = "audit_batches"

    id: int | None = Field(
        default=None, sa_column=Column(BigIntIdentity, primary_key=True, autoincrement=True)
    )
    first_event_id: int = Field(sa_column=Column(BigInteger(), nullable=False))
    last_event_id: int = Field(sa_column=Column(BigInteger(), nullable=False, unique=True))
    event_count: int = Field(sa_column=Column(Integer(), nullable=False))
    digest: str = Field(sa_column=Column(String(64), nullable=False))
    previous_digest: str = Field(sa_column=Column(String(64), nullable=False))
    sealed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The chain up to this batch covers every event whose key is below this.
    covers_below: int = Field(sa_column=Column(BigInteger(), nullable=False))


class AuditAnchor(SQLModel, table=True):
    """Where the chain resumes after a retention purge: the newest purged batch's digest.

    The first remaining batch chains to `digest`; events up to `last_event_id` are gone.
    `last_batch_id` is informational: SQLite may reuse batch ids once the table is empty.
    """

    __tablename__ = "audit_anchors"

    id: int | None = Field(
        default=None, sa_column=Column(BigIntIdentity, primary_key=True, autoincrement=True)
    )
    last_batch_id: int = Field(sa_column=Column(BigInteger(), nullable=False))
    last_event_id: int = Field(sa_column=Column(BigInteger(), nullable=False))
    digest: str = Field(sa_column=Column(String(64), nullable=False))
    batches_purged: int = Field(sa_column=Column(Integer(), nullable=False))
    events_purged: int = Field(sa_column=Column(BigInteger(), nullable=False))
    purged_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Events whose key is below this are gone (the purged batches' `covers_below`).
    covers_below: int = Field(sa_column=Column(BigInteger(), nullable=False))
