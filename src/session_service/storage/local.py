"""The zero-configuration backend: objects in a local directory.

The service plays the part S3 plays for the other backend. An upload slot is a signed,
expiring token posted with the file to `POST /api/v1/storage/uploads`; the receiver
enforces the same rules an S3 POST policy would (exact key, content type, 1..max bytes,
expiry), streams the body to disk chunk by chunk and cuts the request off as soon as it
exceeds the limit. A token is single-use: the object is created with an exclusive hard
link, so a second post of the same form finds the key taken. Downloads are signed,
expiring `GET /api/v1/storage/downloads/{token}` URLs.

Layout under the root: `objects/<key>` (the bytes), `meta/<key>.json` (content type),
`incoming/` (uploads in progress).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import IO, Any, TypeVar

import structlog
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from session_service.core.clock import Clock
from session_service.core.errors import RequestAborted, ServiceError
from session_service.http import API_PREFIX
from session_service.storage.base import (
    READ_CHUNK,
    ObjectInfo,
    ObjectMissing,
    StorageUnavailable,
    UploadSlot,
)
from session_service.storage.tokens import TokenExpired, TokenInvalid, TokenSigner

log = structlog.get_logger(__name__)
T = TypeVar("T")

UPLOAD_PATH = f"{API_PREFIX}/storage/uploads"
DOWNLOAD_PATH = f"{API_PREFIX}/storage/downloads"
FORM_OVERHEAD_BYTES = 64 * 1024  # the form's other fields and part headers
MAX_FIELD_BYTES = 8 * 1024
FORM_FIELDS = frozenset({"key", "Content-Type", "token"})
"""The fields of every slot's form, each posted once before the file."""
FILE_FIELD = "file"
LIST_PAGE_SIZE = 1000


class UploadRefused(ServiceError):
    """The local upload endpoint refused the post."""

    status_code = 403
    code = "upload_refused"
    title = "Upload refused"


class UploadFormInvalid(UploadRefused):
    """The post is not the multipart form the slot describes."""

    status_code = 400
    code = "upload_form_invalid"
    title = "Upload form invalid"


class UploadTokenInvalid(UploadRefused):
    """The token is forged, altered or was not issued for uploads."""

    code = "upload_token_invalid"
    title = "Upload token invalid"


class UploadExpired(UploadRefused):
    """The slot's time is up; ask for a new one."""

    code = "upload_expired"
    title = "Upload slot expired"


class UploadPolicyViolation(UploadRefused):
    """The post does not match its slot (key or content type)."""

    code = "upload_policy_violation"
    title = "Upload does not match its slot"


class UploadTooLarge(UploadRefused):
    """More bytes than the slot allows; the request was cut off."""

    status_code = 413
    code = "upload_too_large"
    title = "Upload too large"


class UploadEmpty(UploadRefused):
    """A file of zero bytes."""

    status_code = 400
    code = "upload_empty"
    title = "Upload empty"


class UploadAlreadyUsed(UploadRefused):
    """The slot was already used: the object exists."""

    status_code = 409
    code = "upload_already_used"
    title = "Upload slot already used"


class DownloadRefused(ServiceError):
    """The download token is forged, altered or expired."""

    status_code = 403
    code = "download_refused"
    title = "Download refused"


class DownloadGone(ServiceError):
    """The object no longer exists."""

    status_code = 404
    code = "file_not_found"
    title = "File not found"


@dataclass(frozen=True, slots=True)
class Download:
    """What the download endpoint serves (the name comes from the file's row)."""

    path: Path
    key: str
    content_type: str


class LocalStore:
    """A directory of objects with signed upload and download URLs."""

    def __init__(self, root: Path, *, keys: list[str], clock: Clock) -> None:
        self.root = root.resolve()
        self.objects = self.root / "objects"
        self.meta = self.root / "meta"
        self.incoming = self.root / "incoming"
        self.clock = clock
        self._uploads = TokenSigner(keys, salt="upload", clock=clock)
        self._downloads = TokenSigner(keys, salt="download", clock=clock)

    def prepare(self) -> None:
        """Create the directories (blocking: call at start-up); only their owner enters."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)
        for directory in (self.objects, self.meta, self.incoming):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- the ObjectStore interface ------------------------------------------------------

    async def upload_slot(
        self, key: str, *, content_type: str, max_size: int, expires_in: timedelta
    ) -> UploadSlot:
        """A form for `POST /api/v1/storage/uploads` (relative URL; the route resolves it)."""
        expires_at = self.clock() + expires_in
        token = self._uploads.sign(
            {"key": key, "type": content_type, "max": max_size}, expires_at=expires_at
        )
        fields = {"key": key, "Content-Type": content_type, "token": token}
        return UploadSlot(url=UPLOAD_PATH, fields=fields, expires_at=expires_at)

    async def inspect(self, key: str, *, first_bytes: int) -> ObjectInfo | None:
        """Size and type from disk, and only the first bytes of the object."""
        return await _on_disk(self._inspect, key, first_bytes)

    async def copy(self, source: str, target: str) -> None:
        """Hard-link the object under a second name (no bytes copied), its metadata first."""
        await _on_disk(self._copy, source, target)

    async def read(self, key: str) -> AsyncGenerator[bytes, None]:
        """Read the object from disk in a thread, a chunk at a time."""
        handle = await _on_disk(self._open_object, key)
        try:
            while chunk := await _on_disk(handle.read, READ_CHUNK):
                yield chunk
        finally:
            handle.close()

    async def put_object(self, key: str, data: bytes, *, content_type: str) -> None:
        """Write a small object of the service's own (replacing one under the same key)."""
        await _on_disk(self._put, key, data, content_type)

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Remove the objects and their metadata; absent ones are fine."""
        await _on_disk(self._delete, list(keys))

    async def purge_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (a directory keeps no versions); how many."""
        keys = [info.key async for info in self.list_prefix(prefix)]
        await self.delete_many(keys)
        return len(keys)

    async def list_prefix(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Walk the objects under `prefix`, one page of paths at a time."""
        walk = self._walk(prefix)
        while page := await _on_disk(lambda: list(islice(walk, LIST_PAGE_SIZE))):
            for info in page:
                yield info

    async def download_url(self, key: str, *, filename: str, expires_in: timedelta) -> str:
        """A signed, expiring `GET /api/v1/storage/downloads/{token}` (relative URL).

        The token carries the key (server ids) and nothing else: a signed token is readable,
        and the file's name is personal data. The endpoint takes the name from the row.
        """
        token = self._downloads.sign({"key": key}, expires_at=self.clock() + expires_in)
        return f"{DOWNLOAD_PATH}/{token}"

    async def check(self) -> str | None:
        """The object directory exists and is writable (nothing more to report)."""
        if not await asyncio.to_thread(os.access, self.objects, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"The storage directory {self.objects} is not writable.")
        return None

    # -- the local endpoints -----------------------------------------------------------

    async def receive_upload(
        self,
        content_type: str | None,
        body: AsyncIterator[bytes],
        *,
        awaited: Callable[[str], Awaitable[bool]],
    ) -> str:
        """Check a posted form against its token while streaming the file to disk.

        Returns the key stored. Everything is checked before the first byte of the file is
        written, `awaited(key)` last (is the form's file still waiting for its upload?);
        the size is checked on every chunk. Whatever ends it early (a refusal, the client
        leaving) removes the partial file.
        """
        receiver = _FormReceiver(self, content_type, awaited)
        try:
            async for chunk in body:
                await receiver.feed(chunk)
            return await receiver.finish()
        except RequestAborted:
            # The visitor cancelled or lost the connection: the file stays pending and the
            # same form can be posted again (nothing was stored under its key).
            log.info("upload_aborted", key=receiver.key, received_bytes=receiver.received)
            raise
        except OSError as error:
            raise _unavailable(error) from error
        finally:
            await asyncio.to_thread(receiver.discard)

    def open_download(self, token: str) -> Download:
        """The file a download token names (cheap checks only; the route streams it)."""
        try:
            payload = self._downloads.verify(token)
        except TokenExpired as error:
            raise DownloadRefused("This download link has expired.") from error
        except TokenInvalid as error:
            raise DownloadRefused("This download link is not valid.") from error
        key = str(payload.get("key", ""))
        path = self._object_path(key)
        meta = self._read_meta(key)
        if meta is None or not path.is_file():
            raise DownloadGone("The file no longer exists.")
        return Download(path=path, key=key, content_type=meta["content_type"])

    # -- internals (blocking; run in a thread) ------------------------------------------

    def _object_path(self, key: str) -> Path:
        path = (self.objects / key).resolve()
        if not path.is_relative_to(self.objects):
            raise StorageUnavailable("A storage key left the storage directory.")
        return path

    def _meta_path(self, key: str) -> Path:
        path = (self.meta / f"{key}.json").resolve()
        if not path.is_relative_to(self.meta):
            raise StorageUnavailable("A storage key left the storage directory.")
        return path

    def _read_meta(self, key: str) -> dict[str, Any] | None:
        try:
            meta: dict[str, Any] = json.loads(self._meta_path(key).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return meta

    def _inspect(self, key: str, first_bytes: int) -> ObjectInfo | None:
        path = self._object_path(key)
        try:
            with path.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                head = handle.read(first_bytes) if first_bytes > 0 else b""
        except FileNotFoundError:
            return None
        meta = self._read_meta(key) or {}
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            content_type=meta.get("content_type"),
            first_bytes=head,
        )

    def _copy(self, source: str, target: str) -> None:
        origin, destination = self._object_path(source), self._object_path(target)
        if not origin.is_file():
            raise ObjectMissing(source)
        meta_destination = self._meta_path(target)
        meta_destination.parent.mkdir(parents=True, exist_ok=True)
        # Metadata first, so the object never appears at `target` without its content type.
        shutil.copyfile(self._meta_path(source), meta_destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(origin, destination)
        except FileNotFoundError:
            raise ObjectMissing(source) from None

    def _open_object(self, key: str) -> IO[bytes]:
        try:
            return self._object_path(key).open("rb")
        except FileNotFoundError:
            raise ObjectMissing(key) from None

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        target, meta = self._object_path(key), self._meta_path(key)
        for path, content in (
            (target, data),
            (meta, json.dumps({"content_type": content_type, "size": len(data)}).encode()),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.tmp")
            temp.write_bytes(content)
            temp.replace(path)

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            for path in (self._object_path(key), self._meta_path(key)):
                path.unlink(missing_ok=True)
                _prune_empty_parents(path.parent, stop=self.root)

    def _walk(self, prefix: str) -> Iterator[ObjectInfo]:
        start = self._object_path(prefix) if prefix else self.objects
        if prefix.endswith("/") and not start.is_dir():
            return  # no such directory: nothing under it (its parent may hold millions)
        base = start if start.is_dir() else start.parent
        for directory, _, names in os.walk(base):
            for name in sorted(names):
                path = Path(directory, name)
                key = path.relative_to(self.objects).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                yield ObjectInfo(
                    key=key,
                    size=stat.st_size,
                    last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
                )

    def _store(self, temp: Path, key: str, content_type: str, size: int) -> None:
        """Publish an upload under its key; fails if the key already exists (single use)."""
        target = self._object_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(temp, target)
        except FileExistsError as error:
            raise UploadAlreadyUsed("This upload slot was already used.") from error
        meta = self._meta_path(key)
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"content_type": content_type, "size": size}))


def _unavailable(error: OSError) -> StorageUnavailable:
    """A disk error, told as storage trouble (never as the database's): type only."""
    log.warning("local_storage_failed", error=type(error).__name__)
    return StorageUnavailable("The storage directory could not be read or written.")


async def _on_disk(function: Callable[..., T], *args: Any) -> T:
    """Run blocking file work in a thread; its `OSError`s become `StorageUnavailable`."""
    try:
        return await asyncio.to_thread(function, *args)
    except OSError as error:
        raise _unavailable(error) from error


def _prune_empty_parents(directory: Path, *, stop: Path) -> None:
    """Remove directories left empty by a delete, up to (not including) the top ones."""
    while directory != stop and directory.parent != stop:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


class _FormReceiver:
    """Drives python-multipart over the request body and enforces the slot's form.

    The form is the slot's fields, each once, then the file named `file`, then the closing
    boundary: any other shape is `upload_form_invalid` (a 400), whatever the parser meets.
    """

    def __init__(
        self,
        store: LocalStore,
        content_type: str | None,
        awaited: Callable[[str], Awaitable[bool]],
    ) -> None:
        mime, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if mime != b"multipart/form-data" or not boundary:
            raise UploadFormInvalid("Post the slot's fields and the file as multipart/form-data.")
        self.store = store
        self.awaited = awaited
        self.fields: dict[str, str] = {}
        self.policy: dict[str, Any] | None = None
        self.received = 0
        self.file_size = 0
        self.temp: Path | None = None
        self.handle: IO[bytes] | None = None
        self._events: list[tuple[str, bytes]] = []
        self._header_field = b""
        self._header_value = b""
        self._part_name: str | None = None
        self._field_value = bytearray()
        self._in_file = False
        self._file_done = False
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": lambda: self._events.append(("begin", b"")),
                    "on_header_field": lambda d, s, e: self._events.append(("hfield", d[s:e])),
                    "on_header_value": lambda d, s, e: self._events.append(("hvalue", d[s:e])),
                    "on_header_end": lambda: self._events.append(("hend", b"")),
                    "on_headers_finished": lambda: self._events.append(("headers", b"")),
                    "on_part_data": lambda d, s, e: self._events.append(("data", d[s:e])),
                    "on_part_end": lambda: self._events.append(("end", b"")),
                },
            )
        except FormParserError as error:  # a boundary longer than the parser takes
            raise UploadFormInvalid("The multipart boundary is not valid.") from error

    @property
    def key(self) -> str | None:
        """The slot's key, once its token has been checked."""
        return None if self.policy is None else str(self.policy["key"])

    async def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except Exception as error:  # python-multipart raises its own parse errors
            raise UploadFormInvalid("The multipart body could not be parsed.") from error
        # Checked after parsing: one chunk may hold the token field and the file's start,
        # and only the token says how large the slot is. The file's own bytes are checked
        # as they arrive (`_data`), fields by MAX_FIELD_BYTES; this bounds the rest.
        events, self._events = self._events, []
        for kind, data in events:
            await self._handle(kind, data)
        self.received += len(chunk)
        limit = (self.policy["max"] if self.policy else 0) + FORM_OVERHEAD_BYTES
        if self.received > limit:
            raise UploadTooLarge("The upload is larger than its slot allows.")

    async def finish(self) -> str:
        if self._parser.state != MultipartState.END:
            raise UploadFormInvalid("The multipart body ended before its closing boundary.")
        if self.policy is None or not self._file_done or self.temp is None:
            raise UploadFormInvalid("The form has no file part (it goes last, named `file`).")
        if self.file_size == 0:
            raise UploadEmpty("The file is empty.")
        key, content_type = str(self.policy["key"]), str(self.policy["type"])
        if self.handle is not None:
            handle, self.handle = self.handle, None
            await asyncio.to_thread(handle.close)
        await asyncio.to_thread(self.store._store, self.temp, key, content_type, self.file_size)
        return key

    def discard(self) -> None:
        if self.handle is not None:
            self.handle.close()
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)

    async def _handle(self, kind: str, data: bytes) -> None:
        if kind == "begin":
            if self._file_done:
                raise UploadFormInvalid("The file must be the form's last part.")
            self._part_name, self._field_value = None, bytearray()
        elif kind == "hfield":
            self._header_field += data
        elif kind == "hvalue":
            self._header_value += data
        elif kind == "hend":
            if self._header_field.lower() == b"content-disposition":
                _, options = parse_options_header(self._header_value)
                name = options.get(b"name")
                self._part_name = None if name is None else name.decode("latin-1")
            self._header_field, self._header_value = b"", b""
        elif kind == "headers":
            await self._part_starts()
        elif kind == "data":
            await self._data(data)
        elif kind == "end":
            if self._in_file:
                self._in_file, self._file_done = False, True
            elif self._part_name is not None:
                self.fields[self._part_name] = self._field_value.decode("utf-8", "replace")

    async def _part_starts(self) -> None:
        """A part's headers are in: it must be one of the slot's fields, or the file."""
        name = self._part_name
        if name == FILE_FIELD:
            self.policy = self._check_fields()
            if not await self.awaited(str(self.policy["key"])):
                raise UploadAlreadyUsed("This upload slot was already used.")
            await self._open_temp()
            self._in_file = True
        elif name not in FORM_FIELDS:
            raise UploadFormInvalid("A form part is not one of the upload slot's fields.")
        elif name in self.fields:
            raise UploadFormInvalid("A form field appears twice.")

    async def _data(self, data: bytes) -> None:
        if not self._in_file:
            self._field_value += data
            if len(self._field_value) > MAX_FIELD_BYTES:
                raise UploadFormInvalid("A form field is too long.")
            return
        assert self.policy is not None
        assert self.handle is not None
        self.file_size += len(data)
        if self.file_size > int(self.policy["max"]):
            raise UploadTooLarge("The file is larger than its slot allows.")
        await asyncio.to_thread(self.handle.write, data)

    def _check_fields(self) -> dict[str, Any]:
        if self.fields.keys() != FORM_FIELDS:
            raise UploadFormInvalid("The slot's fields (key, Content-Type, token) go first.")
        try:
            policy = self.store._uploads.verify(self.fields["token"])
        except TokenExpired as error:
            raise UploadExpired("This upload slot has expired; ask for a new one.") from error
        except TokenInvalid as error:
            raise UploadTokenInvalid("The upload token is not valid.") from error
        if self.fields["key"] != policy.get("key"):
            raise UploadPolicyViolation("The key does not match the upload slot.")
        if self.fields["Content-Type"] != policy.get("type"):
            raise UploadPolicyViolation("The Content-Type does not match the upload slot.")
        return policy

    async def _open_temp(self) -> None:
        def _open() -> tuple[Path, IO[bytes]]:
            descriptor, name = tempfile.mkstemp(dir=self.store.incoming, prefix="upload-")
            return Path(name), os.fdopen(descriptor, "wb")

        self.temp, self.handle = await asyncio.to_thread(_open)
