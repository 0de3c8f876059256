"""The idempotency_keys table: the first answer to a request sent with an `Idempotency-Key`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, LargeBinary, String, Uuid
from sqlmodel import Field, SQLModel

from session_service.core.sqltypes import UTCDateTime


class IdempotencyRecord(SQLModel, table=True):
    """One key's first answer, encrypted, found by a digest of its scope.

    Neither the key nor the presented token is stored: `lookup` is the SHA-256 digest of
    (operation, `X-Session-ID` as presented, key), and `answer` is AES-GCM ciphertext under a
    key derived from the key and the token, so the table alone reveals no answer (and no
    token a create or reset answer carries). A row without an answer is a placeholder: it
    exists only inside the transaction of the request that claimed the key, which fills it
    before it commits. The answer's session owns the row: it goes when the session goes.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint(
            "answer IS NULL OR session_id IS NOT NULL", name="ck_idempotency_keys_answer_session"
        ),
        # Cleanup deletes expired keys by this.
        Index("ix_idempotency_keys_expires_at", "expires_at"),
        # Erasure and expiry delete a session's keys with it (the foreign key's cascade).
        Index("ix_idempotency_keys_session_id", "session_id"),
    )

    lookup: str = Field(sa_column=Column(String(64), primary_key=True))
    # HMAC-SHA256 of (method, path, body) under a key derived from the client's key and
    # token: tells a retry from another request without keeping a digest of the body.
    request_digest: str = Field(sa_column=Column(String(64), nullable=False))
    session_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(Uuid(), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=True),
    )
    answer: bytes | None = Field(default=None, sa_column=Column(LargeBinary(), nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
