"""Read-only copies of conversation and message rows, as the repository returns them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from session_service.conversations.models import Role


@dataclass(frozen=True, slots=True)
class ConversationSnapshot:
    """A conversation as of the statement that read or wrote it."""

    id: uuid.UUID
    session_id: uuid.UUID
    title: str | None
    last_seq: int
    message_count: int
    message_bytes: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MessageSnapshot:
    """A stored message."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    session_id: uuid.UUID
    seq: int
    role: Role
    content: str
    content_bytes: int
    attachments: list[str]
    meta: dict[str, Any] | None
    client_message_id: str | None
    created_at: datetime
