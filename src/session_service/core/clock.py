"""The one source of "now", injectable so tests control time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Current time as an aware UTC datetime."""
    return datetime.now(UTC)
