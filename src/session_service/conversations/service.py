"""Conversation rules: create, rename, delete, append (idempotently), read pages.

No SQL and no HTTP types here. One instance per process; the unit of work is passed to
each call (`db=`), and each change is audited in it: ids, roles, lengths and counts, never
a message's content. Callers hold the session's lock for every change, so appends of one
session are ordered and its limits are counted exactly.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from session_service.audit.events import EventType
from session_service.audit.service import AuditService
from session_service.conversations.errors import (
    AttachmentNotUploaded,
    ConversationLimitReached,
    ConversationNotFound,
    MessageTooLong,
    SessionInactive,
)
from session_service.conversations.feed import MESSAGES_CHANNEL, MessageFeed, notification
from session_service.conversations.models import Role
from session_service.conversations.repository import ConversationRepository
from session_service.conversations.snapshot import ConversationSnapshot, MessageSnapshot
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import after_commit, is_postgres
from session_service.core.errors import InvalidInput
from session_service.core.settings import Settings
from session_service.files.service import FileService
from session_service.sessions.models import SessionStatus
from session_service.sessions.snapshot import SessionSnapshot

METADATA_MAX_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Draft:
    """A message to append, as its author sent it."""

    role: Role
    content: str
    client_message_id: str | None
    attachments: list[uuid.UUID]
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Appended:
    """The stored message, and whether this call stored it (False: a retry found it)."""

    message: MessageSnapshot
    created: bool


@dataclass(frozen=True, slots=True)
class Page:
    """A page of messages in the order asked for, and where the next page starts."""

    messages: list[MessageSnapshot]
    next_before: int | None
    next_after: int | None


class ConversationService:
    """A session's conversations, in the request's unit of work."""

    def __init__(
        self,
        *,
        files: FileService,
        audit: AuditService,
        feed: MessageFeed,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.files = files
        self.audit = audit
        self.feed = feed
        self.limits = settings.conversations
        self.clock = clock

    async def append_reply(
        self,
        session: SessionSnapshot,
        conversation_id: uuid.UUID,
        draft: Draft,
        *,
        db: AsyncSession,
        ctx: RequestContext,
    ) -> Appended:
        """The agent backend's append (any role): as `append`, to a live session only."""
        self._require_live(session)
        return await self.append(session, conversation_id, draft, db=db, ctx=ctx)

    def _require_live(self, session: SessionSnapshot) -> None:
        """Nothing is added to a session that has ended (reset or expired)."""
        if session.status in (SessionStatus.RESET, SessionStatus.EXPIRED):
            raise SessionInactive(
                f"The session has ended ({session.status.value}); nothing is added to it.",
                extra={"session_status": session.status.value},
            )

    async def create(
        self, session: SessionSnapshot, *, title: str | None, db: AsyncSession, ctx: RequestContext
    ) -> ConversationSnapshot:
        """A new, empty conversation (at most CONVERSATION_MAX_PER_SESSION per session)."""
        repository = ConversationRepository(db)
        if await repository.count(session.id) >= self.limits.max_per_session:
            raise ConversationLimitReached(
                f"A session may hold at most {self.limits.max_per_session} conversations.",
                extra={"max_conversations": self.limits.max_per_session},
            )
        now = self.clock()
        conversation = ConversationSnapshot(
            id=uuid.uuid4(),
            session_id=session.id,
            title=title,
            last_seq=0,
            message_count=0,
            message_bytes=0,
            created_at=now,
            updated_at=now,
        )
        await repository.insert(conversation)
        await self.audit.record(
            EventType.CONVERSATION_CREATED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            details={"conversation_id": str(conversation.id)},
        )
        return conversation

    async def all(
        self, session: SessionSnapshot, *, db: AsyncSession
    ) -> list[ConversationSnapshot]:
        """The session's conversations, oldest first."""
        return await ConversationRepository(db).of_session(session.id)

    async def message_count(self, session: SessionSnapshot, *, db: AsyncSession) -> int:
        """How many messages the session holds (erasure's audit event counts them)."""
        count, _ = await ConversationRepository(db).usage(session.id)
        return count

    async def transcript(
        self, session: SessionSnapshot, *, db: AsyncSession, batch: int = 500
    ) -> list[tuple[ConversationSnapshot, list[MessageSnapshot]]]:
        """Every conversation with every message, oldest first (for the export)."""
        repository = ConversationRepository(db)
        everything = []
        for conversation in await repository.of_session(session.id):
            messages: list[MessageSnapshot] = []
            while True:
                after = messages[-1].seq if messages else 0
                page = await repository.page(conversation.id, after=after, limit=batch)
                messages.extend(page)
                if len(page) < batch:
                    break
            everything.append((conversation, messages))
        return everything

    async def get(
        self, session: SessionSnapshot, conversation_id: uuid.UUID, *, db: AsyncSession
    ) -> ConversationSnapshot:
        """One of the session's conversations; 404 for any other."""
        return await self._get(ConversationRepository(db), session, conversation_id)

    async def rename(
        self,
        session: SessionSnapshot,
        conversation_id: uuid.UUID,
        *,
        title: str | None,
        db: AsyncSession,
        ctx: RequestContext,
    ) -> ConversationSnapshot:
        """A new title (the title itself is not audited: it may be personal)."""
        repository = ConversationRepository(db)
        conversation = await self._get(repository, session, conversation_id, lock=True)
        renamed = await repository.rename(conversation, title=title, now=self.clock())
        await self.audit.record(
            EventType.CONVERSATION_RENAMED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            details={"conversation_id": str(conversation.id)},
        )
        return renamed

    async def delete(
        self,
        session: SessionSnapshot,
        conversation_id: uuid.UUID,
        *,
        db: AsyncSession,
        ctx: RequestContext,
    ) -> None:
        """The conversation and every message in it, for good."""
        repository = ConversationRepository(db)
        conversation = await self._get(repository, session, conversation_id, lock=True)
        await repository.delete(conversation.id)
        await self.audit.record(
            EventType.CONVERSATION_DELETED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            details={
                "conversation_id": str(conversation.id),
                "messages": conversation.message_count,  # exact: the row is locked
            },
        )

    async def append(
        self,
        session: SessionSnapshot,
        conversation_id: uuid.UUID,
        draft: Draft,
        *,
        db: AsyncSession,
        ctx: RequestContext,
    ) -> Appended:
        """Store the message at the conversation's next `seq`; a retry with the same
        `client_message_id` returns the stored one instead (checked under the conversation's
        lock, so concurrent retries store it once)."""
        repository = ConversationRepository(db)
        conversation = await self._get(repository, session, conversation_id, lock=True)
        if draft.client_message_id is not None:
            stored = await repository.by_client_id(conversation.id, draft.client_message_id)
            if stored is not None:
                return Appended(message=stored, created=False)
        content_bytes = self._check(draft)
        await self._check_attachments(session, draft.attachments, db=db)
        count, used = await repository.usage(session.id)
        if count >= self.limits.max_messages or used + content_bytes > self.limits.max_bytes:
            raise ConversationLimitReached(
                f"A session may hold at most {self.limits.max_messages} messages and "
                f"{self.limits.max_bytes} bytes of them.",
                extra={
                    "max_messages": self.limits.max_messages,
                    "max_bytes": self.limits.max_bytes,
                },
            )
        message = await repository.append(
            conversation,
            role=draft.role,
            content=draft.content,
            content_bytes=content_bytes,
            attachments=[str(file_id) for file_id in draft.attachments],
            meta=draft.metadata,
            client_message_id=draft.client_message_id,
            now=self.clock(),
        )
        await self.audit.record(
            EventType.CONVERSATION_MESSAGE_ADDED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            details={
                "conversation_id": str(conversation.id),
                "message_id": str(message.id),
                "seq": message.seq,
                "role": message.role.value,
                "chars": len(message.content),
                "attachments": len(message.attachments),
            },
        )
        await self._announce(repository, message, db=db)
        return Appended(message=message, created=True)

    async def page(
        self,
        session: SessionSnapshot,
        conversation_id: uuid.UUID,
        *,
        before: int | None,
        after: int | None,
        limit: int,
        db: AsyncSession,
    ) -> Page:
        """Messages after `after` (oldest first; with `before` too, the range between),
        before `before` (newest first), or the newest (newest first)."""
        repository = ConversationRepository(db)
        conversation = await self._get(repository, session, conversation_id)
        messages = await repository.page(conversation.id, before=before, after=after, limit=limit)
        if after is not None:  # oldest first; an empty page: nothing new after `after`
            newest = messages[-1].seq if messages else after
            return Page(messages, next_before=None, next_after=newest)
        # Newest first. `seq` has no gaps, so older messages remain while the oldest here > 1.
        oldest = messages[-1].seq if messages else None
        return Page(
            messages,
            next_before=oldest if oldest is not None and oldest > 1 else None,
            next_after=messages[0].seq if messages else None,
        )

    async def _announce(
        self, repository: ConversationRepository, message: MessageSnapshot, *, db: AsyncSession
    ) -> None:
        """Tell the live streams, once this unit of work commits: every instance through
        PostgreSQL's NOTIFY, and this process's own streams directly while no listener hears
        it for them (SQLite, polling, a listener reconnecting). Ids only, never content."""
        conversation_id, seq = message.conversation_id, message.seq
        if is_postgres(db):
            await repository.announce(MESSAGES_CHANNEL, notification(conversation_id, seq))
        if self.feed.local:
            after_commit(db, partial(self.feed.publish, conversation_id, seq))

    def _check(self, draft: Draft) -> int:
        """The content's length in UTF-8 bytes, once its size and metadata's are allowed."""
        if len(draft.content) > self.limits.message_max_chars:
            raise MessageTooLong(
                f"A message may hold at most {self.limits.message_max_chars} characters.",
                extra={"max_chars": self.limits.message_max_chars},
            )
        if draft.metadata is not None:
            size = len(json.dumps(draft.metadata, separators=(",", ":")).encode())
            if size > METADATA_MAX_BYTES:
                raise InvalidInput(
                    f"A message's metadata may take at most {METADATA_MAX_BYTES} bytes as JSON."
                )
        return len(draft.content.encode())

    async def _check_attachments(
        self, session: SessionSnapshot, attachments: list[uuid.UUID], *, db: AsyncSession
    ) -> None:
        if not attachments:
            return
        uploaded = await self.files.uploaded_ids(session, attachments, db=db)
        missing = [str(file_id) for file_id in attachments if file_id not in uploaded]
        if missing:
            raise AttachmentNotUploaded(
                "Attachments must be uploaded files of this session.",
                extra={"files": missing},
            )

    async def _get(
        self,
        repository: ConversationRepository,
        session: SessionSnapshot,
        conversation_id: uuid.UUID,
        *,
        lock: bool = False,
    ) -> ConversationSnapshot:
        conversation = await repository.get(conversation_id, session_id=session.id, lock=lock)
        if conversation is None:
            raise ConversationNotFound("No such conversation in this session.")
        return conversation
