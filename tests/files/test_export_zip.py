"""The ZIP export: every file byte for byte under its own name, every event, flat memory."""

from __future__ import annotations

import io
import json
import tracemalloc
import uuid
import zipfile
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from session_service.core.db import job_scope
from session_service.core.errors import ResponseInterrupted
from session_service.privacy.archive import zip_export
from session_service.storage.base import READ_CHUNK, StorageUnavailable
from tests import moto_server
from tests.conftest import service_log_lines
from tests.files.helpers import PDF, file_rows, request_slot, upload_file
from tests.helpers import Running, assert_problem, audit_events, create_session, holder

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto out of this process: its memory must not count as the export's."""
    with moto_server.separate_process() as endpoint:
        yield endpoint


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"upload_session_quota_bytes": 200 * MiB}


def _pdf(marker: str, size: int = len(PDF)) -> bytes:
    """A valid upload of `size` bytes that holds `marker`."""
    body = b"%PDF-1.7\n" + marker.encode() + b"\n"
    return body + b"x" * (size - len(body) - 7) + b"\n%%EOF\n"


async def _zip(client: httpx.AsyncClient, session: dict[str, Any] | str) -> zipfile.ZipFile:
    response = await client.get("/api/v1/session/export?format=zip", headers=holder(session))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'attachment; filename="session-export.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None  # every entry's CRC checks out
    return archive


class TestZipExport:
    async def test_every_file_under_its_own_name_and_every_event(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        first = await create_session(client)
        reset = await client.post(
            "/api/v1/session/reset", json={"reason": "expired"}, headers=holder(first)
        )
        session = reset.json()["session"]
        contents = {
            "Lebenslauf Jürgen.pdf": _pdf("marker-one"),
            "report.pdf": _pdf("marker-two", 3 * READ_CHUNK + 11),  # several chunks
            "REPORT.pdf": _pdf("marker-three"),  # the same name on a case-blind disk
            "report": _pdf("marker-four"),
        }
        uploaded = {
            name: await upload_file(client, session, content, name=name)
            for name, content in contents.items()
        }
        pending = (await request_slot(client, session, name="later.pdf")).json()["file"]

        archive = await _zip(client, session)
        names = archive.namelist()
        assert names[-2:] == ["audit-events.json", "session.json"]
        document = json.loads(archive.read("session.json"))
        assert document["format"] == "session-service.export.v3"
        assert document["session"]["id"] == session["id"]
        assert document["session"]["client_ip"] == "127.0.0.1"
        paths = {file["id"]: file["path"] for file in document["files"]}
        assert paths[pending["id"]] is None
        # One of the two names that clash on a case-blind disk gets a number.
        assert {paths[uploaded[name]["id"]].casefold() for name in contents} == {
            "files/lebenslauf jürgen.pdf",
            "files/report.pdf",
            "files/report (2).pdf",
            "files/report",
        }
        for name, content in contents.items():
            assert archive.read(paths[uploaded[name]["id"]]) == content
        assert all("download_url" not in file for file in document["files"])
        assert document["previous_sessions"] == [{"id": first["id"]}]

        trails = json.loads(archive.read("audit-events.json"))
        stored = await audit_events(app)
        own = [e["id"] for e in stored if e["session_id"] == session["id"]]
        assert [e["id"] for e in trails["audit_events"]] == own
        assert trails["audit_events"][-1]["type"] == "session.exported"
        assert trails["audit_events"][-1]["details"] == {"format": "zip"}
        [previous] = trails["previous_sessions"]
        assert previous["id"] == first["id"]
        assert [e["id"] for e in previous["audit_events"]] == [
            e["id"] for e in stored if e["session_id"] == first["id"]
        ]
        # Extracted, the files are readable by their owner only.
        assert archive.getinfo("files/report").external_attr >> 16 == 0o100600

    async def test_a_file_gone_from_storage_is_named_without_content(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        kept = await upload_file(client, session, _pdf("kept"), name="kept.pdf")
        lost = await upload_file(client, session, _pdf("lost"), name="lost.pdf")
        [row] = [
            f for f in await file_rows(app) if uuid.UUID(str(f["id"])) == uuid.UUID(lost["id"])
        ]
        await app.resources.store.delete_many([row["storage_key"]])

        archive = await _zip(client, session)
        document = json.loads(archive.read("session.json"))
        paths = {file["id"]: file["path"] for file in document["files"]}
        assert paths == {kept["id"]: "files/kept.pdf", lost["id"]: None}
        assert archive.read("files/kept.pdf") == _pdf("kept")

    async def test_the_json_form_stays_the_default(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        response = await client.get("/api/v1/session/export", headers=holder(session))
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["audit_events"][-1]["details"] == {"format": "json"}

    async def test_an_unknown_format_is_refused_before_anything_is_exported(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        before = len(await audit_events(app))
        response = await client.get("/api/v1/session/export?format=tar", headers=holder(session))
        assert_problem(response, 422, "validation_error")
        assert "session.exported" not in [e["type"] for e in (await audit_events(app))[before:]]


@pytest.mark.parametrize("store_backend", ["local", "s3"], indirect=True)
async def test_memory_stays_flat_for_twenty_files_of_five_mib(
    client: httpx.AsyncClient, app: Running, tmp_path: Path
) -> None:
    """The archive of 100 MiB of files streams through a few chunks of memory.

    On S3 this is what the reads hold too: aiobotocore's body is read a chunk at a time.
    """
    session = await create_session(client)
    for n in range(20):
        await upload_file(client, session, _pdf(f"file-{n}", 5 * MiB), name=f"scan {n}.pdf")
    async with job_scope(app.resources.sessionmaker) as db:
        snapshot = await app.resources.sessions.find(uuid.UUID(session["id"]), db=db)
    content = await app.resources.exporter.read(snapshot)

    target = tmp_path / "export.zip"
    tracemalloc.start()
    try:
        with target.open("wb") as out:
            async for chunk in zip_export(content, app.resources.store):
                out.write(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert target.stat().st_size > 100 * MiB
    assert peak < 4 * READ_CHUNK + MiB, f"peak {peak / MiB:.1f} MiB"
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        assert len([name for name in archive.namelist() if name.startswith("files/")]) == 20
        assert archive.read("files/scan 7.pdf") == _pdf("file-7", 5 * MiB)


async def test_storage_failing_mid_archive_cuts_the_download_off(
    client: httpx.AsyncClient,
    app: Running,
    monkeypatch: pytest.MonkeyPatch,
    json_log: io.StringIO,
) -> None:
    """A short archive must never look whole: the stream fails instead of closing cleanly."""
    session = await create_session(client)
    await upload_file(client, session, _pdf("one", 2 * READ_CHUNK), name="one.pdf")
    store = app.resources.store
    real_read = store.read

    async def failing_read(key: str) -> AsyncGenerator[bytes, None]:
        async for chunk in real_read(key):
            yield chunk
            raise StorageUnavailable("S3 read failed (ReadTimeoutError)")

    monkeypatch.setattr(store, "read", failing_read)
    with pytest.raises(ResponseInterrupted, match=r"export cut off: S3 read failed"):
        await client.get("/api/v1/session/export?format=zip", headers=holder(session))
    lines = service_log_lines(json_log)
    [interrupted] = [line for line in lines if line["event"] == "response_interrupted"]
    assert interrupted["level"] == "warning"
    assert "unhandled_error" not in [line["event"] for line in lines]
