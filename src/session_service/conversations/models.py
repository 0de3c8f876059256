"""The conversations and messages tables: a session's chat history, gone with the session."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlmodel import Field, SQLModel

from session_service.core.sqltypes import UTCDateTime


class Role(StrEnum):
    """Who wrote a message. The browser writes `user` only; the agent backend any."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class Conversation(SQLModel, table=True):
    """One conversation of a session; it allocates its messages' `seq` and keeps their totals."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_session_id_created_at", "session_id", "created_at"),)

    id: uuid.UUID = Field(sa_column=Column(Uuid(), primary_key=True))
    session_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False)
    )
    title: str | None = Field(default=None, sa_column=Column(String(200)))
    last_seq: int = Field(sa_column=Column(BigInteger(), nullable=False))
    message_count: int = Field(sa_column=Column(Integer(), nullable=False))
    message_bytes: int = Field(sa_column=Column(BigInteger(), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Message(SQLModel, table=True):
    """One message: its place (`seq`) in its conversation, its author's role, its text."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'assistant', 'system', 'tool')", name="ck_messages_role"),
        # "The last N" and "after seq" are both ranges of this index.
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_id_seq"),
        # A retried append finds the message it stored.
        UniqueConstraint(
            "conversation_id", "client_message_id", name="uq_messages_conversation_id_client_id"
        ),
        Index("ix_messages_session_id", "session_id"),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid(), primary_key=True))
    conversation_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False)
    )
    session_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False)
    )
    seq: int = Field(sa_column=Column(BigInteger(), nullable=False))
    role: Role = Field(sa_column=Column(String(16), nullable=False))
    content: str = Field(sa_column=Column(Text(), nullable=False))
    content_bytes: int = Field(sa_column=Column(Integer(), nullable=False))
    attachments: list[str] = Field(sa_column=Column(JSON(), nullable=False))
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON()))
    client_message_id: str | None = Field(default=None, sa_column=Column(String(64)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
