"""Following a conversation for a live stream: what the client missed, then news as it comes.

Every read is a short read-only transaction, after which the connection goes back to the
pool: a stream that waits holds none. What a stream sends always comes from the database,
in `seq` order and without gaps (`after` the last `seq` it sent, each page checked to run
on without a hole), so notifications only say when to read, and a client that reads slowly
simply gets more per read. Each read, the heartbeat's included, checks again that the token
the stream was opened with still opens the session and that the conversation still exists;
when either is gone the stream ends, and the client's reconnection hears why (401, 404).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.conversations.feed import MessageFeed, Subscription
from session_service.conversations.repository import ConversationRepository
from session_service.conversations.snapshot import MessageSnapshot
from session_service.core.db import read_scope
from session_service.core.errors import DatabaseUnavailable
from session_service.sessions.service import SessionService
from session_service.sessions.snapshot import SessionSnapshot

log = structlog.get_logger(__name__)

PAGE = 100
"""Messages per read; a longer backlog is read page after page, sending as it goes."""


@dataclass(frozen=True, slots=True)
class _Read:
    """What one read found: where the stream now stands and the messages to send, or why
    the stream ends."""

    position: int | None
    messages: list[MessageSnapshot]
    ended: str | None = None


class MessageStream:
    """Reads a followed conversation for its streams (one instance per process)."""

    def __init__(
        self,
        *,
        maker: async_sessionmaker[AsyncSession],
        feed: MessageFeed,
        sessions: SessionService,
        heartbeat: float,
        on_sent: Callable[[int], None] | None = None,
    ) -> None:
        self.maker = maker
        self.feed = feed
        self.sessions = sessions
        self.heartbeat = heartbeat
        # Told how many messages a stream has just sent, for metrics; cheap.
        self.on_sent = on_sent
        self._reads: set[asyncio.Task[_Read]] = set()  # strong references while they run

    async def follow(
        self, subscription: Subscription, session: SessionSnapshot, *, after: int | None
    ) -> AsyncGenerator[list[MessageSnapshot], None]:
        """Pages of messages after `after` (None: from now on), oldest first, then each new
        message as it commits; an empty page when the stream has been idle for a heartbeat.
        Ends when the session or the conversation does, or the server stops."""
        conversation_id = subscription.conversation_id
        position = after
        sent = 0
        ended = "client_left"
        try:
            while not self.feed.closed:
                read = await self._read(session, conversation_id, position)
                if read.ended is not None:
                    ended = read.ended
                    return
                position = subscription.position = read.position
                if read.messages:
                    sent += len(read.messages)
                    if self.on_sent is not None:
                        self.on_sent(len(read.messages))
                    yield read.messages
                    if len(read.messages) == PAGE:
                        continue  # a backlog: read on without waiting
                if not await subscription.wait(self.heartbeat) and not self.feed.closed:
                    yield []  # idle for a heartbeat; the next read checks the session again
            ended = "shutdown"
        finally:
            log.info(
                "live_stream_ended",
                session_id=str(session.id),
                conversation_id=str(conversation_id),
                reason=ended,
                sent=sent,
            )

    async def _read(
        self, session: SessionSnapshot, conversation_id: uuid.UUID, position: int | None
    ) -> _Read:
        """What is new after `position`. The read runs to its end even if the client leaves
        meanwhile (which cancels the stream): its connection then goes back to the pool
        clean instead of being torn down in the middle of a statement."""
        read = asyncio.ensure_future(self._read_now(session, conversation_id, position))
        self._reads.add(read)
        read.add_done_callback(_forget(self._reads))
        return await asyncio.shield(read)

    async def _read_now(
        self, session: SessionSnapshot, conversation_id: uuid.UUID, position: int | None
    ) -> _Read:
        """A database that cannot answer now is asked again at the next wake-up (the stream
        stays, its heartbeats go on)."""
        try:
            async with read_scope(self.maker) as db:
                reason = await self.sessions.recheck(session, db=db)
                if reason is not None:
                    return _Read(position, [], ended=f"session_{reason.value}")
                repository = ConversationRepository(db)
                conversation = await repository.get(conversation_id, session_id=session.id)
                if conversation is None:
                    return _Read(position, [], ended="conversation_gone")
                if position is None:  # from now on
                    return _Read(conversation.last_seq, [])
                if conversation.last_seq <= position:
                    return _Read(position, [])
                found = await repository.page(conversation_id, after=position, limit=PAGE)
        except DatabaseUnavailable:
            log.warning("live_stream_read_failed", conversation_id=str(conversation_id))
            return _Read(position, [])
        messages = _without_gaps(found, position)
        return _Read(messages[-1].seq if messages else position, messages)


def _forget(reads: set[asyncio.Task[_Read]]) -> Callable[[asyncio.Task[_Read]], None]:
    def done(read: asyncio.Task[_Read]) -> None:
        reads.discard(read)
        if not read.cancelled():
            read.exception()  # retrieved: its stream may be gone, and the stream raises it

    return done


def _without_gaps(found: list[MessageSnapshot], position: int) -> list[MessageSnapshot]:
    """The messages that follow `position` one by one, up to the first hole. Appends to one
    conversation commit in `seq` order (each holds the conversation's row lock), so a hole
    is a message still committing: its own notification wakes the stream again."""
    expected = position + 1
    for index, message in enumerate(found):
        if message.seq != expected:
            return found[:index]
        expected += 1
    return found
