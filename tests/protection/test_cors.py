"""CORS: only the configured origins, preflights cached, the browser module's headers."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import assert_problem

ALLOWED = "https://app.example"
VALIDATE = "/api/v1/session/validate"


def preflight(origin: str, method: str = "POST", headers: str = "x-session-id") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"cors_origins": [ALLOWED], "cors_max_age": 900}


class TestAllowedOrigin:
    async def test_preflight_is_allowed_and_cached(self, client: httpx.AsyncClient) -> None:
        response = await client.options(
            VALIDATE, headers=preflight(ALLOWED, headers="content-type, x-session-id, x-request-id")
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert response.headers["access-control-max-age"] == "900"
        allowed = response.headers["access-control-allow-headers"].lower()
        assert {"x-session-id", "x-request-id", "content-type"} <= {
            h.strip() for h in allowed.split(",")
        }
        assert "access-control-allow-credentials" not in response.headers
        assert response.headers["x-request-id"]

    async def test_a_stream_resumes_and_a_conversation_is_renamed_cross_origin(
        self, client: httpx.AsyncClient
    ) -> None:
        conversation = "/api/v1/session/conversations/00000000-0000-4000-8000-000000000000"
        resume = await client.options(
            f"{conversation}/events", headers=preflight(ALLOWED, headers="last-event-id")
        )
        assert resume.status_code == 200
        assert "last-event-id" in resume.headers["access-control-allow-headers"].lower()
        create = await client.options(
            "/api/v1/sessions", headers=preflight(ALLOWED, headers="idempotency-key")
        )
        assert create.status_code == 200
        assert "idempotency-key" in create.headers["access-control-allow-headers"].lower()
        rename = await client.options(conversation, headers=preflight(ALLOWED, method="PATCH"))
        assert rename.status_code == 200
        assert "PATCH" in rename.headers["access-control-allow-methods"]

    async def test_answers_expose_the_module_headers(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/v1/sessions", headers={"Origin": ALLOWED})
        assert response.status_code == 201
        assert response.headers["access-control-allow-origin"] == ALLOWED
        exposed = {
            h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
        }
        assert {"x-session-id", "x-request-id", "retry-after", "idempotent-replayed"} <= exposed

    async def test_errors_carry_cors_headers_too(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/session", headers={"Origin": ALLOWED})
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == ALLOWED

    async def test_a_header_the_module_does_not_send_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.options(VALIDATE, headers=preflight(ALLOWED, headers="x-admin"))
        assert_problem(response, 400, "cors_rejected")

    async def test_a_method_outside_the_api_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.options(VALIDATE, headers=preflight(ALLOWED, method="TRACE"))
        assert_problem(response, 400, "cors_rejected")


class TestDisallowedOrigin:
    async def test_preflight_is_refused_as_a_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.options(VALIDATE, headers=preflight("https://evil.example"))
        body = assert_problem(response, 400, "cors_rejected")
        assert "origin" in body["detail"]
        assert "access-control-allow-origin" not in response.headers

    @pytest.mark.parametrize(
        "origin", ["https://evil.example", "https://app.example.evil", "http://app.example", "null"]
    )
    async def test_simple_request_gets_no_allow_origin(
        self, client: httpx.AsyncClient, origin: str
    ) -> None:
        response = await client.post("/api/v1/sessions", headers={"Origin": origin})
        assert "access-control-allow-origin" not in response.headers


class TestNothingConfigured:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {}

    async def test_no_cross_origin_access_by_default(self, client: httpx.AsyncClient) -> None:
        response = await client.options(VALIDATE, headers=preflight(ALLOWED))
        assert_problem(response, 405, "method_not_allowed")
        assert "access-control-allow-origin" not in response.headers
        simple = await client.post("/api/v1/sessions", headers={"Origin": ALLOWED})
        assert "access-control-allow-origin" not in simple.headers
