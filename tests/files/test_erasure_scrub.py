"""After an erasure no byte of the name or email stays in SQLite's files; files are private."""

from __future__ import annotations

import asyncio
import io
import stat
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from session_service import migrations
from session_service.app import create_app
from session_service.cleanup.runner import job_context
from session_service.core.settings import Settings
from session_service.migrations import target_metadata
from tests.files.helpers import PDF, request_slot, upload_file
from tests.helpers import Running, create_session, holder, rows, running
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


FILE_NAMES = ("Medical_Report_Jane_Q.pdf", "Jane lab results.pdf", "Janes_passport.pdf")


async def _everything_stored(app: Running, moto_endpoint: str | None) -> bytes:
    """Every table as text, SQLite's files, and every stored object (every S3 version)."""
    chunks: list[bytes] = []
    async with app.resources.engine.connect() as conn:
        for table in target_metadata.sorted_tables:
            result = await conn.execute(sa.text(f"SELECT * FROM {table.name}"))
            chunks.extend(repr(tuple(row)).encode() for row in result)
    settings = app.resources.settings
    if settings.database.url.startswith("sqlite"):
        chunks.extend(path.read_bytes() for path in _sqlite_files(settings))
    if moto_endpoint is None:
        root = settings.storage.local_dir
        for path in sorted(root.rglob("*")):
            chunks.append(str(path.relative_to(root)).encode())
            if path.is_file():
                chunks.append(path.read_bytes())
        return b"\n".join(chunks)
    bucket = settings.storage.s3.bucket
    async with s3_client(moto_endpoint) as raw:
        listing = await raw.list_object_versions(Bucket=bucket)
        for item in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
            chunks.append(str(item["Key"]).encode())
        for item in listing.get("Versions", []):
            body = await raw.get_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
            chunks.append(await body["Body"].read())
    return b"\n".join(chunks)


@pytest.mark.parametrize("settings_overrides", [{"alert_webhook_url": "http://127.0.0.1:9/unused"}])
async def test_after_erasure_nothing_personal_remains_anywhere(
    client: httpx.AsyncClient,
    app: Running,
    json_log: io.StringIO,
    store_backend: str,
    request: pytest.FixtureRequest,
) -> None:
    moto_endpoint = request.getfixturevalue("moto_endpoint") if store_backend == "s3" else None
    if moto_endpoint is not None:
        async with s3_client(moto_endpoint) as raw:
            await raw.put_bucket_versioning(
                Bucket=app.resources.settings.storage.s3.bucket,
                VersioningConfiguration={"Status": "Enabled"},
            )
    # A session replaced by a reset, holding a file of its own.
    first = await create_session(client)
    markers = [f"file-marker-{n}-{uuid.uuid4().hex}".encode() for n in range(3)]
    await upload_file(client, first, content=PDF + markers[0], name=FILE_NAMES[0])
    reset = await client.post(
        "/api/v1/session/reset", json={"reason": "tampered"}, headers=holder(first)
    )
    session = reset.json()["session"]
    details = await client.put(
        "/api/v1/session/details",
        json={"name": NAME, "email": EMAIL, "consent_user_data": True},
        headers=holder(session),
    )
    token = details.json()["token"]
    await upload_file(client, token, content=PDF + markers[1], name=FILE_NAMES[1])
    await upload_file(client, token, content=PDF + markers[2], name=FILE_NAMES[2])
    refused = await request_slot(client, token, name="Jane secret.exe", content_type="text/html")
    assert refused.status_code == 422
    before = await _everything_stored(app, moto_endpoint)
    assert EMAIL.encode() in before  # the scan reads where the details and files were
    assert all(marker in before for marker in markers)
    await app.resources.cleanup.run_once(dry_run=False, ctx=job_context())

    assert (await client.delete("/api/v1/session", headers=holder(token))).status_code == 204
    # The session it replaced went with it (linked, and held by the same browser).
    assert await rows(app, "SELECT id FROM sessions") == []

    stored = await _everything_stored(app, moto_endpoint)
    logged = json_log.getvalue().encode()
    personal = [NAME, EMAIL, *FILE_NAMES, "Jane"]  # every file name, the refused one's too
    found = {
        value: (stored.count(value.encode()), logged.count(value.encode())) for value in personal
    }
    found.update({m.decode(): (stored.count(m), logged.count(m)) for m in markers})
    assert found == dict.fromkeys(found, (0, 0))
