"""The export as a ZIP archive, streamed: file contents go from storage to the client a chunk
at a time, so memory stays flat whatever the files weigh.

Layout (together, the two JSON files are the JSON form's document):
- `files/<original name>`: each uploaded file's bytes, stored as they are (uploads are
  mostly compressed formats already); a name taken twice gets ` (2)`, ` (3)`, ...
- `audit-events.json`: `{"audit_events", "previous_sessions": [{"id", "audit_events"}]}`;
- `session.json`: `{"format", "exported_at", "session", "files", "previous_sessions":
  [{"id"}]}`, each file with `path`, where its bytes are in the archive (null: no content,
  or gone from storage since it was uploaded). Written last, once that is known.

The standard library's `zipfile` writes to an unseekable sink here, so every entry carries a
data descriptor and the central directory comes at the end. A storage failure mid-stream
raises `ResponseInterrupted`: the response is cut off without its terminating chunk, so the
client sees a failed download, never a short archive that looks whole.
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime

from session_service.core.errors import ResponseInterrupted
from session_service.files.models import FileStatus
from session_service.files.schemas import FileRead
from session_service.files.snapshot import FileSnapshot
from session_service.privacy.content import (
    ExportContent,
    ExportedConversation,
    events_json,
    head_json,
    model_json,
    to_json,
)
from session_service.storage.base import ObjectMissing, ObjectStore, StorageUnavailable

FILES_DIR = "files/"
_PRIVATE = 0o100600 << 16
"""A regular file only its owner reads, once extracted."""


class ArchivedFile(FileRead):
    """A file in the ZIP export: where its bytes are in the archive, if anywhere."""

    path: str | None = None


class _Sink:
    """The unseekable file `zipfile` writes to: it keeps what was written until drained."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: `drain` hands the bytes on."""

    def close(self) -> None:
        """Nothing to close: the archive's end was written and drained."""

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class _Names:
    """Archive paths for original names: each used once, whatever the case."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, name: str) -> str:
        stem, dot, suffix = name.rpartition(".")
        if not stem:
            stem, dot, suffix = name, "", ""
        candidate, number = name, 1
        while candidate.casefold() in self._taken:
            number += 1
            candidate = f"{stem} ({number}){dot}{suffix}"
        self._taken.add(candidate.casefold())
        return FILES_DIR + candidate


async def zip_export(content: ExportContent, store: ObjectStore) -> AsyncIterator[bytes]:
    """The archive's bytes, as they are made; at most one storage chunk held at a time."""
    try:
        async for data in _archive(content, store):
            yield data
    except StorageUnavailable as exc:
        raise ResponseInterrupted(f"export cut off: {exc.detail}") from exc


async def _archive(content: ExportContent, store: ObjectStore) -> AsyncIterator[bytes]:
    sink = _Sink()
    names = _Names()
    archived: list[bytes] = []
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        for file in content.files:
            path: str | None = None
            if file.status == FileStatus.UPLOADED:
                async with aclosing(store.read(file.storage_key)) as chunks:
                    try:
                        first = await anext(chunks, b"")
                    except ObjectMissing:
                        first = None
                    if first is not None:
                        path = names.claim(file.original_name)
                        with archive.open(_file_entry(path, file), "w") as entry:
                            entry.write(first)
                            async for chunk in chunks:
                                entry.write(chunk)
                                yield sink.drain()
                        yield sink.drain()
            exported = ArchivedFile.model_validate(file).model_copy(update={"path": path})
            archived.append(model_json(exported))
        for number, conversation in enumerate(content.conversations, start=1):
            archive.writestr(
                _json_entry(f"conversations/{number:03d}.txt", conversation.updated_at),
                _transcript(conversation),
            )
        archive.writestr(
            _json_entry("conversations.json", content.exported_at),
            b"[" + b",".join(model_json(c) for c in content.conversations) + b"]",
        )
        archive.writestr(
            _json_entry("audit-events.json", content.exported_at), _audit_events(content)
        )
        archive.writestr(
            _json_entry("session.json", content.exported_at), _session(content, archived)
        )
    yield sink.drain()


def _transcript(conversation: ExportedConversation) -> bytes:
    """A conversation as people read it: a title, then one paragraph per message."""
    lines = [conversation.title or "Conversation", ""]
    for message in conversation.messages:
        when = message.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        attached = f" (attached: {len(message.attachments)} file(s))" if message.attachments else ""
        lines += [f"[{when}] {message.role.value}{attached}:", message.content, ""]
    return "\n".join(lines).encode()


def _audit_events(content: ExportContent) -> bytes:
    previous = b",".join(
        b'{"id":'
        + to_json(trail.session_id)
        + b',"audit_events":'
        + events_json(trail.events)
        + b"}"
        for trail in content.previous
    )
    return (
        b'{"audit_events":'
        + events_json(content.trail.events)
        + b',"previous_sessions":['
        + previous
        + b"]}"
    )


def _session(content: ExportContent, files: list[bytes]) -> bytes:
    previous = b",".join(b'{"id":' + to_json(trail.session_id) + b"}" for trail in content.previous)
    return (
        head_json(content)
        + b',"files":['
        + b",".join(files)
        + b'],"previous_sessions":['
        + previous
        + b"]}"
    )


def _file_entry(path: str, file: FileSnapshot) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(path, date_time=_zip_time(file.uploaded_at or file.created_at))
    entry.compress_type = zipfile.ZIP_STORED
    entry.external_attr = _PRIVATE
    # Sizes beyond 4 GiB need ZIP64 records, which are decided before the first byte.
    entry.file_size = file.stored_size or file.declared_size
    return entry


def _json_entry(path: str, when: datetime) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(path, date_time=_zip_time(when))
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = _PRIVATE
    return entry


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    """ZIP keeps local times without a zone and nothing before 1980: UTC, clamped."""
    utc = when.astimezone(UTC) if when.tzinfo is not None else when
    return max(
        (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second), (1980, 1, 1, 0, 0, 0)
    )
