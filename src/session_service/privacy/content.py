"""What an export holds, as read in the request's unit of work, and its JSON pieces.

Shared by both forms: the JSON document (`export.py`) and the ZIP archive (`archive.py`).
Format `session-service.export.v3` (see docs/export.md).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from session_service.conversations.schemas import EXPORTED_CONVERSATION, MessageRead
from session_service.files.snapshot import FileSnapshot
from session_service.http.examples import EXPORTED_SESSION, examples
from session_service.sessions.schemas import SessionDetailsRead

FORMAT = "session-service.export.v3"


class ExportedSession(SessionDetailsRead):
    """Every field stored about the visitor's session."""

    model_config = examples(EXPORTED_SESSION, from_attributes=True)

    client_ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class Trail:
    """One session's audit events, each already JSON, oldest first."""

    session_id: uuid.UUID
    events: list[bytes]


class ExportedConversation(BaseModel):
    """A conversation with every message, oldest first."""

    model_config = examples(EXPORTED_CONVERSATION)

    id: uuid.UUID
    title: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[MessageRead]


@dataclass(frozen=True, slots=True)
class ExportContent:
    """What an export holds, read in the request's unit of work; no contents of files."""

    exported_at: datetime
    session: ExportedSession
    files: list[FileSnapshot]
    conversations: list[ExportedConversation]
    trail: Trail
    previous: list[Trail]
    """The sessions this one replaced by resets, newest first."""


def head_json(content: ExportContent) -> bytes:
    """The document's opening members, up to and including `session`, unclosed."""
    return (
        b'{"format":'
        + to_json(FORMAT)
        + b',"exported_at":'
        + to_json(content.exported_at)
        + b',"session":'
        + model_json(content.session)
    )


def events_json(events: list[bytes]) -> bytes:
    """Events already in JSON, as one array."""
    return b"[" + b",".join(events) + b"]"


def to_json(value: Any) -> bytes:
    """Compact JSON; times as RFC 3339 in UTC (`Z`), ids as strings."""
    return json.dumps(value, default=_default, separators=(",", ":")).encode()


def model_json(model: BaseModel) -> bytes:
    """A response model as compact JSON."""
    return model.model_dump_json().encode()


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)
