"""The storage interface every backend implements, and the values it trades in.

Keys are opaque strings built by the files domain (`uploads/{session}/{file}`);
backends never interpret them beyond their prefix. Third-party errors are translated
into `StorageUnavailable` at the backend boundary.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from session_service.core.errors import StorageUnavailable

__all__ = ["ObjectInfo", "ObjectMissing", "ObjectStore", "StorageUnavailable", "UploadSlot"]

READ_CHUNK = 256 * 1024
"""How much of an object `ObjectStore.read` hands over at a time: memory per reader."""


class ObjectMissing(LookupError):
    """The object to read is not in the store (deleted, or never uploaded)."""


@dataclass(frozen=True, slots=True)
class UploadSlot:
    """Where and how the browser posts the file: a multipart form to `url`.

    `fields` go first in the form, in order; the file itself goes last, as `file`.
    """

    url: str
    fields: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What storage knows about one object."""

    key: str
    size: int
    last_modified: datetime
    content_type: str | None = None
    first_bytes: bytes = field(default=b"", repr=False)


class ObjectStore(Protocol):
    """One bucket (or directory) of objects."""

    async def upload_slot(
        self, key: str, *, content_type: str, max_size: int, expires_in: timedelta
    ) -> UploadSlot:
        """A signed, expiring form that accepts exactly this key, type and 1..max_size bytes."""
        ...

    async def inspect(self, key: str, *, first_bytes: int) -> ObjectInfo | None:
        """Size, type and the first `first_bytes` bytes (a ranged read), or None if absent."""
        ...

    async def copy(self, source: str, target: str) -> None:
        """Copy an object within the store (server-side) to a key nothing else writes.

        `ObjectMissing` if `source` is absent. The copy is immutable from then on: a later
        write to `source` never reaches it (S3 copies; a directory hard-links, and uploads
        are published as new files, never rewritten in place).
        """
        ...

    def read(self, key: str) -> AsyncGenerator[bytes, None]:
        """The object's bytes, `READ_CHUNK` at a time; `ObjectMissing` before any if absent."""
        ...

    async def put_object(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store a small object the service writes itself (not an upload)."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Delete these objects (absent ones are fine), in as few calls as the store allows."""
        ...

    def list_prefix(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object under `prefix`, a page at a time (no `first_bytes`)."""
        ...

    async def purge_prefix(self, prefix: str) -> int:
        """Delete everything under `prefix`, earlier versions included; how many objects."""
        ...

    async def download_url(self, key: str, *, filename: str, expires_in: timedelta) -> str:
        """A URL that serves the object as an attachment named `filename`, for a short time."""
        ...

    async def check(self) -> str | None:
        """Raise `StorageUnavailable` unless the store answers; a note for readiness, if any."""
        ...
