"""The process's fan-out of "conversation X has news" to the streams that follow X.

A notification carries a conversation id and a `seq`, never content: it only wakes the
streams of that conversation that have not sent that `seq` yet, and each woken stream reads
what is new from the database itself. A missed or repeated notification therefore costs a
delay or a read, never a gap or a duplicate. Waking sets a flag: a stream that is busy (its
client reads slowly) is woken once however many messages arrive meanwhile, and catches up
from the database when it gets to it; nothing queues up in memory.

The feed also admits streams (LIVE_MAX_STREAMS per process, LIVE_MAX_STREAMS_PER_SESSION
per session) and ends them all when the server stops.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from session_service.conversations.errors import LiveUpdatesUnavailable, StreamLimitReached

log = structlog.get_logger(__name__)

MESSAGES_CHANNEL = "session_service_messages"
"""The PostgreSQL NOTIFY channel of appended messages; payload `<conversation id>:<seq>`."""


def notification(conversation_id: uuid.UUID, seq: int) -> str:
    """The NOTIFY payload announcing message `seq` of a conversation."""
    return f"{conversation_id}:{seq}"


class Subscription:
    """One stream's place in the feed: woken when its conversation may have news for it."""

    __slots__ = ("_event", "conversation_id", "position", "session_id")

    def __init__(self, session_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        self.session_id = session_id
        self.conversation_id = conversation_id
        self.position: int | None = None
        """The last `seq` the stream has read (None: not read yet); older news is ignored."""
        self._event = asyncio.Event()

    def wake(self) -> None:
        """Make the stream read again (the next or current `wait` returns True)."""
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """True once woken (news, a catch-up, the feed closing); False after `seconds`."""
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        self._event.clear()  # before the read it triggers: news during the read wakes again
        return True


class MessageFeed:
    """Streams by conversation, admitted within the limits, woken by notifications."""

    def __init__(self, *, max_streams: int, max_per_session: int) -> None:
        self.max_streams = max_streams
        self.max_per_session = max_per_session
        self._following: dict[uuid.UUID, set[Subscription]] = {}
        self._per_session: Counter[uuid.UUID] = Counter()
        self.open_streams = 0
        self.closed = False
        self.listening = False
        """Whether a listener hears every instance's appends (PostgreSQL LISTEN). While it
        does not (SQLite, polling, a listener reconnecting) appends made in this process
        wake its streams themselves once they commit."""

    @property
    def local(self) -> bool:
        """Whether this process's appends must wake its streams themselves."""
        return not self.listening

    @contextmanager
    def subscribe(
        self, session_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> Iterator[Subscription]:
        """Admit a stream of `conversation_id` for the duration of the block."""
        if self.closed:
            raise LiveUpdatesUnavailable("This instance is stopping; reconnect shortly.")
        if self.open_streams >= self.max_streams:
            raise LiveUpdatesUnavailable(
                "This instance serves all the live streams it takes; reconnect shortly."
            )
        if self._per_session[session_id] >= self.max_per_session:
            raise StreamLimitReached(
                f"A session may follow at most {self.max_per_session} streams at once; "
                "close one (another tab) first.",
                extra={"max_streams": self.max_per_session},
            )
        subscription = Subscription(session_id, conversation_id)
        self._following.setdefault(conversation_id, set()).add(subscription)
        self._per_session[session_id] += 1
        self.open_streams += 1
        try:
            yield subscription
        finally:
            self.open_streams -= 1
            self._per_session[session_id] -= 1
            if not self._per_session[session_id]:
                del self._per_session[session_id]
            followers = self._following[conversation_id]
            followers.discard(subscription)
            if not followers:
                del self._following[conversation_id]

    def publish(self, conversation_id: uuid.UUID, seq: int) -> None:
        """Message `seq` of the conversation has committed: wake its streams behind it."""
        for subscription in self._following.get(conversation_id, ()):
            if subscription.position is None or subscription.position < seq:
                subscription.wake()

    def publish_payload(self, payload: str) -> None:
        """A NOTIFY payload (`<conversation id>:<seq>`); anything else is ignored."""
        conversation, _, seq = payload.partition(":")
        try:
            self.publish(uuid.UUID(conversation), int(seq))
        except ValueError:
            log.warning("live_notification_ignored", length=len(payload))

    def resync(self) -> None:
        """Notifications may have been missed: every stream reads again."""
        for followers in self._following.values():
            for subscription in followers:
                subscription.wake()

    def following(self) -> list[uuid.UUID]:
        """The conversations some stream of this process follows."""
        return list(self._following)

    def close(self) -> None:
        """The server stops: every stream ends, and no new one is admitted."""
        self.closed = True
        self.resync()
