"""Storage keys, built only from server-made ids: no part of a file's name is ever in one.

A file is created with the key `uploads/{storage_id}/{file_id}`. Its upload form writes to
a quarantine key, `incoming/{storage_id}/{file_id}`, which nothing ever serves: `complete`
copies the upload to a key of its own, `uploads/{storage_id}/{file_id}/{check_id}`, checks
it there and, if it passes, makes that the file's key. Nothing ever writes to a checked
key again, so a form replayed later (it stays valid until it expires) or a second
completion running at the same time can never change what was checked; quarantine and
the copies of checks that lost are emptied by cleanup. `storage_id` is the session's
public id (a random one for sessions from before ids and tokens were apart); it grants
nothing, so it may appear in download URLs. The file's name is personal data: it lives in
the file row only and reaches the browser in `Content-Disposition` when it is downloaded.

Objects stored before this layout keep their keys (`uploads/{storage_id}/{file_id}/{name}`,
read through their rows as before); wherever an object is named outside its row (audit
events, cleanup reports), `object_ref` cuts such a key to its ids.
"""

from __future__ import annotations

import uuid

UPLOADS_PREFIX = "uploads/"
INCOMING_PREFIX = "incoming/"


def session_prefix(storage_id: uuid.UUID) -> str:
    """Every object of a session lives under this prefix."""
    return f"{UPLOADS_PREFIX}{storage_id}/"


def storage_key(storage_id: uuid.UUID, file_id: uuid.UUID) -> str:
    """The object key of a file: server-made ids only."""
    return f"{session_prefix(storage_id)}{file_id}"


def checked_key(storage_key: str) -> str:
    """A fresh key for one completion's copy of the upload of the file at `storage_key`."""
    return f"{object_ref(storage_key)}/{uuid.uuid4().hex}"


def incoming_prefix(storage_id: uuid.UUID) -> str:
    """Every upload of a session awaiting its check lives under this prefix."""
    return f"{INCOMING_PREFIX}{storage_id}/"


def incoming_key(storage_key: str) -> str:
    """Where the upload form of the file stored under `storage_key` writes."""
    return INCOMING_PREFIX + object_ref(storage_key).removeprefix(UPLOADS_PREFIX)


def promoted_key(incoming: str) -> str:
    """The file's own key, for the quarantine key its form writes to."""
    return UPLOADS_PREFIX + incoming.removeprefix(INCOMING_PREFIX)


def object_ref(key: str) -> str:
    """A key as it may be named outside its file row: at most `{prefix}/{id}/{file_id}`."""
    return "/".join(key.split("/", 3)[:3])


def prefix_storage_id(prefix: str) -> uuid.UUID | None:
    """The storage id a session prefix (`uploads/{storage_id}/`) names, or None."""
    parts = prefix.split("/")
    if len(parts) != 3 or parts[2] or f"{parts[0]}/" not in (UPLOADS_PREFIX, INCOMING_PREFIX):
        return None
    try:
        return uuid.UUID(parts[1])
    except ValueError:
        return None
