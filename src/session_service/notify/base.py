"""The one interface every alert channel implements, so the notifier can fan out to any."""

from __future__ import annotations

from typing import Protocol

from session_service.notify.alert import Delivery


class ChannelError(Exception):
    """A channel's own failure; its message is safe to log (no URL, address or secret)."""


class AlertChannel(Protocol):
    """A way to reach the admin (email, webhook, ...)."""

    name: str

    async def send(self, delivery: Delivery) -> None:
        """Deliver one message; raise on any failure so it is counted and logged."""
        ...

    async def aclose(self) -> None:
        """Release connections or clients the channel holds."""
        ...
