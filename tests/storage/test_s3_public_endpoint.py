"""S3_PUBLIC_ENDPOINT_URL: presigned forms and URLs are built and signed for the browser's
address of the bucket, while the service's own calls use S3_ENDPOINT_URL.

moto answers on 127.0.0.1 (the service's address here) and on `localhost` (the browser's):
the way compose's MinIO is `minio:9000` inside and `127.0.0.1:9000` from the host.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import botocore.auth
import botocore.config
import httpx
import pytest

from session_service.core.settings import Settings
from session_service.storage.disposition import content_disposition
from session_service.storage.s3 import S3Store
from tests import moto_server
from tests.moto_server import create_bucket, s3_client, s3_settings

moto_endpoint = moto_server.moto_endpoint

PDF = b"%PDF-1.7\n" + b"x" * 100
API_DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()


def public(endpoint: str) -> str:
    return endpoint.replace("127.0.0.1", "localhost")


@pytest.fixture
async def bucket(moto_endpoint: str) -> str:
    name = f"public-{moto_server.free_port()}"
    await create_bucket(moto_endpoint, name)
    return name


@pytest.fixture
async def store(moto_endpoint: str, bucket: str) -> AsyncIterator[S3Store]:
    settings = s3_settings(
        Settings(database_url="sqlite+aiosqlite:///:memory:"), moto_endpoint, bucket
    ).with_overrides(s3_public_endpoint_url=public(moto_endpoint))
    async with S3Store.connect(settings, clock=lambda: datetime.now(UTC)) as opened:
        yield opened


def test_the_public_endpoint_defaults_to_the_endpoint() -> None:
    s3 = Settings(s3_endpoint_url="http://minio:9000").storage.s3
    assert s3.presign_endpoint_url == "http://minio:9000"
    both = Settings(
        s3_endpoint_url="http://minio:9000", s3_public_endpoint_url="http://127.0.0.1:9000"
    ).storage.s3
    assert both.presign_endpoint_url == "http://127.0.0.1:9000"


async def test_a_form_for_the_public_endpoint_works_posted_there(
    store: S3Store, moto_endpoint: str, bucket: str
) -> None:
    key = "uploads/s/f"
    slot = await store.upload_slot(
        key, content_type="application/pdf", max_size=1000, expires_in=timedelta(minutes=5)
    )
    assert slot.url.startswith(f"{public(moto_endpoint)}/{bucket}")

    async with httpx.AsyncClient() as browser:
        posted = await browser.post(
            slot.url, data=slot.fields, files={"file": ("r.pdf", PDF, "application/pdf")}
        )
    assert posted.is_success, posted.text

    # The service's own calls go to its endpoint and find the object.
    info = await store.inspect(key, first_bytes=5)
    assert info is not None
    assert (info.size, info.first_bytes) == (len(PDF), b"%PDF-")
    url = await store.download_url(key, filename="r.pdf", expires_in=timedelta(minutes=5))
    assert url.startswith(f"{public(moto_endpoint)}/{bucket}/{key}?")
    async with httpx.AsyncClient() as browser:
        fetched = await browser.get(url)
    assert fetched.content == PDF


async def test_download_urls_are_signed_for_the_public_host(
    store: S3Store, moto_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SigV4 signs the host: the URL must be exactly what a client of the public endpoint
    # signs at the same instant, and differ from what one of the service's endpoint signs.
    instant = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda **_: instant)
    ours = await store.download_url("k", filename="r.pdf", expires_in=timedelta(minutes=5))

    async def signed_by(endpoint: str) -> str:
        config = botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"})
        async with s3_client(endpoint, config=config) as client:
            return str(
                await client.generate_presigned_url(
                    "get_object",
                    Params={
                        "Bucket": bucket,
                        "Key": "k",
                        "ResponseContentDisposition": content_disposition("r.pdf"),
                    },
                    ExpiresIn=300,
                )
            )

    assert ours == await signed_by(public(moto_endpoint))
    internal = await signed_by(moto_endpoint)
    assert internal.split("X-Amz-Signature=")[1] != ours.split("X-Amz-Signature=")[1]


async def test_the_readmes_cors_rule_is_a_valid_bucket_cors_document(
    moto_endpoint: str, bucket: str
) -> None:
    block = API_DOC.split("put-bucket-cors", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    document = json.loads(block)
    async with s3_client(moto_endpoint) as raw:
        await raw.put_bucket_cors(Bucket=bucket, CORSConfiguration=document)
        stored = await raw.get_bucket_cors(Bucket=bucket)
    [rule] = stored["CORSRules"]
    assert set(rule["AllowedMethods"]) == {"POST", "GET"}
