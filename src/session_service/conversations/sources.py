"""What tells the feed that a conversation has news, chosen once per process from the settings.

- PostgreSQL: every append NOTIFYs in its own transaction (delivered on commit, dropped on
  rollback), and one LISTEN connection per process hears every instance's appends
  (`core/pglisten.py`). On each (re)connect every stream reads again, so nothing sent while
  the listener was away is missed.
- PostgreSQL behind PgBouncer's transaction pooling with no DATABASE_LISTEN_URL: LISTEN
  cannot work there, so the process reads the followed conversations' `last_seq` every
  LIVE_POLL_INTERVAL (one query for all of them) and wakes the streams behind.
- SQLite (one process): appends wake the streams after they commit, nothing more.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.conversations.feed import MESSAGES_CHANNEL, MessageFeed
from session_service.conversations.repository import ConversationRepository
from session_service.core.db import behind_pgbouncer, driver_dsn, read_scope
from session_service.core.errors import DatabaseUnavailable
from session_service.core.pglisten import PgListener
from session_service.core.settings import Settings

log = structlog.get_logger(__name__)

POLL_BATCH = 500
"""Conversations per polling query."""


class FeedMode(StrEnum):
    """How this process hears of new messages."""

    LISTEN = "listening"
    POLL = "polling"
    IN_PROCESS = "in-process"


def feed_mode(settings: Settings) -> FeedMode:
    """LISTEN wherever a connection can (not through transaction pooling), else poll."""
    if settings.is_sqlite:
        return FeedMode.IN_PROCESS
    if settings.database.listen_url or not behind_pgbouncer(settings):
        return FeedMode.LISTEN
    return FeedMode.POLL


class FeedSource(Protocol):
    """Feeds the feed until cancelled; says how it is doing for readiness."""

    mode: FeedMode

    @property
    def status(self) -> str:
        """`ok: <mode>`, or `degraded: ...` while it cannot hear other instances."""
        ...

    async def run(self) -> None:
        """Feed until cancelled."""
        ...


class Listening:
    """The process's LISTEN connection, feeding the feed."""

    mode = FeedMode.LISTEN

    def __init__(self, settings: Settings, feed: MessageFeed) -> None:
        url = settings.database.listen_url or settings.database.url
        self.listener = PgListener(
            driver_dsn(url),
            MESSAGES_CHANNEL,
            on_notify=feed.publish_payload,
            on_listening=feed.resync,
            on_state=self._on_state,
            connect_timeout=settings.database.connect_timeout,
        )
        self.feed = feed

    def _on_state(self, up: bool) -> None:
        self.feed.listening = up

    @property
    def status(self) -> str:
        return "ok: listening" if self.listener.up else "degraded: listener reconnecting"

    async def run(self) -> None:
        await self.listener.run()


class Polling:
    """Reads the followed conversations' `last_seq` every interval."""

    mode = FeedMode.POLL
    status = "ok: polling"

    def __init__(
        self, maker: async_sessionmaker[AsyncSession], feed: MessageFeed, *, interval: float
    ) -> None:
        self.maker = maker
        self.feed = feed
        self.interval = interval

    async def run(self) -> None:
        log.info("live_updates_polling", interval=self.interval)
        while True:
            await asyncio.sleep(self.interval)
            await self.poll()

    async def poll(self) -> None:
        """Wake the streams of every followed conversation that has moved on."""
        following = self.feed.following()
        for start in range(0, len(following), POLL_BATCH):
            batch = following[start : start + POLL_BATCH]
            try:
                async with read_scope(self.maker) as db:
                    latest = await ConversationRepository(db).last_seqs(batch)
            except DatabaseUnavailable:
                log.warning("live_poll_failed")
                return
            for conversation_id, seq in latest:
                self.feed.publish(conversation_id, seq)


class InProcess:
    """Nothing to run: appends wake this process's streams once they commit."""

    mode = FeedMode.IN_PROCESS
    status = "ok: in-process"

    async def run(self) -> None:
        return


def feed_source(
    settings: Settings, feed: MessageFeed, maker: async_sessionmaker[AsyncSession]
) -> FeedSource:
    """The source `feed_mode` picks for these settings."""
    mode = feed_mode(settings)
    if mode is FeedMode.LISTEN:
        return Listening(settings, feed)
    if mode is FeedMode.POLL:
        return Polling(maker, feed, interval=settings.live.poll_interval)
    return InProcess()
