"""API keys: 401 without or with a wrong key, 403 for the other role, 503 when none exist."""

from __future__ import annotations

import inspect
import uuid

import httpx
import pytest
from pydantic import SecretStr

from session_service.http import auth
from tests.helpers import assert_problem, create_session

SERVICE_KEY = "svc-" + "k" * 40
ADMIN_KEY = "adm-" + "a" * 40


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": ["old-" + "o" * 40, SERVICE_KEY], "admin_api_keys": [ADMIN_KEY]}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class TestServiceKey:
    async def test_any_configured_key_works_for_rotation(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        for key in ("old-" + "o" * 40, SERVICE_KEY):
            response = await client.get(f"/api/v1/sessions/{session['id']}", headers=_bearer(key))
            assert response.status_code == 200

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Bearer"},
            {"Authorization": f"Basic {SERVICE_KEY}"},
            _bearer(SERVICE_KEY[:-1] + "x"),  # differs in the last character only
            _bearer(SERVICE_KEY + "x"),
            _bearer("x" * 5000),
        ],
    )
    async def test_missing_or_wrong_keys_are_401(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.get(f"/api/v1/sessions/{uuid.uuid4()}", headers=headers)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_an_admin_key_on_a_service_route_is_403(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"/api/v1/sessions/{uuid.uuid4()}", headers=_bearer(ADMIN_KEY))
        assert_problem(response, 403, "forbidden")

    async def test_the_session_id_is_not_a_key(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        response = await client.get(
            f"/api/v1/sessions/{session['id']}", headers=_bearer(session["id"])
        )
        assert_problem(response, 401, "unauthorized")


class TestNoKeysConfigured:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {}

    async def test_privileged_routes_are_closed_not_open(self, client: httpx.AsyncClient) -> None:
        for headers in ({}, _bearer("anything")):
            response = await client.get(f"/api/v1/sessions/{uuid.uuid4()}", headers=headers)
            body = assert_problem(response, 503, "auth_not_configured")
            assert "SERVICE_API_KEYS" in body["detail"]


class TestAuthoriseUnit:
    def test_wrong_role_and_unknown_key(self) -> None:
        service, admin = [SecretStr("a")], [SecretStr("b")]
        with pytest.raises(auth.Forbidden):
            auth.authorise("a", auth.Role.ADMIN, service=service, admin=admin)
        with pytest.raises(auth.Unauthorized):
            auth.authorise("c", auth.Role.ADMIN, service=service, admin=admin)
        auth.authorise("b", auth.Role.ADMIN, service=service, admin=admin)

    def test_every_key_is_compared_in_constant_time(self) -> None:
        # By inspection, as the issue asks: hmac.compare_digest over every key, no early exit.
        source = inspect.getsource(auth._matches)
        assert "hmac.compare_digest" in source
        assert "return True" not in source
        assert "break" not in source
