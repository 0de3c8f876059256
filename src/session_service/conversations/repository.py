"""SQL for conversations and messages: the only place that reads or writes them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.conversations.models import Conversation, Message, Role
from session_service.conversations.snapshot import ConversationSnapshot, MessageSnapshot
from session_service.core.sqltypes import table_of

_conversations = table_of(Conversation)
_messages = table_of(Message)

_GET = select(_conversations).where(
    _conversations.c.id == bindparam("id"),
    _conversations.c.session_id == bindparam("session_id"),
)
_GET_FOR_UPDATE = _GET.with_for_update()
_LIST = (
    select(_conversations)
    .where(_conversations.c.session_id == bindparam("session_id"))
    .order_by(_conversations.c.created_at, _conversations.c.id)
)
# Totals of a session's messages, from its conversations' running totals (a few rows).
_USAGE = select(
    func.coalesce(func.sum(_conversations.c.message_count), 0),
    func.coalesce(func.sum(_conversations.c.message_bytes), 0),
).where(_conversations.c.session_id == bindparam("session_id"))
_BY_CLIENT_ID = select(_messages).where(
    _messages.c.conversation_id == bindparam("conversation_id"),
    _messages.c.client_message_id == bindparam("client_message_id"),
)
# Allocates the next `seq` under the row's lock, and keeps the totals, in one statement.
_ALLOCATE = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("conversation_id"))
    .values(
        last_seq=_conversations.c.last_seq + 1,
        message_count=_conversations.c.message_count + 1,
        message_bytes=_conversations.c.message_bytes + bindparam("content_bytes"),
        updated_at=bindparam("now"),
    )
    .returning(_conversations.c.last_seq)
)


_ANNOUNCE = select(func.pg_notify(bindparam("channel"), bindparam("payload")))


class ConversationRepository:
    """Conversation and message rows, in the caller's unit of work."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def insert(self, conversation: ConversationSnapshot) -> None:
        """Record a new conversation."""
        await self.db.execute(insert(_conversations), asdict(conversation))

    async def get(
        self, conversation_id: uuid.UUID, *, session_id: uuid.UUID, lock: bool = False
    ) -> ConversationSnapshot | None:
        """The conversation if it belongs to this session (`lock`: until the unit ends)."""
        stmt = _GET_FOR_UPDATE if lock else _GET
        row = await self.db.execute(stmt, {"id": conversation_id, "session_id": session_id})
        found = row.first()
        return None if found is None else ConversationSnapshot(**found._mapping)

    async def of_session(self, session_id: uuid.UUID) -> list[ConversationSnapshot]:
        """A session's conversations, oldest first."""
        result = await self.db.execute(_LIST, {"session_id": session_id})
        return [ConversationSnapshot(**row) for row in result.mappings()]

    async def rename(
        self, conversation: ConversationSnapshot, *, title: str | None, now: datetime
    ) -> ConversationSnapshot:
        """A new title (None: none)."""
        stmt = (
            update(_conversations)
            .where(_conversations.c.id == conversation.id)
            .values(title=title, updated_at=now)
            .returning(*_conversations.c)
        )
        return ConversationSnapshot(**(await self.db.execute(stmt)).one()._mapping)

    async def delete(self, conversation_id: uuid.UUID) -> None:
        """Remove the conversation (its messages go with it)."""
        await self.db.execute(delete(_conversations).where(_conversations.c.id == conversation_id))

    async def count(self, session_id: uuid.UUID) -> int:
        """How many conversations a session holds."""
        stmt = select(func.count()).where(_conversations.c.session_id == session_id)
        return int(await self.db.scalar(stmt) or 0)

    async def usage(self, session_id: uuid.UUID) -> tuple[int, int]:
        """A session's messages and their bytes (the caller holds a lock that orders appends)."""
        result = await self.db.execute(_USAGE, {"session_id": session_id})
        count, total = cast(tuple[int, int], tuple(result.one()))
        return int(count), int(total)

    async def by_client_id(
        self, conversation_id: uuid.UUID, client_message_id: str
    ) -> MessageSnapshot | None:
        """The message a retried append already stored, if any."""
        params = {"conversation_id": conversation_id, "client_message_id": client_message_id}
        row = (await self.db.execute(_BY_CLIENT_ID, params)).first()
        return None if row is None else _message(row._mapping)

    async def append(
        self,
        conversation: ConversationSnapshot,
        *,
        role: Role,
        content: str,
        content_bytes: int,
        attachments: list[str],
        meta: dict[str, Any] | None,
        client_message_id: str | None,
        now: datetime,
    ) -> MessageSnapshot:
        """Store a message at the conversation's next `seq` (the caller holds its lock)."""
        params = {"conversation_id": conversation.id, "content_bytes": content_bytes, "now": now}
        seq = int((await self.db.execute(_ALLOCATE, params)).scalar_one())
        message = MessageSnapshot(
            id=uuid.uuid4(),
            conversation_id=conversation.id,
            session_id=conversation.session_id,
            seq=seq,
            role=role,
            content=content,
            content_bytes=content_bytes,
            attachments=attachments,
            meta=meta,
            client_message_id=client_message_id,
            created_at=now,
        )
        await self.db.execute(insert(_messages), asdict(message))
        return message

    async def page(
        self,
        conversation_id: uuid.UUID,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int,
    ) -> list[MessageSnapshot]:
        """Messages after `after` oldest first (and before `before`, if given too), or before
        `before` newest first, or else the newest, newest first: a range of the
        (conversation, seq) index either way."""
        stmt = select(_messages).where(_messages.c.conversation_id == conversation_id)
        if before is not None:
            stmt = stmt.where(_messages.c.seq < before)
        if after is not None:
            stmt = stmt.where(_messages.c.seq > after).order_by(_messages.c.seq)
        else:
            stmt = stmt.order_by(_messages.c.seq.desc())
        result = await self.db.execute(stmt.limit(limit))
        return [_message(row) for row in result.mappings()]

    async def last_seqs(self, conversation_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, int]]:
        """Each existing conversation's newest `seq` (for streams that poll)."""
        stmt = select(_conversations.c.id, _conversations.c.last_seq).where(
            _conversations.c.id.in_(conversation_ids)
        )
        result = await self.db.execute(stmt)
        return [(row.id, int(row.last_seq)) for row in result]

    async def announce(self, channel: str, payload: str) -> None:
        """PostgreSQL NOTIFY in this unit of work: every listener hears it once it commits,
        none if it rolls back."""
        await self.db.execute(_ANNOUNCE, {"channel": channel, "payload": payload})


def _message(mapping: Any) -> MessageSnapshot:
    values = dict(mapping)
    values["role"] = Role(values["role"])
    return MessageSnapshot(**values)
