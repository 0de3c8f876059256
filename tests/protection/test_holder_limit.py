"""Every route that takes X-Session-ID draws on one more budget per client: RATE_LIMIT_HOLDER."""

from __future__ import annotations

import re
import uuid

import pytest

from session_service.sessions.deps import SESSION_ID_HEADER
from tests.helpers import Running, assert_problem
from tests.protection.conftest import ClientFactory


@pytest.fixture
def settings_overrides(limits_on: dict[str, object]) -> dict[str, object]:
    """Only the holder budget is small, so any 429 here is the holder limit's."""
    return {
        **limits_on,
        "rate_limit_holder": "2/minute",
        "rate_limit_reset": "100/minute",
        "rate_limit_validate": "100/minute",
        "rate_limit_upload": "100/minute",
    }


def holder_operations(app: Running) -> list[tuple[str, str, bool]]:
    """(method, path, has a body) of every operation the OpenAPI says takes X-Session-ID."""
    found = []
    for path, operations in app.app.openapi()["paths"].items():
        for method, operation in operations.items():
            names = {parameter["name"] for parameter in operation.get("parameters", [])}
            if SESSION_ID_HEADER in names:
                assert "429" in operation["responses"], (method, path)  # documented too
                concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
                found.append((method.upper(), concrete, "requestBody" in operation))
    return found


class TestHolderLimit:
    async def test_every_holder_route_is_limited_per_client(
        self, app: Running, client_from: ClientFactory
    ) -> None:
        operations = holder_operations(app)
        # validate, reset, read, erase, details, export, files, delete, complete, download, upload
        assert len(operations) >= 11
        for number, (method, path, has_body) in enumerate(operations, start=1):
            async with client_from(f"198.51.100.{number}") as http:
                body = {"reason": "missing"} if has_body else None
                headers = {SESSION_ID_HEADER: str(uuid.uuid4())}
                for _ in range(2):
                    response = await http.request(method, path, json=body, headers=headers)
                    assert response.status_code != 429, (method, path, response.text)
                response = await http.request(method, path, json=body, headers=headers)
                refusal = assert_problem(response, 429, "rate_limited")
                assert refusal["kind"] == "holder", (method, path)
                assert response.headers["retry-after"]

    async def test_other_routes_do_not_draw_on_it(
        self, app: Running, client_from: ClientFactory
    ) -> None:
        async with client_from("198.51.100.99") as http:
            for _ in range(3):
                assert (await http.get("/healthz")).status_code == 200
            for _ in range(2):
                response = await http.get("/api/v1/session")
                assert response.status_code == 401
            assert (await http.post("/api/v1/sessions")).status_code == 201
            assert (await http.get("/api/v1/session")).status_code == 429
