"""What an alert says, and what one message about it carries.

An `Alert` is raised where the error happens and must be cheap to build; a `Delivery` is
what the background worker sends once deduplication has decided a message is due.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

RECENT_ACTIONS_MAX: Final = 200
"""The most characters of a session's recent actions a message carries (SPEC)."""

_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class Alert:
    """One occurrence of an unexpected error; `key` names the distinct error for dedupe."""

    key: str
    summary: str
    occurred_at: datetime
    source: str
    request_id: str | None = None
    session_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message about an alert.

    `occurrences` counts this alert's key since the previous message about it, this one
    included (1 for a first message); `previous_at` is when that previous message was due.
    """

    alert: Alert
    occurrences: int = 1
    previous_at: datetime | None = None
    recent_actions: str = ""
    instance: str = ""  # which instance sends it (INSTANCE_NAME)


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def one_line(text: str) -> str:
    """Whitespace and control characters collapsed to single spaces: safe for headers."""
    return _CONTROL_OR_SPACE.sub(" ", text).strip()


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive value is taken to be UTC already."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC, as logs and the webhook carry times."""
    return as_utc(value).isoformat()
