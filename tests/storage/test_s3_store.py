"""S3Store against a real moto server over HTTP: presigned forms, ranged reads, batches, pages.

moto 5.2 enforces none of a POST policy's conditions (size, type, key, signature and expiry
are all accepted), so the decoded policy is the proof of what S3 itself would enforce.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from session_service.core.settings import Settings
from session_service.storage.base import StorageUnavailable
from session_service.storage.disposition import content_disposition
from session_service.storage.s3 import S3Store
from tests import moto_server
from tests.moto_server import create_bucket, free_port, s3_client, s3_settings

moto_endpoint = moto_server.moto_endpoint
no_default_credentials = moto_server.no_default_credentials

T0 = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
PDF = b"%PDF-1.7\n" + b"x" * 4000
FALLBACK = re.compile(r'filename="([^"]*)"')
HEADER = re.compile(
    r"""attachment; filename="([^"\\\x00-\x1f\x7f]+)"; filename\*=UTF-8''[\w%.~-]+""", re.A
)
EXT_VALUE = re.compile(r"filename\*=UTF-8''([A-Za-z0-9%._~-]+)$")


def fixed_clock() -> datetime:
    return T0


def new_bucket() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def base_settings() -> Settings:
    return Settings(database_url="sqlite+aiosqlite:///:memory:")


@pytest.fixture
async def bucket(moto_endpoint: str) -> str:
    """A fresh, empty bucket for this test alone."""
    name = new_bucket()
    await create_bucket(moto_endpoint, name)
    return name


@pytest.fixture
async def store(moto_endpoint: str, bucket: str, base_settings: Settings) -> AsyncIterator[S3Store]:
    settings = s3_settings(base_settings, moto_endpoint, bucket)
    async with S3Store.connect(settings, clock=fixed_clock) as opened:
        yield opened


@pytest.fixture
async def raw(moto_endpoint: str) -> AsyncIterator[Any]:
    """A client of our own, for arranging objects and checking them behind the store's back."""
    async with s3_client(moto_endpoint) as client:
        yield client


async def put_many(raw: Any, bucket: str, keys: list[str]) -> None:
    await asyncio.gather(*(raw.put_object(Bucket=bucket, Key=key, Body=b"x") for key in keys))


async def all_keys(raw: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    async for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", ()))
    return keys


class TestUploadSlot:
    async def test_policy_pins_key_type_size_and_encryption(self, store: S3Store) -> None:
        key = f"uploads/{uuid.uuid4()}/{uuid.uuid4()}/report.pdf"
        before = datetime.now(UTC)

        slot = await store.upload_slot(
            key, content_type="application/pdf", max_size=5000, expires_in=timedelta(minutes=5)
        )

        policy = json.loads(base64.b64decode(slot.fields["policy"]))
        conditions = policy["conditions"]
        assert {"key": key} in conditions
        assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]
        assert ["content-length-range", 1, 5000] in conditions
        assert {"Content-Type": "application/pdf"} in conditions
        assert {"x-amz-server-side-encryption": "AES256"} in conditions
        assert {"bucket": store.bucket} in conditions
        expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ")
        expected = before + timedelta(minutes=5)
        assert abs(expiration.replace(tzinfo=UTC) - expected) < timedelta(seconds=5)
        assert slot.expires_at == T0 + timedelta(minutes=5)
        assert slot.fields["key"] == key
        assert slot.fields["Content-Type"] == "application/pdf"
        assert slot.fields["x-amz-server-side-encryption"] == "AES256"

    async def test_filename_template_keys_are_refused(self, store: S3Store) -> None:
        with pytest.raises(ValueError, match="exact"):
            await store.upload_slot(
                "uploads/s/f/${filename}",
                content_type="application/pdf",
                max_size=10,
                expires_in=timedelta(minutes=1),
            )

    async def test_browser_post_then_inspect(self, store: S3Store) -> None:
        key = "uploads/s/f/report.pdf"
        slot = await store.upload_slot(
            key, content_type="application/pdf", max_size=10_000, expires_in=timedelta(minutes=5)
        )

        async with httpx.AsyncClient() as http:
            # httpx sends `data` fields first, in order, and `files` last: the browser's form.
            response = await http.post(
                slot.url,
                data=slot.fields,
                files={"file": ("report.pdf", PDF, "application/pdf")},
            )
        assert response.is_success, response.text

        info = await store.inspect(key, first_bytes=8)
        assert info is not None
        assert info.key == key
        assert info.size == len(PDF)
        assert info.content_type == "application/pdf"
        assert info.first_bytes == PDF[:8]
        assert info.last_modified.tzinfo is not None


class TestInspect:
    async def test_missing_key_is_none(self, store: S3Store) -> None:
        assert await store.inspect("uploads/nothing/here.pdf", first_bytes=8) is None

    async def test_short_object_gives_what_it_has(self, store: S3Store, raw: Any) -> None:
        await raw.put_object(Bucket=store.bucket, Key="k", Body=b"abc", ContentType="text/plain")

        info = await store.inspect("k", first_bytes=8)

        assert info is not None
        assert (info.size, info.first_bytes, info.content_type) == (3, b"abc", "text/plain")

    async def test_empty_object_skips_the_ranged_read(self, store: S3Store, raw: Any) -> None:
        await raw.put_object(Bucket=store.bucket, Key="empty", Body=b"")

        info = await store.inspect("empty", first_bytes=8)

        assert info is not None
        assert (info.size, info.first_bytes) == (0, b"")

    async def test_zero_first_bytes_reads_nothing(self, store: S3Store, raw: Any) -> None:
        await raw.put_object(Bucket=store.bucket, Key="k", Body=b"abcdef")

        info = await store.inspect("k", first_bytes=0)

        assert info is not None
        assert (info.size, info.first_bytes) == (6, b"")


class TestDeleteMany:
    async def test_more_than_one_batch(self, store: S3Store, raw: Any) -> None:
        keys = [f"uploads/s/{i:05d}" for i in range(1005)]
        await put_many(raw, store.bucket, [*keys, "keep/me"])

        await store.delete_many([*keys, "uploads/s/absent"])

        assert await all_keys(raw, store.bucket) == ["keep/me"]

    async def test_nothing_to_delete(self, store: S3Store) -> None:
        await store.delete_many([])
        await store.delete_many(["absent/one", "absent/two"])


class TestListPrefix:
    async def test_every_page_only_under_the_prefix(self, store: S3Store, raw: Any) -> None:
        inside = [f"uploads/a/{i:05d}" for i in range(1003)]
        await put_many(raw, store.bucket, [*inside, "uploads/b/0", "uploadsx", "other/0"])

        first = await raw.list_objects_v2(Bucket=store.bucket, Prefix="uploads/a/")
        assert first["IsTruncated"]  # so the store must follow continuation tokens

        listed = [info async for info in store.list_prefix("uploads/a/")]

        assert sorted(info.key for info in listed) == inside
        assert {info.size for info in listed} == {1}
        assert all(info.last_modified.tzinfo is not None for info in listed)
        assert all(info.first_bytes == b"" for info in listed)

    async def test_consumer_may_stop_early(self, store: S3Store, raw: Any) -> None:
        await put_many(raw, store.bucket, ["p/1", "p/2"])

        listing = store.list_prefix("p/")
        assert isinstance(listing, AsyncGenerator)
        async for info in listing:
            assert info.key == "p/1"
            break
        await listing.aclose()

    async def test_empty_prefix(self, store: S3Store) -> None:
        assert [info async for info in store.list_prefix("nothing/")] == []


class TestDownloadUrl:
    async def test_serves_an_attachment(self, store: S3Store, raw: Any) -> None:
        await raw.put_object(Bucket=store.bucket, Key="k", Body=PDF, ContentType="application/pdf")

        url = await store.download_url("k", filename="report.pdf", expires_in=timedelta(minutes=1))
        async with httpx.AsyncClient() as http:
            response = await http.get(url)

        assert response.status_code == 200
        assert response.content == PDF
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert 'filename="report.pdf"' in disposition
        assert "X-Amz-Expires=60" in url

    async def test_unicode_filename_round_trips(self, store: S3Store, raw: Any) -> None:
        await raw.put_object(Bucket=store.bucket, Key="k", Body=b"x")
        name = "résumé 2026.pdf"

        url = await store.download_url("k", filename=name, expires_in=timedelta(minutes=1))
        async with httpx.AsyncClient() as http:
            response = await http.get(url)

        disposition = response.headers["content-disposition"]
        match = EXT_VALUE.search(disposition)
        assert match is not None
        assert unquote(match.group(1), encoding="utf-8") == name
        fallback = FALLBACK.search(disposition)
        assert fallback is not None
        assert fallback.group(1) == "resume 2026.pdf"


class TestContentDisposition:
    @pytest.mark.parametrize(
        "name",
        [
            'a"b.pdf',
            "a\\b.pdf",
            'evil"; filename="x.exe',
            "line\r\nSet-Cookie: x=1.pdf",
            "nul\x00tab\tdel\x7fc1\x85.pdf",
            '\\"\r\n',
        ],
    )
    def test_fallback_is_clean_ascii(self, name: str) -> None:
        header = content_disposition(name)

        assert header.isascii()
        assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in header)
        match = HEADER.fullmatch(header)
        assert match is not None, header
        fallback = match.group(1)
        assert fallback
        assert '"' not in fallback
        assert "\\" not in fallback

    def test_injection_attempt_stays_one_quoted_value(self) -> None:
        header = content_disposition('evil"; filename="x.exe')

        # Quotes and `;` never reach the fallback: one quoted value, then filename*.
        assert header.startswith('attachment; filename="evil filename=x.exe"; filename*=')

    def test_exact_name_survives_in_filename_star(self) -> None:
        name = '日本語 "report" 50%.pdf'

        header = content_disposition(name)

        match = EXT_VALUE.search(header)
        assert match is not None
        assert unquote(match.group(1), encoding="utf-8") == name
        fallback = FALLBACK.search(header)
        assert fallback is not None
        assert fallback.group(1) == "___ report 50%.pdf"

    def test_control_characters_are_dropped_from_filename_star_too(self) -> None:
        match = EXT_VALUE.search(content_disposition("a\r\nb.pdf"))
        assert match is not None
        assert unquote(match.group(1)) == "ab.pdf"

    def test_unusable_name_gets_a_placeholder(self) -> None:
        assert content_disposition('"\\').startswith('attachment; filename="download"')

    def test_plain_name(self) -> None:
        assert content_disposition("report.pdf") == (
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        )


class TestVersionedBucket:
    """Erasure on a versioned bucket: a plain delete would leave readable noncurrent versions."""

    async def _versions(self, raw: Any, bucket: str, prefix: str) -> list[tuple[str, str]]:
        answer = await raw.list_object_versions(Bucket=bucket, Prefix=prefix)
        return [
            (item["Key"], item["VersionId"])
            for kind in ("Versions", "DeleteMarkers")
            for item in answer.get(kind, ())
        ]

    async def test_purge_removes_every_version_and_delete_marker(
        self, store: S3Store, raw: Any, bucket: str
    ) -> None:
        await raw.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        for body in (b"first", b"second"):  # an overwrite keeps the first as noncurrent
            await raw.put_object(Bucket=bucket, Key="uploads/s1/f1", Body=body)
        await raw.put_object(Bucket=bucket, Key="uploads/s1/f2", Body=b"x")
        await raw.delete_object(Bucket=bucket, Key="uploads/s1/f2")  # a delete marker
        await raw.put_object(Bucket=bucket, Key="uploads/s2/f1", Body=b"other session")
        assert len(await self._versions(raw, bucket, "uploads/s1/")) == 4

        assert await store.purge_prefix("uploads/s1/") == 1  # one object was current

        assert await self._versions(raw, bucket, "uploads/s1/") == []
        assert [key for key, _ in await self._versions(raw, bucket, "uploads/")] == [
            "uploads/s2/f1"
        ]

    async def test_readiness_says_the_bucket_keeps_versions(
        self, store: S3Store, raw: Any, bucket: str
    ) -> None:
        assert await store.check() is None
        await raw.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        assert await store.check() == "versioning enabled: erasure deletes every version"


async def refused(call: Awaitable[object], reason: str) -> None:
    with pytest.raises(StorageUnavailable) as caught:
        await call
    assert caught.value.reason == reason


async def presigning_refused(store: S3Store, reason: str) -> None:
    """Neither a form nor a download URL is handed out, for `reason`."""
    slot = store.upload_slot(
        "k", content_type="application/pdf", max_size=1, expires_in=timedelta(1)
    )
    await refused(slot, reason)
    await refused(store.download_url("k", filename="a.pdf", expires_in=timedelta(1)), reason)


class TestCheck:
    async def test_live_bucket(self, store: S3Store) -> None:
        await store.check()

    async def test_missing_bucket(self, moto_endpoint: str, base_settings: Settings) -> None:
        settings = s3_settings(base_settings, moto_endpoint, new_bucket()).with_overrides(
            s3_secret_access_key="never-in-messages"
        )
        async with S3Store.connect(settings, clock=fixed_clock) as missing:
            with pytest.raises(StorageUnavailable) as caught:
                await missing.check()

        assert "never-in-messages" not in str(caught.value)
        assert caught.value.__cause__ is not None
        assert caught.value.reason == "NoSuchBucket"

    async def test_without_credentials_presigning_is_refused_not_crashed(
        self, moto_endpoint: str, bucket: str, no_default_credentials: None
    ) -> None:
        # botocore's POST presigner fails with an AttributeError (`access_key` of None).
        settings = Settings(
            database_url="sqlite+aiosqlite:///:memory:",
            storage_backend="s3",
            s3_endpoint_url=moto_endpoint,
            s3_bucket=bucket,
        )
        async with S3Store.connect(settings, clock=fixed_clock) as anonymous:
            await presigning_refused(anonymous, "NoCredentialsError")
            await refused(anonymous.check(), "NoCredentialsError")

    async def test_closed_port(self, base_settings: Settings) -> None:
        endpoint = f"http://127.0.0.1:{free_port()}"
        settings = s3_settings(base_settings, endpoint, new_bucket())
        async with S3Store.connect(
            settings, clock=fixed_clock, connect_timeout=1, read_timeout=1, max_attempts=0
        ) as unreachable:
            with pytest.raises(StorageUnavailable) as caught:
                await unreachable.check()

        assert endpoint not in str(caught.value)
        assert caught.value.reason == "EndpointConnectionError"

    async def test_other_operations_translate_too(
        self, moto_endpoint: str, base_settings: Settings
    ) -> None:
        settings = s3_settings(base_settings, moto_endpoint, new_bucket())
        async with S3Store.connect(settings, clock=fixed_clock) as missing:
            # A HEAD's 404 names neither object nor bucket: `inspect` must not answer "no such
            # upload" for a lost bucket. Presigning alone would succeed: it must not either.
            await refused(missing.inspect("uploads/s/f", first_bytes=8), "NoSuchBucket")
            await presigning_refused(missing, "NoSuchBucket")
            with pytest.raises(StorageUnavailable):
                await missing.delete_many(["k"])
            with pytest.raises(StorageUnavailable):
                [info async for info in missing.list_prefix("")]
