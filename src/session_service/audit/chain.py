"""The tamper-evident hash chain over audit events.

Canonical form of an event (one line): JSON, UTF-8, keys sorted, no whitespace, with
`id` (integer), `occurred_at` (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC), `type`, `session_id`
(lower-case UUID or null), `request_id`, `client_ip`, `user_agent`, `outcome` and
`details` (keys sorted at every depth). A batch's digest is the lower-case hex SHA-256 of

    previous_digest + "\\n" + canonical(event_1) + "\\n" + ... + canonical(event_n)

where `previous_digest` is the preceding batch's digest, or 64 zeros for the first batch,
and the events are the batch's, in chain order (`chain_repository.chain_key`, then id).
Anyone with a database dump can recompute it (see README).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
FIELDS = (
    "id",
    "occurred_at",
    "type",
    "session_id",
    "request_id",
    "client_ip",
    "user_agent",
    "outcome",
    "details",
)


def _timestamp(value: datetime | str) -> str:
    # A dump read without type conversion (SQLite) holds ISO text; naive values are UTC.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(event: Mapping[Any, Any]) -> bytes:
    """The canonical JSON line of one event."""
    details = event["details"]
    if isinstance(details, str):  # SQLite returns JSON text when read raw
        details = json.loads(details)
    session_id = event["session_id"]
    document = {
        "id": int(event["id"]),
        "occurred_at": _timestamp(event["occurred_at"]),
        "type": event["type"],
        "session_id": None if session_id is None else str(uuid.UUID(str(session_id))),
        "request_id": event["request_id"],
        "client_ip": event["client_ip"],
        "user_agent": event["user_agent"],
        "outcome": event["outcome"],
        "details": details,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def batch_digest(previous: str, events: Iterable[Mapping[Any, Any]]) -> str:
    """The digest of a batch of events, chained to the previous batch's digest."""
    hasher = hashlib.sha256(previous.encode())
    for event in events:
        hasher.update(b"\n")
        hasher.update(canonical(event))
    return hasher.hexdigest()
