"""After an erasure no byte of the name or email stays in SQLite's files; files are private."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from session_service import migrations
from session_service.app import create_app
from session_service.core.settings import Settings
from tests.files.helpers import PDF, upload_file
from tests.helpers import Running, create_session, holder, running
from tests.moto_server import s3_client

NAME = "Zelda Quixotemarker"
EMAIL = "zq.erasemarker@example.org"


def _sqlite_files(settings: Settings) -> list[Path]:
    database = Path(str(make_url(settings.database.url).database))
    return [p for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm")) if p.exists()]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_no_byte_of_the_details_stays_in_the_database_files(
    client: httpx.AsyncClient, app: Running, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the embedded database's own files")
    session = await create_session(client)
    answer = await client.put(
        "/api/v1/session/details",
        json={"name": NAME, "email": EMAIL, "consent_user_data": True},
        headers=holder(session),
    )
    assert answer.status_code == 200
    files = _sqlite_files(app.resources.settings)
    before = b"".join(path.read_bytes() for path in files)
    assert EMAIL.encode() in before  # the scan reads where the details were
    erased = await client.delete("/api/v1/session", headers=holder(answer.json()["token"]))
    assert erased.status_code == 204
    after = b"".join(path.read_bytes() for path in _sqlite_files(app.resources.settings))
    assert NAME.encode() not in after
    assert EMAIL.encode() not in after


async def test_a_new_database_and_storage_are_their_owners_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'fresh.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    settings = Settings(
        database_url=url,
        local_storage_dir=tmp_path / "storage",
        signing_key_file=tmp_path / "signing.key",
        audit_seal_interval=0,
        cleanup_enabled=False,
    )
    async with running(create_app(settings)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.post("/api/v1/sessions")).status_code == 201
        files = _sqlite_files(settings)
        assert files
        assert {path.name: _mode(path) for path in files} == dict.fromkeys(
            (path.name for path in files), 0o600
        )
        assert _mode(tmp_path / "storage") == 0o700


async def test_erasure_on_a_versioned_bucket_leaves_no_version(
    client: httpx.AsyncClient, app: Running, store_backend: str, moto_endpoint: str
) -> None:
    if store_backend != "s3":
        pytest.skip("object versions are S3's")
    bucket = app.resources.settings.storage.s3.bucket
    async with s3_client(moto_endpoint) as raw:
        await raw.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        ready = (await client.get("/readyz")).json()
        assert ready["checks"]["storage"] == "ok: versioning enabled: erasure deletes every version"
        session = await create_session(client)
        file = await upload_file(client, session, content=PDF + b"marker-in-the-file")
        prefix = f"uploads/{session['id']}/"
        # A second write under the key leaves the first as a noncurrent version.
        await raw.put_object(Bucket=bucket, Key=f"{prefix}{file['id']}", Body=b"overwritten")
        erased = await client.delete("/api/v1/session", headers=holder(session))
        assert erased.status_code == 204
        versions = await raw.list_object_versions(Bucket=bucket, Prefix=prefix)
        assert versions.get("Versions", []) == []
        assert versions.get("DeleteMarkers", []) == []
