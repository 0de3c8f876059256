"""Absolute URLs are built on PUBLIC_BASE_URL or an allowed Host, never on any Host sent."""

from __future__ import annotations

import httpx
import pytest

from session_service.core.settings import Settings
from session_service.http.urls import host_allowed
from tests.files.helpers import file_rows, upload_file
from tests.helpers import Running, assert_problem, audit_events, create_session, holder

EVIL = {"Host": "evil.example:666"}


async def slot_as(client: httpx.AsyncClient, token: str, host: str) -> httpx.Response:
    return await client.post(
        "/api/v1/session/uploads",
        headers={**holder(token), "Host": host},
        json={"name": "report.pdf", "content_type": "application/pdf", "size": 10},
    )


def test_the_defaults_are_the_loopback_names() -> None:
    assert Settings().storage.allowed_hosts == ["127.0.0.1", "localhost"]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True),
        ("localhost:8000", True),
        ("LOCALHOST:8000", True),
        ("127.0.0.1:9", True),
        ("[::1]:8000", True),
        ("app.test:8443", True),
        ("app.test:8444", False),
        ("app.test", False),
        ("evil.example:666", False),
        ("localhost.evil.example", False),
        ("evil.example:localhost", False),
        ("", False),
    ],
)
def test_host_matching(host: str, allowed: bool) -> None:
    entries = ["127.0.0.1", "localhost", "[::1]", "app.test:8443"]
    assert host_allowed(host, entries) is allowed


class TestWithoutPublicBaseUrl:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"allowed_hosts": ["127.0.0.1", "localhost"]}

    async def test_an_unknown_host_gets_400_and_nothing_is_recorded(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        before = len(await audit_events(app))

        refused = await slot_as(client, session["token"], "evil.example:666")

        assert_problem(refused, 400, "invalid_host")
        assert "evil.example" not in refused.text
        assert await file_rows(app) == []
        assert len(await audit_events(app)) == before

    async def test_an_allowed_host_with_any_port_builds_the_urls(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create_session(client)
        created = await slot_as(client, session["token"], "localhost:8123")
        assert created.status_code == 201, created.text
        assert created.json()["upload"]["url"].startswith(
            "http://localhost:8123/api/v1/storage/uploads"
        )

    async def test_download_and_export_refuse_an_unknown_host(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        headers = {**holder(session), "Host": "localhost"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as local:
            uploaded = await upload_file(local, session)
        evil = {**holder(session), **EVIL}
        download = await client.get(
            f"/api/v1/session/files/{uploaded['id']}/download", headers=evil
        )
        assert_problem(download, 400, "invalid_host")
        assert_problem(
            await client.get("/api/v1/session/export", headers=evil), 400, "invalid_host"
        )
        ok = await client.get(f"/api/v1/session/files/{uploaded['id']}/download", headers=headers)
        assert ok.status_code == 200
        assert ok.json()["url"].startswith("http://localhost/api/v1/storage/downloads/")


class TestWithPublicBaseUrl:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"allowed_hosts": ["127.0.0.1"], "public_base_url": "https://sessions.example/"}

    async def test_the_host_header_is_ignored(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        created = await slot_as(client, session["token"], "evil.example:666")
        assert created.status_code == 201, created.text
        url = created.json()["upload"]["url"]
        assert url.startswith("https://sessions.example/api/v1/storage/uploads")
        assert "evil" not in created.text
