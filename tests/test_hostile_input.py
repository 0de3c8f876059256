"""Hostile input is a documented 4xx, never a 5xx: strict bodies, malformed JSON, 405, queries."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from starlette.types import Message

from session_service.app import create_app
from session_service.core.bodies import RequestBody
from tests.helpers import Running, assert_problem, audit_events, create_session, holder
from tests.protection.test_metrics import sample

ADMIN_KEY = "adm-" + "h" * 40
SERVICE_KEY = "svc-" + "h" * 40
RESET = "/api/v1/session/reset"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"admin_api_keys": [ADMIN_KEY], "service_api_keys": [SERVICE_KEY]}


def _refs(node: object) -> set[str]:
    """The schema names a piece of OpenAPI refers to."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        found = {ref.rsplit("/", 1)[1]} if isinstance(ref, str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def _subclasses(cls: type[RequestBody]) -> set[type[RequestBody]]:
    direct = set(cls.__subclasses__())
    return direct.union(*(_subclasses(sub) for sub in direct))


def test_every_json_body_is_a_strict_request_body() -> None:
    """A new body model cannot slip back into lax mode: each one in the API is a RequestBody."""
    document = create_app().openapi()
    bodies = {
        name
        for operations in document["paths"].values()
        for operation in operations.values()
        for name in _refs(
            operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        )
    }
    strict = {cls.__name__ for cls in _subclasses(RequestBody)}
    assert bodies, "no JSON request bodies found"
    assert bodies <= strict, bodies - strict
    assert all(cls.model_config.get("strict") for cls in _subclasses(RequestBody))


class TestCoercionRefused:
    @pytest.mark.parametrize("reason", [5, True, None, ["missing"], {"reason": "missing"}])
    async def test_reset_reason_must_be_a_string(
        self, client: httpx.AsyncClient, reason: object
    ) -> None:
        body = assert_problem(
            await client.post(RESET, json={"reason": reason}), 422, "validation_error"
        )
        assert ["body", "reason"] in [error["loc"] for error in body["errors"]]

    @pytest.mark.parametrize("proposed", [5, True, [], {}, 1.5])
    async def test_a_proposed_token_must_be_a_string(
        self, client: httpx.AsyncClient, proposed: object
    ) -> None:
        response = await client.post("/api/v1/sessions", json={"id": proposed})
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "id"] in [error["loc"] for error in body["errors"]]


MALFORMED_JSON = {
    "syntax": b'{"reason": "missing"',
    "not_utf8": b'{"reason": "\xff\xfe"}',
    "utf16_garbage": b"\xff\xfe{\x00",
    "nested_too_deep": b"[" * 5000 + b"]" * 5000,
    "integer_too_long": b'{"reason": ' + b"9" * 5000 + b"}",
}


class TestMalformedJson:
    @pytest.mark.parametrize("variant", sorted(MALFORMED_JSON))
    async def test_is_400_malformed_json_and_audited(
        self, client: httpx.AsyncClient, app: Running, variant: str
    ) -> None:
        response = await client.post(
            RESET, content=MALFORMED_JSON[variant], headers={"content-type": "application/json"}
        )
        body = assert_problem(response, 400, "malformed_json")
        assert "errors" not in body
        [event] = [e for e in await audit_events(app) if e["type"] == "request.rejected"]
        assert event["details"]["code"] == "malformed_json"
        assert event["details"]["path"] == RESET

    async def test_on_a_holder_route_too(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        response = await client.put(
            "/api/v1/session/details",
            headers={**holder(session), "content-type": "application/json"},
            content=b"{name: 'Ada'}",
        )
        assert_problem(response, 400, "malformed_json")


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("PUT", "/api/v1/session", "DELETE, GET"),
            ("POST", f"/api/v1/sessions/{uuid.uuid4()}", "DELETE, GET"),
            ("PUT", "/api/v1/sessions", "POST"),
            ("GET", "/api/v1/session/details", "PUT"),
            ("GET", "/api/v1/session/validate", "POST"),
            ("POST", f"/api/v1/session/files/{uuid.uuid4()}", "DELETE"),
        ],
    )
    async def test_allow_lists_every_method_of_the_path(
        self, client: httpx.AsyncClient, method: str, path: str, allow: str
    ) -> None:
        response = await client.request(method, path)
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == allow


class TestHostileQueries:
    """Values that parse but that the database or the clock cannot take."""

    @pytest.mark.parametrize(
        "query",
        [
            "type=%00",
            "type=session.created%00",
            "type=<script>",
            "since=0001-01-01T00:00:00%2B14:00",
            "until=9999-12-31T23:59:59-14:00",
            "since=1e20",
            "until=0.5",  # a number of seconds is not an ISO 8601 date-time
            "since=1767225600",
            "limit=true",
            "limit=1e3",
            "session_id=%00",
        ],
    )
    async def test_audit_query_is_422(self, client: httpx.AsyncClient, query: str) -> None:
        response = await client.get(
            f"/api/v1/admin/audit-events?{query}",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert_problem(response, 422, "validation_error")


class TestClientLeavingMidBody:
    async def test_is_counted_499_without_an_answer_or_an_alert(self, app: Running) -> None:
        """A JSON body cut short by the client: no 400 sent into the void, no 500 counted."""
        messages: list[Message] = [
            {"type": "http.request", "body": b'{"reason": ', "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[Message] = []

        async def receive() -> Message:
            return messages.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": RESET,
            "raw_path": RESET.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 40000),
            "server": ("testserver", 80),
        }
        await app(scope, receive, send)
        assert sent == []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            text = (await http.get("/metrics")).text
        counted = {"method": "POST", "route": "/api/v1/session/reset"}
        assert sample(text, "session_service_http_requests_total", **counted, status="499") == 1
        assert sample(text, "session_service_http_requests_total", **counted, status="400") == 0
