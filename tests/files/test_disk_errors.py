"""A local disk error is storage trouble (503 storage_unavailable), never the database's."""

from __future__ import annotations

import httpx
import pytest

from session_service.files.names import promoted_key
from session_service.storage.local import LocalStore
from tests.files.helpers import PDF, post_form, request_slot
from tests.helpers import Running, assert_problem, create_session, holder


@pytest.fixture
def store_backend() -> str:
    return "local"


class TestDiskErrors:
    async def test_an_object_path_turned_into_a_directory_answers_storage_unavailable(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        store = app.resources.store
        assert isinstance(store, LocalStore)
        session = await create_session(client)
        slot = (await request_slot(client, session)).json()
        assert (await post_form(client, slot["upload"], PDF)).status_code in (200, 201, 204)
        # Where complete copies the upload to check it must be a directory: make it a file.
        blocker = store.objects / promoted_key(slot["upload"]["fields"]["key"])
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_bytes(b"")
        response = await client.post(
            f"/api/v1/session/files/{slot['file']['id']}/complete",
            headers=holder(session),
        )
        assert_problem(response, 503, "storage_unavailable")
        listed = await client.get("/api/v1/session/files", headers=holder(session))
        assert [file["status"] for file in listed.json()["files"]] == ["pending"]
