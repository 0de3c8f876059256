"""GDPR portability: one JSON document with the session, its files and its audit events.

Format `session-service.export.v2`: `session` holds every field stored about the visitor
(the caller's address and user agent included; never the token's digest), and
`previous_sessions` the audit trails of the sessions this one replaced by a reset: the
browser proved it held them by presenting their tokens, which is what linked them.

The document is read in the request's unit of work, right after `session.exported` is
recorded in it (so the document includes its own export), and is answered once that unit
of work has committed: no database connection waits on a slow reader. Audit events are
read in keyset batches.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.audit.service import AuditService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.files.schemas import FileRead
from session_service.files.service import FileService
from session_service.privacy.erasure import MAX_PREVIOUS_SESSIONS
from session_service.sessions.schemas import SessionDetailsRead
from session_service.sessions.service import SessionService
from session_service.sessions.snapshot import SessionSnapshot

AUDIT_BATCH = 500
FORMAT = "session-service.export.v2"


class ExportedSession(SessionDetailsRead):
    """Every field stored about the visitor's session."""

    client_ip: str | None
    user_agent: str | None


class ExportedFile(FileRead):
    """A file in the export, with a fresh download URL when it has content."""

    download_url: str | None = None


class SessionExporter:
    """Writes a session's export through the files and audit services; one per process."""

    def __init__(
        self, *, sessions: SessionService, files: FileService, audit: AuditService, clock: Clock
    ) -> None:
        self.sessions = sessions
        self.files = files
        self.audit = audit
        self.clock = clock

    async def export(
        self, session: SessionSnapshot, *, db: AsyncSession, ctx: RequestContext, base_url: str
    ) -> list[bytes]:
        """Audit the export, then the document's pieces; relative URLs resolve on `base_url`."""
        await self.audit.record(
            EventType.SESSION_EXPORTED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            outcome=Outcome.SUCCESS,
        )
        parts = [
            b'{"format":' + _json(FORMAT) + b',"exported_at":',
            _json(self.clock()),
            b',"session":',
            _model(ExportedSession.model_validate(session)),
            b',"files":[',
        ]
        for index, file in enumerate(await self.files.list(session, db=db)):
            relative = await self.files.download_url(file)
            exported = ExportedFile.model_validate(file).model_copy(
                update={"download_url": None if relative is None else urljoin(base_url, relative)}
            )
            parts.append((b"," if index else b"") + _model(exported))
        parts.append(b'],"audit_events":')
        parts.extend(await self._trail(session.id, db=db))
        parts.append(b',"previous_sessions":[')
        previous = await self.sessions.lineage(session, db=db, limit=MAX_PREVIOUS_SESSIONS)
        for index, previous_id in enumerate(previous):
            parts.append((b"," if index else b"") + b'{"id":' + _json(previous_id))
            parts.append(b',"audit_events":')
            parts.extend(await self._trail(previous_id, db=db))
            parts.append(b"}")
        parts.append(b"]}")
        return parts

    async def _trail(self, session_id: uuid.UUID, *, db: AsyncSession) -> list[bytes]:
        """A session's audit events as a JSON array, oldest first, read in batches."""
        parts = [b"["]
        first = True
        async for batch in self.audit.trail(session_id, db=db, batch=AUDIT_BATCH):
            for event in batch:
                parts.append((b"" if first else b",") + _json(event.as_dict()))
                first = False
        parts.append(b"]")
        return parts


def _json(value: Any) -> bytes:
    return json.dumps(value, default=_default, separators=(",", ":")).encode()


def _model(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)
