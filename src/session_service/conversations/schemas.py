"""Request and response bodies of the conversation routes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from session_service.conversations.models import Role
from session_service.conversations.snapshot import MessageSnapshot
from session_service.core.bodies import RequestBody
from session_service.http.examples import AT, FILE_ID, LATER, examples

CONVERSATION_ID = "8a9b0c1d-2e3f-4a5b-9c6d-7e8f9a0b1c2d"
MESSAGE_ID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
MAX_PAGE = 200
MAX_ATTACHMENTS = 10

AnyId = Annotated[uuid.UUID, Field(strict=False)]  # JSON carries ids as strings
ClientMessageId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Chosen by the caller, unique in the conversation: sending it again "
        "returns the stored message (200) instead of adding a second one.",
    ),
]
Title = Annotated[str, Field(min_length=1, max_length=200)]

MESSAGE: dict[str, Any] = {
    "id": MESSAGE_ID,
    "conversation_id": CONVERSATION_ID,
    "seq": 1,
    "role": "user",
    "content": "Can you summarise the report I attached?",
    "attachments": [FILE_ID],
    "metadata": None,
    "client_message_id": "m-1736933400-1",
    "created_at": LATER,
}
EVENT_STREAM_EXAMPLE = (
    "retry: 2000\n\n"
    f"id: 1\nevent: message\ndata: {json.dumps(MESSAGE, separators=(',', ':'))}\n\n"
    ": heartbeat\n\n"
)
EXPORTED_CONVERSATION: dict[str, Any] = {
    "id": CONVERSATION_ID,
    "title": "Quarterly report",
    "created_at": AT,
    "updated_at": LATER,
    "messages": [MESSAGE],
}
CONVERSATION: dict[str, Any] = {
    "id": CONVERSATION_ID,
    "title": "Quarterly report",
    "last_seq": 2,
    "message_count": 2,
    "created_at": AT,
    "updated_at": LATER,
}


class ConversationCreate(RequestBody):
    """A new conversation; its title is optional."""

    model_config = examples({"title": "Quarterly report"}, {})

    title: Title | None = None


class ConversationUpdate(RequestBody):
    """A conversation's new title (null removes it)."""

    model_config = examples({"title": "Q3 report questions"})

    title: Title | None


class ConversationRead(BaseModel):
    """A conversation, with where its messages have got to."""

    model_config = examples(CONVERSATION, from_attributes=True)

    id: uuid.UUID
    title: str | None
    last_seq: int = Field(description="The newest message's `seq` (0: none yet).")
    message_count: int
    created_at: datetime
    updated_at: datetime


class ConversationList(BaseModel):
    """A session's conversations, oldest first."""

    model_config = examples({"conversations": [CONVERSATION]})

    conversations: list[ConversationRead]


class _MessageBody(RequestBody):
    content: str = Field(min_length=1, description="At most MESSAGE_MAX_CHARS characters.")
    client_message_id: ClientMessageId | None = None
    attachments: list[AnyId] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description="Ids of uploaded files of the same session.",
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="Small JSON (at most 4 KiB): a model name, token counts..."
    )


class UserMessageCreate(_MessageBody):
    """A message the visitor sends: role `user` only."""

    model_config = examples(
        {
            "content": "Can you summarise the report I attached?",
            "client_message_id": "m-1736933400-1",
            "attachments": [FILE_ID],
        }
    )

    role: Literal["user"] = "user"


class AgentMessageCreate(_MessageBody):
    """A message the agent backend adds: any role (an assistant reply, a tool result)."""

    model_config = examples(
        {
            "role": "assistant",
            "content": "The report shows revenue up 12% on the quarter.",
            "client_message_id": "reply-to-m-1736933400-1",
            "metadata": {"model": "rules-v1", "tokens": 42},
        }
    )

    role: Role = Field(strict=False)


class MessageRead(BaseModel):
    """A stored message."""

    model_config = examples(MESSAGE)

    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int = Field(description="Its place in the conversation: 1, 2, 3... without gaps.")
    role: Role
    content: str
    attachments: list[uuid.UUID]
    metadata: dict[str, Any] | None
    client_message_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, message: MessageSnapshot) -> MessageRead:
        """The answer for a stored message."""
        return cls(
            id=message.id,
            conversation_id=message.conversation_id,
            seq=message.seq,
            role=message.role,
            content=message.content,
            attachments=[uuid.UUID(file_id) for file_id in message.attachments],
            metadata=message.meta,
            client_message_id=message.client_message_id,
            created_at=message.created_at,
        )


class MessagePage(BaseModel):
    """A page of messages: newest first for `before` (and by default), oldest first for
    `after`. Ask again with `before=next_before` (or `after=next_after`) for the next."""

    model_config = examples({"messages": [MESSAGE], "next_before": None, "next_after": None})

    messages: list[MessageRead]
    next_before: int | None = Field(description="Older messages remain before this `seq`.")
    next_after: int | None = Field(description="Newer messages may follow this `seq`.")
