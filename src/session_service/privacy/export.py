"""GDPR portability: one JSON document with the session, its files and its audit events.

Streamed: the document is written piece by piece while audit events are read in keyset
batches, so a long trail is never held in memory. The stream reads in a unit of work of
its own, because the response body is produced after the request's transaction ended.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.audit.repository import AuditRepository
from session_service.audit.service import AuditService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import session_scope
from session_service.core.settings import Settings
from session_service.files.models import FileStatus
from session_service.files.repository import FileRepository
from session_service.files.schemas import FileRead
from session_service.sessions.schemas import SessionDetailsRead
from session_service.sessions.snapshot import SessionSnapshot
from session_service.storage.base import ObjectStore

AUDIT_BATCH = 500


class ExportedFile(FileRead):
    """A file in the export, with a fresh download URL when it has content."""

    download_url: str | None = None


class SessionExporter:
    """Writes a session's export as a stream of JSON bytes."""

    def __init__(
        self,
        *,
        maker: async_sessionmaker[AsyncSession],
        audit: AuditService,
        store: ObjectStore,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.maker = maker
        self.audit = audit
        self.store = store
        self.settings = settings
        self.clock = clock

    async def export(
        self, session: SessionSnapshot, *, ctx: RequestContext, base_url: str
    ) -> AsyncIterator[bytes]:
        """Audit the export (committed first, so the document includes it), then stream it."""
        await self.audit.record_alone(
            EventType.SESSION_EXPORTED, ctx=ctx, session_id=session.id, outcome=Outcome.SUCCESS
        )
        return self.stream(session, base_url=base_url)

    async def stream(self, session: SessionSnapshot, *, base_url: str) -> AsyncIterator[bytes]:
        """The export document; relative download URLs are resolved against `base_url`."""
        async with session_scope(self.maker) as db:
            yield b'{"format":"session-service.export.v1","exported_at":'
            yield _json(self.clock())
            yield b',"session":'
            yield _model(SessionDetailsRead.model_validate(session))
            yield b',"files":['
            for index, file in enumerate(await FileRepository(db).list(session.id)):
                url = None
                if file.status == FileStatus.UPLOADED:
                    relative = await self.store.download_url(
                        file.storage_key,
                        filename=file.original_name,
                        expires_in=self.settings.download_url_ttl,
                    )
                    url = urljoin(base_url, relative)
                exported = ExportedFile.model_validate(file).model_copy(
                    update={"download_url": url}
                )
                yield (b"," if index else b"") + _model(exported)
            yield b'],"audit_events":['
            first = True
            async for batch in AuditRepository(db).for_session(session.id, batch=AUDIT_BATCH):
                for event in batch:
                    yield (b"" if first else b",") + _json(event)
                    first = False
            yield b"]}"


def _json(value: Any) -> bytes:
    return json.dumps(value, default=_default, separators=(",", ":")).encode()


def _model(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)
