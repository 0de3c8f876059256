"""One PostgreSQL connection that LISTENs on a channel for the whole process, reconnecting.

PostgreSQL delivers a NOTIFY only to connections that LISTEN, and only while they stay
connected. A pooled connection cannot listen (it goes back to the pool between uses), nor
can one behind PgBouncer's transaction pooling (each transaction may run on another server
connection): the listener has a connection of its own, outside the pool, to PostgreSQL
directly or through a session-mode pool. It holds no transaction and prepares nothing.

A lost connection is reconnected with backoff. Notifications sent while it was away are
gone for good, so every (re)connect calls `on_listening` once LISTEN is in place: whoever
relies on the notifications catches up from the tables then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import structlog

log = structlog.get_logger(__name__)

RETRY_MIN = 0.5
RETRY_MAX = 30.0
"""Seconds between connection attempts: doubling from RETRY_MIN up to RETRY_MAX, and back to
RETRY_MIN once a connection has listened."""

PING_INTERVAL = 30.0
"""An idle listener asks `SELECT 1` this often: a connection lost without the peer closing
it (a dropped route, a host gone) is noticed within this, not never."""

APPLICATION_NAME = "session-service-listener"
"""How the connection shows in `pg_stat_activity`."""

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset; TimeoutError is one
    asyncpg.PostgresError,  # authentication, too many connections, terminated by an admin
    asyncpg.InterfaceError,  # the connection is gone
)


class PgListener:
    """LISTEN on `channel` on a connection of its own; `run()` until cancelled."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        *,
        on_notify: Callable[[str], None],
        on_listening: Callable[[], None],
        on_state: Callable[[bool], None] | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.on_notify = on_notify
        self.on_listening = on_listening
        # Told True once LISTEN is in place, False when the connection is lost; cheap.
        self.on_state = on_state
        self.connect_timeout = connect_timeout
        self.up = False
        self.sessions = 0
        """How many connections have listened so far (a reconnect makes it 2 or more)."""

    async def run(self) -> None:
        """Listen, and listen again after every loss, until cancelled."""
        delay = RETRY_MIN
        while True:
            try:
                await self._session()
                delay = RETRY_MIN  # it listened until it was lost: try again soon
            except _UNAVAILABLE as error:
                log.warning("live_listener_unavailable", error=type(error).__name__, retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _session(self) -> None:
        """Connect, LISTEN, and return once the connection is lost."""
        connection: asyncpg.Connection = await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout,
            statement_cache_size=0,
            server_settings={"application_name": APPLICATION_NAME},
        )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            await connection.add_listener(self.channel, self._deliver)
            self.sessions += 1
            self._set_up(True)
            log.info("live_listener_listening", channel=self.channel, sessions=self.sessions)
            self.on_listening()
            try:
                await self._watch(connection, lost)
            except _UNAVAILABLE as error:
                log.warning("live_listener_lost", error=type(error).__name__)
            else:
                log.warning("live_listener_lost", error="closed")
        finally:
            self._set_up(False)
            connection.terminate()

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        while not lost.is_set() and not connection.is_closed():
            try:
                await asyncio.wait_for(lost.wait(), PING_INTERVAL)
            except TimeoutError:
                await connection.fetchval("SELECT 1", timeout=self.connect_timeout)

    def _deliver(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            self.on_notify(str(payload))
        except Exception:  # one bad notification must not stop the others
            log.exception("live_notification_failed")

    def _set_up(self, up: bool) -> None:
        self.up = up
        if self.on_state is not None:
            self.on_state(up)
