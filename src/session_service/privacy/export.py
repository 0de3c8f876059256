"""GDPR portability: everything stored about a session, as one JSON document or a ZIP archive.

Format `session-service.export.v3`: `session` holds every field stored about the visitor
(the caller's address and user agent included; never the token's digest), and
`previous_sessions` the audit trails of the sessions this one replaced by a reset: the
browser proved it held them by presenting their tokens, which is what linked them.

The request's unit of work records `session.exported` and commits; what the export
holds is then read in a read scope of its own (`core/db.read_scope`: one snapshot, and on
SQLite no write lock, so a long trail holds no writer up), which includes that event, and
answered from memory: no database connection waits on a slow reader. Audit events are
read in keyset batches; the ZIP form reads file contents from storage while it streams
(`privacy/archive.py`). If the read fails, the answer is a 503, never a partial export.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Literal
from urllib.parse import urljoin

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.audit.schemas import AuditEventRead
from session_service.audit.service import AuditService
from session_service.conversations.schemas import EXPORTED_CONVERSATION, MessageRead
from session_service.conversations.service import ConversationService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import after_commit_await, read_scope
from session_service.files.schemas import FileRead
from session_service.files.service import FileService
from session_service.http.examples import AUDIT_EVENT, EXPORTED_SESSION, FILE, LATER, examples
from session_service.privacy.archive import zip_export
from session_service.privacy.content import (
    ExportContent,
    ExportedConversation,
    ExportedSession,
    Trail,
    events_json,
    head_json,
    model_json,
    to_json,
)
from session_service.privacy.erasure import MAX_PREVIOUS_SESSIONS
from session_service.sessions.service import SessionService
from session_service.sessions.snapshot import SessionSnapshot

AUDIT_BATCH = 500

ExportFormat = Literal["json", "zip"]


class ExportedFile(FileRead):
    """A file in the JSON export, with a fresh download URL when it has content."""

    download_url: str | None = None


class PreviousSessionExport(BaseModel):
    """A session this one replaced by a reset: its audit trail."""

    id: uuid.UUID
    audit_events: list[AuditEventRead]


class ExportDocument(BaseModel):
    """The JSON form of the export (built as bytes; this model documents and tests it)."""

    model_config = examples(
        {
            "format": "session-service.export.v3",
            "exported_at": LATER,
            "session": EXPORTED_SESSION,
            "files": [
                {
                    **FILE,
                    "download_url": "https://sessions.example.com/api/v1/storage/downloads/...",
                }
            ],
            "conversations": [EXPORTED_CONVERSATION],
            "audit_events": [AUDIT_EVENT],
            "previous_sessions": [],
        }
    )

    format: Literal["session-service.export.v3"]
    exported_at: datetime
    session: ExportedSession
    files: list[ExportedFile]
    conversations: list[ExportedConversation] = Field(description="Oldest first.")
    audit_events: list[AuditEventRead] = Field(description="Oldest first.")
    previous_sessions: list[PreviousSessionExport] = Field(description="Newest first.")


@dataclass(slots=True)
class PendingExport:
    """An export recorded in the request's unit of work, read once that has committed."""

    content: ExportContent | None = None

    def result(self) -> ExportContent:
        """The content; only asked for once the request's unit of work is over."""
        assert self.content is not None, "export read before its unit of work committed"
        return self.content


class SessionExporter:
    """Reads a session's export through the sessions, files and audit services; one per process."""

    def __init__(
        self,
        *,
        sessions: SessionService,
        files: FileService,
        conversations: ConversationService,
        audit: AuditService,
        maker: async_sessionmaker[AsyncSession],
        clock: Clock,
    ) -> None:
        self.maker = maker
        self.conversations = conversations
        self.sessions = sessions
        self.files = files
        self.audit = audit
        self.clock = clock

    async def collect(
        self,
        session: SessionSnapshot,
        *,
        db: AsyncSession,
        ctx: RequestContext,
        export_format: ExportFormat,
    ) -> PendingExport:
        """Audit the export; its content is read once this unit of work has committed."""
        await self.audit.record(
            EventType.SESSION_EXPORTED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            outcome=Outcome.SUCCESS,
            details={"format": export_format},
        )
        pending = PendingExport()
        after_commit_await(db, partial(self._read, pending, session))
        return pending

    async def read(self, session: SessionSnapshot) -> ExportContent:
        """Everything the export holds but the files' contents, on one snapshot."""
        async with read_scope(self.maker) as db:
            previous = await self.sessions.lineage(session, db=db, limit=MAX_PREVIOUS_SESSIONS)
            return ExportContent(
                exported_at=self.clock(),
                session=ExportedSession.model_validate(session),
                files=list(await self.files.list(session, db=db)),
                conversations=[
                    ExportedConversation(
                        id=conversation.id,
                        title=conversation.title,
                        created_at=conversation.created_at,
                        updated_at=conversation.updated_at,
                        messages=[MessageRead.of(message) for message in messages],
                    )
                    for conversation, messages in await self.conversations.transcript(
                        session, db=db
                    )
                ],
                trail=await self._trail(session.id, db=db),
                previous=[await self._trail(previous_id, db=db) for previous_id in previous],
            )

    async def _read(self, pending: PendingExport, session: SessionSnapshot) -> None:
        pending.content = await self.read(session)

    async def document(self, content: ExportContent, *, base_url: str) -> list[bytes]:
        """The JSON form's pieces, each file with a fresh download URL resolved on `base_url`."""
        parts = [head_json(content), b',"files":[']
        for index, file in enumerate(content.files):
            relative = await self.files.download_url(file)
            exported = ExportedFile.model_validate(file).model_copy(
                update={"download_url": None if relative is None else urljoin(base_url, relative)}
            )
            parts.append((b"," if index else b"") + model_json(exported))
        parts.append(b'],"conversations":[')
        parts.append(b",".join(model_json(conversation) for conversation in content.conversations))
        parts.append(b'],"audit_events":')
        parts.append(events_json(content.trail.events))
        parts.append(b',"previous_sessions":[')
        for index, trail in enumerate(content.previous):
            parts.append((b"," if index else b"") + b'{"id":' + to_json(trail.session_id))
            parts.append(b',"audit_events":' + events_json(trail.events) + b"}")
        parts.append(b"]}")
        return parts

    def archive(self, content: ExportContent) -> AsyncIterator[bytes]:
        """The ZIP form, streamed: file contents read from storage a chunk at a time."""
        return zip_export(content, self.files.store)

    async def _trail(self, session_id: uuid.UUID, *, db: AsyncSession) -> Trail:
        events: list[bytes] = []
        async for batch in self.audit.trail(session_id, db=db, batch=AUDIT_BATCH):
            events.extend(to_json(event.as_dict()) for event in batch)
        return Trail(session_id=session_id, events=events)
