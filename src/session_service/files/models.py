"""The files table: one row per upload, tied to its session."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String, Uuid
from sqlmodel import Field, SQLModel

from session_service.core.sqltypes import UTCDateTime


class FileStatus(StrEnum):
    """Lifecycle of an upload (SPEC §2)."""

    PENDING = "pending"
    UPLOADED = "uploaded"
    REJECTED = "rejected"


class StoredFile(SQLModel, table=True):
    """A file a session uploaded (or is about to) straight to storage."""

    __tablename__ = "files"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'uploaded', 'rejected')", name="ck_files_status"),
        # A session's files in order, and its count and bytes for the limits.
        Index("ix_files_session_id_created_at", "session_id", "created_at"),
        # Cleanup finds pending uploads past their grace by this.
        Index("ix_files_status_created_at", "status", "created_at"),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid(), primary_key=True))
    session_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False)
    )
    storage_key: str = Field(sa_column=Column(String(1024), nullable=False, unique=True))
    original_name: str = Field(sa_column=Column(String(255), nullable=False))
    content_type: str = Field(sa_column=Column(String(127), nullable=False))
    declared_size: int = Field(sa_column=Column(BigInteger(), nullable=False))
    stored_size: int | None = Field(default=None, sa_column=Column(BigInteger()))
    status: FileStatus = Field(sa_column=Column(String(16), nullable=False))
    rejection_reason: str | None = Field(default=None, sa_column=Column(String(32)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    uploaded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
