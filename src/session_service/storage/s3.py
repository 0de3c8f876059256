"""The S3 backend: one aiobotocore client per process, presigned forms and URLs for the browser.

Uploads and downloads never pass through the service: the browser posts to a presigned
form whose policy pins key, type, size and encryption, and downloads from a presigned URL.
Every botocore or network error leaves this module as `StorageUnavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, aclosing, asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)

from session_service.core.clock import Clock
from session_service.core.settings import Settings
from session_service.storage.base import (
    READ_CHUNK,
    ObjectInfo,
    ObjectMissing,
    StorageUnavailable,
    UploadSlot,
)
from session_service.storage.disposition import content_disposition

DELETE_BATCH: Final = 1000
"""The most keys one DeleteObjects call accepts."""

_NOT_FOUND: Final = frozenset({"404", "NoSuchKey", "NotFound"})
# A HEAD answer has no body, so botocore names its error by the status alone.
_HEAD_CODES: Final = {"403": "AccessDenied", "404": "NoSuchBucket"}
_TIMEOUTS: Final = (ReadTimeoutError, ConnectTimeoutError, TimeoutError)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) or "unknown"


def _reason(exc: Exception) -> str:
    """The cause in a word: S3's error code, `timeout`, or the error's class name."""
    if isinstance(exc, ClientError):
        return _error_code(exc)
    if isinstance(exc, _TIMEOUTS):
        return "timeout"
    return type(exc).__name__


def _unavailable(operation: str, exc: Exception, reason: str | None = None) -> StorageUnavailable:
    reason = reason or _reason(exc)
    return StorageUnavailable(f"S3 {operation} failed ({reason})", reason=reason)


@contextmanager
def _translated(operation: str, *, missing: str | None = None) -> Iterator[None]:
    """Turn third-party failures into `StorageUnavailable`, naming only the operation and cause.

    With `missing`, an absent object is `ObjectMissing(missing)` instead. Messages carry
    error codes and class names only: botocore's own text can quote endpoints, and
    presigned material must never reach logs or problem documents.
    """
    try:
        yield
    except ClientError as exc:
        if missing is not None and _error_code(exc) in _NOT_FOUND:
            raise ObjectMissing(missing) from exc
        raise _unavailable(operation, exc) from exc
    except (BotoCoreError, OSError) as exc:
        raise _unavailable(operation, exc) from exc


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


class S3Store:
    """One S3 bucket, reached through a single shared aiobotocore client.

    Presigned URLs are signed by a second client when browsers reach the bucket at another
    address than the service does (S3_PUBLIC_ENDPOINT_URL): SigV4 signs the host.
    Presigning is local work that succeeds for a bucket that does not exist or keys S3
    rejects, so no form or URL is handed out until the bucket has answered once (at start,
    on a readiness probe, or on the first request after a failure).
    """

    def __init__(
        self,
        client: Any,
        *,
        bucket: str,
        server_side_encryption: str,
        clock: Clock,
        presigner: Any | None = None,
        has_credentials: bool = True,
    ) -> None:
        self._client = client
        self._presigner = client if presigner is None else presigner
        self._bucket = bucket
        self._sse = server_side_encryption
        self._clock = clock
        self._has_credentials = has_credentials
        self._bucket_answered = False

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        settings: Settings,
        *,
        clock: Clock,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 2,
    ) -> AsyncIterator[S3Store]:
        """Open the process's client (its connection pool), and the presigning client if the
        public endpoint differs; close them on exit."""
        s3 = settings.storage.s3
        session = get_session()
        secret = s3.secret_access_key

        def client_for(endpoint_url: str | None) -> Any:
            config = AioConfig(
                signature_version="s3v4",
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"max_attempts": max_attempts},
                # S3-compatible servers rarely resolve bucket subdomains; AWS prefers
                # virtual hosts.
                s3={"addressing_style": "path"} if endpoint_url else None,
            )
            return session.create_client(
                "s3",
                region_name=s3.region,
                endpoint_url=endpoint_url,
                aws_access_key_id=s3.access_key_id,
                aws_secret_access_key=secret.get_secret_value() if secret else None,
                config=config,
            )

        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(client_for(s3.endpoint_url))
            presigner = None
            if s3.presign_endpoint_url != s3.endpoint_url:
                presigner = await stack.enter_async_context(client_for(s3.presign_endpoint_url))
            # Without keys the client took the default chain's answer (cached by the session);
            # None means every call fails, and presigning would raise an AttributeError.
            has_credentials = secret is not None or await session.get_credentials() is not None
            yield cls(
                client,
                bucket=s3.bucket,
                server_side_encryption=s3.server_side_encryption,
                clock=clock,
                presigner=presigner,
                has_credentials=has_credentials,
            )

    @property
    def bucket(self) -> str:
        """The bucket every key lives in."""
        return self._bucket

    async def upload_slot(
        self, key: str, *, content_type: str, max_size: int, expires_in: timedelta
    ) -> UploadSlot:
        """A presigned POST form; botocore adds the exact `{"key": key}` and bucket conditions."""
        if key.endswith("${filename}"):
            # botocore would turn this into a starts-with condition, opening the whole prefix.
            raise ValueError("upload keys must be exact, not ${filename} templates")
        fields = {"Content-Type": content_type, "x-amz-server-side-encryption": self._sse}
        conditions: list[Any] = [
            {"Content-Type": content_type},
            ["content-length-range", 1, max_size],
            {"x-amz-server-side-encryption": self._sse},
        ]
        await self._ready_to_sign("upload_slot")
        with _translated("upload_slot"):
            post = await self._presigner.generate_presigned_post(
                Bucket=self._bucket,
                Key=key,
                Fields=fields,
                Conditions=conditions,
                ExpiresIn=int(expires_in.total_seconds()),
            )
        return UploadSlot(
            url=str(post["url"]),
            fields={str(name): str(value) for name, value in post["fields"].items()},
            expires_at=self._clock() + expires_in,
        )

    async def inspect(self, key: str, *, first_bytes: int) -> ObjectInfo | None:
        """HEAD for metadata, then a ranged GET so a large object is never read whole."""
        try:
            head = await self._client.head_object(Bucket=self._bucket, Key=key)
            size = int(head["ContentLength"])
            head_bytes = b""
            if first_bytes > 0 and size > 0:
                # An empty object has no byte 0: S3 answers 416 to any range on it.
                got = await self._client.get_object(
                    Bucket=self._bucket, Key=key, Range=f"bytes=0-{first_bytes - 1}"
                )
                async with got["Body"] as body:
                    # Bounded even if a server ignores Range and sends the whole object.
                    head_bytes = bytes(await body.read(first_bytes))
        except ClientError as exc:
            if _error_code(exc) not in _NOT_FOUND:
                raise _unavailable("inspect", exc, _HEAD_CODES.get(_error_code(exc))) from exc
            # A HEAD cannot tell a missing object from a missing bucket: ask the bucket.
            await self.check()
            return None
        except (BotoCoreError, OSError) as exc:
            raise _unavailable("inspect", exc) from exc
        return ObjectInfo(
            key=key,
            size=size,
            last_modified=_utc(head["LastModified"]),
            content_type=head.get("ContentType"),
            first_bytes=head_bytes,
        )

    async def copy(self, source: str, target: str) -> None:
        """CopyObject within the bucket (server-side, encrypted as uploads are).

        A failure stops presigning until the bucket answers again, as a failed `check` does:
        no form is handed out for a bucket that is gone.
        """
        try:
            with _translated("copy", missing=source):
                await self._client.copy_object(
                    Bucket=self._bucket,
                    Key=target,
                    CopySource={"Bucket": self._bucket, "Key": source},
                    ServerSideEncryption=self._sse,
                )
        except StorageUnavailable:
            self._bucket_answered = False
            raise

    async def read(self, key: str) -> AsyncGenerator[bytes, None]:
        """GetObject, its body read a chunk at a time: never whole, whatever its size."""
        with _translated("read", missing=key):
            got = await self._client.get_object(Bucket=self._bucket, Key=key)
        async with got["Body"] as body:
            while True:
                with _translated("read"):
                    chunk = await body.read(READ_CHUNK)
                if not chunk:
                    return
                yield bytes(chunk)

    async def put_object(self, key: str, data: bytes, *, content_type: str) -> None:
        """PutObject, encrypted at rest as the uploads are."""
        with _translated("put_object"):
            await self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                ServerSideEncryption=self._sse,
            )

    async def delete_many(self, keys: Sequence[str]) -> None:
        """DeleteObjects in batches of 1,000; per-key errors fail the whole call."""
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            await self._delete_objects([{"Key": key} for key in batch], "delete_many")

    async def purge_prefix(self, prefix: str) -> int:
        """Delete every version and delete marker under `prefix`; how many objects there were.

        On a versioned bucket a plain delete only adds a delete marker and the object stays
        readable as a noncurrent version: erasure must remove the versions themselves.
        ListObjectVersions also lists an unversioned bucket's objects (version `null`).
        """
        current: set[str] = set()
        pending: list[dict[str, str]] = []
        listing = self._pages("list_object_versions", prefix, operation="purge_prefix")
        async with aclosing(listing) as pages:
            async for page in pages:
                for item in page.get("Versions", ()):
                    if item.get("IsLatest"):
                        current.add(str(item["Key"]))
                    pending.append({"Key": item["Key"], "VersionId": item["VersionId"]})
                for item in page.get("DeleteMarkers", ()):
                    pending.append({"Key": item["Key"], "VersionId": item["VersionId"]})
                while len(pending) >= DELETE_BATCH:
                    await self._delete_objects(pending[:DELETE_BATCH], "purge_prefix")
                    pending = pending[DELETE_BATCH:]
        if pending:
            await self._delete_objects(pending, "purge_prefix")
        return len(current)

    async def _pages(
        self, listing: str, prefix: str, *, operation: str
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The pages of a listing under `prefix`; only the S3 calls are translated."""
        paginator = self._client.get_paginator(listing)
        async with aclosing(aiter(paginator.paginate(Bucket=self._bucket, Prefix=prefix))) as it:
            while True:
                # Never an error raised by the consumer: it is not S3's.
                with _translated(operation):
                    try:
                        page = await anext(it)
                    except StopAsyncIteration:
                        return
                yield page

    async def _delete_objects(self, objects: list[dict[str, str]], operation: str) -> None:
        with _translated(operation):
            response = await self._client.delete_objects(
                Bucket=self._bucket, Delete={"Objects": objects, "Quiet": True}
            )
        # DeleteObjects answers 200 even when single keys fail; they only show up here.
        errors = response.get("Errors") or []
        if errors:
            codes = sorted({str(error.get("Code", "unknown")) for error in errors})
            raise StorageUnavailable(
                f"S3 {operation} failed for {len(errors)} key(s) ({', '.join(codes)})",
                reason=codes[0],
            )

    async def list_prefix(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """ListObjectsV2 page by page, so memory stays bounded by one page."""
        # aclosing: a consumer that stops early also stops the page requests.
        listing = self._pages("list_objects_v2", prefix, operation="list_prefix")
        async with aclosing(listing) as pages:
            async for page in pages:
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        key=str(item["Key"]),
                        size=int(item["Size"]),
                        last_modified=_utc(item["LastModified"]),
                    )

    async def download_url(self, key: str, *, filename: str, expires_in: timedelta) -> str:
        """A presigned GET that makes S3 answer with an attachment Content-Disposition."""
        await self._ready_to_sign("download_url")
        with _translated("download_url"):
            url = await self._presigner.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self._bucket,
                    "Key": key,
                    "ResponseContentDisposition": content_disposition(filename),
                },
                ExpiresIn=int(expires_in.total_seconds()),
            )
        return str(url)

    async def check(self) -> str | None:
        """Reach the bucket (endpoint, credentials, bucket and permissions at once); say if it
        keeps versions. Also what lets presigning start, or stop after a failure.

        A versioned bucket keeps every overwritten or deleted object as a noncurrent
        version; erasure deletes those too (`purge_prefix`), but operators should know.
        """
        try:
            versioning = await self._probe()
        except StorageUnavailable:
            self._bucket_answered = False
            raise
        self._bucket_answered = True
        status = versioning.get("Status")
        if status in ("Enabled", "Suspended"):
            return f"versioning {status.lower()}: erasure deletes every version"
        return None

    async def _probe(self) -> dict[str, Any]:
        """GetBucketVersioning, then HeadBucket: credentials, bucket and permissions at once."""
        if not self._has_credentials:
            raise _unavailable("check", NoCredentialsError())
        try:
            # The GET first: its error has a body naming the code (NoSuchBucket,
            # InvalidAccessKeyId, ...), where a HEAD's has a status only.
            versioning: dict[str, Any] = await self._client.get_bucket_versioning(
                Bucket=self._bucket
            )
            await self._client.head_bucket(Bucket=self._bucket)
        except ClientError as exc:
            code = _error_code(exc)
            raise _unavailable("check", exc, _HEAD_CODES.get(code, code)) from exc
        except (BotoCoreError, OSError) as exc:
            raise _unavailable("check", exc) from exc
        return versioning

    async def _ready_to_sign(self, operation: str) -> None:
        """Refuse to presign without credentials or before the bucket has answered.

        Once it has, this costs nothing: no request is made per form or URL.
        """
        if not self._has_credentials:
            raise _unavailable(operation, NoCredentialsError())
        if not self._bucket_answered:
            await self.check()
