"""Deduplicate alerts and send them from a background task, so no request waits on SMTP.

`notify` is synchronous and never raises: it decides, by the injected clock, whether a
message about this error key is due (at most one per key per `window`), and queues it.
Occurrences in between are only counted; the next message about the key reports them.
One worker task takes messages off a bounded queue and sends each to every channel at
once; a failing channel is logged and reported through `on_sent`, never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Protocol

import structlog

from session_service.core.clock import Clock
from session_service.core.tasks import stop_task
from session_service.notify.alert import RECENT_ACTIONS_MAX, Alert, Delivery, truncate
from session_service.notify.base import AlertChannel, ChannelError

log = structlog.get_logger(__name__)

RecentActions = Callable[[str], Awaitable[str]]
"""Given a session id, a short text of what the session did last."""

OnSent = Callable[[str, bool], None]
"""Called with a channel name and whether that channel delivered the message."""


class Claims(Protocol):
    """Whether this instance may send the message about a key now (deployment-wide dedupe)."""

    async def __call__(self, key: str, window: timedelta) -> bool: ...

    async def aclose(self) -> None: ...


MAX_KEYS: Final = 1000
"""Distinct error keys remembered for dedupe before the oldest are forgotten."""


@dataclass(slots=True)
class _KeyState:
    """When a message about a key was last queued, and occurrences not yet reported."""

    sent_at: datetime | None
    unreported: int = 0


class AlertNotifier:
    """Turns alerts into at most one message per distinct error per window, off the hot path."""

    def __init__(
        self,
        channels: Sequence[AlertChannel],
        *,
        window: timedelta,
        clock: Clock,
        recent_actions: RecentActions | None = None,
        on_sent: OnSent | None = None,
        queue_size: int = 100,
        max_keys: int = MAX_KEYS,
        close_grace: float = 3.0,
        instance: str = "",
        claims: Claims | None = None,
    ) -> None:
        self._channels = tuple(channels)
        self._window = window
        self._clock = clock
        self._recent_actions = recent_actions
        self._on_sent = on_sent
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=queue_size)
        self._max_keys = max_keys
        self._close_grace = close_grace
        self._instance = instance
        # Shared with the other instances (Redis): one message per key per window overall.
        self._claims = claims
        self._keys: dict[str, _KeyState] = {}  # oldest message first
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._dropping = False
        self._dropped = 0

    @property
    def enabled(self) -> bool:
        """Whether any channel is configured; without one, `notify` does nothing."""
        return bool(self._channels)

    @property
    def dropped(self) -> int:
        """Messages lost to a full queue (their occurrences still reach the next message)."""
        return self._dropped

    @property
    def channel_names(self) -> tuple[str, ...]:
        """The configured channels, for startup logs and health output."""
        return tuple(channel.name for channel in self._channels)

    def notify(self, alert: Alert) -> bool:
        """Queue a message about `alert` unless one about its key went out within the window.

        Returns whether a message was queued. Never blocks and never raises: it runs in
        error handlers, where a failure of its own would hide the original error.
        """
        if self._closed or not self._channels:
            return False
        try:
            return self._admit(alert)
        except Exception:
            log.exception("alert_notify_failed")
            return False

    def _admit(self, alert: Alert) -> bool:
        now = self._clock()
        state = self._keys.get(alert.key)
        if state is not None and state.sent_at is not None and now - state.sent_at < self._window:
            state.unreported += 1
            return False
        occurrences = 1 + (state.unreported if state is not None else 0)
        delivery = Delivery(
            alert=alert,
            occurrences=occurrences,
            previous_at=state.sent_at if state is not None else None,
        )
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self._drop(alert.key, state, occurrences)
            return False
        if self._dropping:
            self._dropping = False
            log.info("alert_queue_recovered", dropped=self._dropped)
        # Re-inserted so the dict stays ordered by last message, oldest first.
        self._keys.pop(alert.key, None)
        self._keys[alert.key] = _KeyState(sent_at=now)
        self._forget(now)
        return True

    def _drop(self, key: str, state: _KeyState | None, occurrences: int) -> None:
        """A full queue loses the message, not the count: the next occurrence tries again."""
        self._dropped += 1
        if not self._dropping:
            self._dropping = True
            log.warning("alert_queue_full", queue_size=self._queue.maxsize, dropped=self._dropped)
        if state is None:
            self._keys[key] = _KeyState(sent_at=None, unreported=occurrences)
            self._forget(self._clock())
        else:
            state.unreported = occurrences

    def _forget(self, now: datetime) -> None:
        """Keep at most `max_keys` keys: first those with nothing left to say, then the oldest."""
        if len(self._keys) <= self._max_keys:
            return
        for key, state in list(self._keys.items()):
            expired = state.sent_at is None or now - state.sent_at >= self._window
            if expired and state.unreported == 0:
                del self._keys[key]
        while len(self._keys) > self._max_keys:
            del self._keys[next(iter(self._keys))]

    def start(self) -> None:
        """Start the worker on the running loop; calling it again does nothing."""
        if self._task is None and self._channels and not self._closed:
            self._task = asyncio.create_task(self._work(), name="alert-notifier")

    async def __aenter__(self) -> AlertNotifier:
        self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def drain(self) -> None:
        """Wait until every queued message was attempted on every channel (tests, shutdown)."""
        if (self._task is None or self._task.done()) and not self._queue.empty():
            raise RuntimeError("the notifier's worker is not running")
        await self._queue.join()

    async def aclose(self) -> None:
        """Stop accepting alerts, give queued ones `close_grace` seconds, close the channels."""
        if self._closed:
            return
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._close_grace):
                    await self._queue.join()
            await stop_task(task)
        if not self._queue.empty():
            log.warning("alerts_abandoned", count=self._queue.qsize())
        for channel, result in zip(
            self._channels,
            await asyncio.gather(
                *(channel.aclose() for channel in self._channels), return_exceptions=True
            ),
            strict=True,
        ):
            if isinstance(result, Exception):
                log.warning("alert_channel_close_failed", channel=channel.name, error=_name(result))
        if self._claims is not None:
            with contextlib.suppress(Exception):  # closing must not fail a shutdown
                await self._claims.aclose()

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                await self._deliver(delivery)
            except Exception:  # a bug here must not end alerting for the process
                log.exception("alert_worker_failed")
            finally:
                self._queue.task_done()

    async def _deliver(self, delivery: Delivery) -> None:
        if not await self._claimed(delivery.alert.key):
            log.info("alert_sent_elsewhere", key=delivery.alert.key)
            return
        delivery = replace(delivery, instance=self._instance)
        session_id, fetch = delivery.alert.session_id, self._recent_actions
        if session_id is not None and fetch is not None:
            delivery = replace(delivery, recent_actions=await _actions(fetch, session_id))
        await asyncio.gather(*(self._send(channel, delivery) for channel in self._channels))

    async def _claimed(self, key: str) -> bool:
        """Whether no other instance sent this key within the window; yes if none can say."""
        if self._claims is None:
            return True
        try:
            return await self._claims(key, self._window)
        except Exception as exc:  # the shared store is down: dedupe per process, send
            log.warning("alert_claim_failed", error=_name(exc))
            return True

    async def _send(self, channel: AlertChannel, delivery: Delivery) -> None:
        try:
            await channel.send(delivery)
        except Exception as exc:
            # The class name only: messages of HTTP and SMTP errors can quote URLs or addresses.
            detail = {"detail": str(exc)} if isinstance(exc, ChannelError) else {}
            log.warning("alert_failed", channel=channel.name, error=_name(exc), **detail)
            self._report(channel.name, ok=False)
            return
        log.info(
            "alert_sent",
            channel=channel.name,
            key=delivery.alert.key,
            occurrences=delivery.occurrences,
        )
        self._report(channel.name, ok=True)

    def _report(self, channel: str, *, ok: bool) -> None:
        if self._on_sent is None:
            return
        try:
            self._on_sent(channel, ok)
        except Exception:
            log.exception("alert_on_sent_failed", channel=channel)


async def _actions(fetch: RecentActions, session_id: str) -> str:
    """The session's recent actions, or "" if they cannot be had: the alert matters more."""
    try:
        text = await fetch(session_id)
    except Exception as exc:
        log.warning("alert_recent_actions_failed", error=_name(exc))
        return ""
    return truncate(text, RECENT_ACTIONS_MAX)


def _name(exc: BaseException) -> str:
    return type(exc).__name__
