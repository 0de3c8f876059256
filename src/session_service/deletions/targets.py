"""What a change leaves for storage to delete: keys and prefixes, each due from a moment on.

A checked object (`uploads/...`) is due at once: nothing writes to it again. A quarantine
key (`incoming/...`) is due once the form that writes to it has expired (UPLOAD_URL_TTL after
its slot was issued): S3 accepts a valid form any number of times, so a form posted again
after completion, deletion or erasure writes there, and the row stays until a deletion
made after that moment succeeded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from session_service.files.names import incoming_key, incoming_prefix, session_prefix


def is_prefix(target: str) -> bool:
    """Whether a queued target is a prefix (everything under it) rather than one key."""
    return target.endswith("/")


@dataclass(frozen=True, slots=True)
class Deletion:
    """An object key, or a prefix (ending in `/`: everything under it), due from `due_at`."""

    target: str
    due_at: datetime

    @property
    def is_prefix(self) -> bool:
        return is_prefix(self.target)


def form_expiry(issued_at: datetime, *, now: datetime, slot_ttl: timedelta) -> datetime:
    """When a form issued at `issued_at` can write no more (now, if it already cannot)."""
    return max(now, issued_at + slot_ttl)


def file_objects(
    storage_key: str,
    *,
    issued_at: datetime,
    now: datetime,
    slot_ttl: timedelta,
    quarantine: bool = True,
) -> list[Deletion]:
    """A file's object, and (`quarantine`) where its form writes, once the form has expired."""
    deletions = [Deletion(storage_key, now)]
    if quarantine:
        key = incoming_key(storage_key)
        deletions.append(Deletion(key, form_expiry(issued_at, now=now, slot_ttl=slot_ttl)))
    return deletions


def session_objects(
    storage_id: uuid.UUID, *, last_slot_at: datetime | None, now: datetime, slot_ttl: timedelta
) -> list[Deletion]:
    """Everything under a session's prefixes: its checked objects at once, its quarantine
    once the last form it was given (`last_slot_at`, None: none) has expired."""
    quarantine_due = (
        now if last_slot_at is None else form_expiry(last_slot_at, now=now, slot_ttl=slot_ttl)
    )
    return [
        Deletion(session_prefix(storage_id), now),
        Deletion(incoming_prefix(storage_id), quarantine_due),
    ]
