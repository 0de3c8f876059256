"""/metrics: Prometheus text, per route template, outcomes from committed events."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from session_service.core.settings import Settings
from tests.files.helpers import PDF
from tests.helpers import Running, assert_problem, create_session, holder


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample, 0 when absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = (
        rf"^{re.escape(name)}(?:\{{{re.escape(wanted)}\}})? (\S+)$"
        if labels
        else rf"^{re.escape(name)} (\S+)$"
    )
    match = re.search(pattern, text, flags=re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"allow_client_tokens": True}  # a taken proposal is a rolled-back create


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


class TestRequests:
    async def test_counted_per_route_template_never_per_path(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create_session(client)
        headers = holder(session)
        for _ in range(3):
            await client.post(f"/api/v1/session/files/{uuid.uuid4()}/complete", headers=headers)
        await client.get(f"/no/such/{uuid.uuid4()}")
        text = await scrape(client)
        route = "/api/v1/session/files/{file_id}/complete"
        assert (
            sample(
                text,
                "session_service_http_requests_total",
                method="POST",
                route=route,
                status="404",
            )
            == 3
        )
        assert (
            sample(
                text,
                "session_service_http_requests_total",
                method="GET",
                route="unmatched",
                status="404",
            )
            == 1
        )
        assert session["id"] not in text
        assert session["token"] not in text
        assert "/no/such" not in text
        assert (
            sample(
                text,
                "session_service_http_request_duration_seconds_count",
                method="POST",
                route="/api/v1/sessions",
            )
            == 1
        )


class TestOutcomes:
    async def test_sessions_validations_and_uploads(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        headers = holder(session)
        await client.post("/api/v1/session/validate", headers=headers)
        await client.post("/api/v1/session/validate", headers={"X-Session-ID": "x"})
        await client.post("/api/v1/session/validate", headers={"X-Session-ID": str(uuid.uuid4())})
        await client.post("/api/v1/session/reset", json={"reason": "missing"})
        slot = {"name": "a.pdf", "content_type": "application/pdf", "size": len(PDF)}
        await client.post("/api/v1/session/uploads", json=slot, headers=headers)
        text = await scrape(client)
        created = "session_service_sessions_created_total"
        assert sample(text, created, kind="new") == 1
        assert sample(text, created, kind="reset") == 1
        validations = "session_service_session_validations_total"
        # The upload slot's holder check counts as well as the explicit validate.
        assert sample(text, validations, outcome="valid") == 2
        assert sample(text, validations, outcome="malformed") == 1
        assert sample(text, validations, outcome="not_found") == 1
        assert sample(text, "session_service_uploads_total", outcome="slot_issued") == 1

    async def test_a_rolled_back_change_is_not_counted(self, client: httpx.AsyncClient) -> None:
        taken = await create_session(client)
        response = await client.post("/api/v1/sessions", json={"id": taken["token"]})
        assert response.status_code == 409
        text = await scrape(client)
        assert sample(text, "session_service_sessions_created_total", kind="new") == 1

    async def test_families_for_later_layers_are_exposed(self, client: httpx.AsyncClient) -> None:
        text = await scrape(client)
        for family in (
            "session_service_rate_limit_rejections",
            "session_service_cleanup_deletions",
            "session_service_alerts",
        ):
            assert f"# TYPE {family}_total counter" in text


class TestAccess:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"metrics_require_admin": True, "admin_api_keys": ["admin-key"]}

    async def test_admin_key_required_when_configured(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/metrics"), 401, "unauthorized")
        ok = await client.get("/metrics", headers={"Authorization": "Bearer admin-key"})
        assert ok.status_code == 200


class TestDisabled:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"metrics_enabled": False}

    async def test_no_metrics_route(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/metrics"), 404, "not_found")


PRODUCTION: dict[str, object] = {
    "environment": "production",
    "public_base_url": "https://sessions.example",
    "signing_keys": ["Xk7pQ2mZ9vL4tR8wN3bH6jD1fG5sC0yAu"],
    "service_api_keys": ["sV3nK8qW1zT6rY0pL5mB9xC2hJ7fD4gNe"],
    "admin_api_keys": ["aM6tP1wQ8rZ3kL0yN7vB2xC5hJ9fD4gSu"],
}


class TestProductionDefault:
    @pytest.fixture
    def settings_overrides(self, backend: str) -> dict[str, object]:
        if backend == "sqlite":
            pytest.skip("production refuses the SQLite database")
        return dict(PRODUCTION)

    async def test_production_requires_the_admin_key(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/metrics"), 401, "unauthorized")
        key = PRODUCTION["admin_api_keys"][0]  # type: ignore[index]
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200


class TestProductionExplicitlyPublic:
    @pytest.fixture
    def settings_overrides(self, backend: str) -> dict[str, object]:
        if backend == "sqlite":
            pytest.skip("production refuses the SQLite database")
        return {**PRODUCTION, "metrics_require_admin": False}

    async def test_an_explicit_setting_wins(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/metrics")).status_code == 200


class TestRequireAdminSetting:
    def test_unset_follows_the_environment(self) -> None:
        development = Settings()
        assert development.metrics_require_admin is None
        assert development.metrics_admin_only is False
        assert development.with_overrides(environment="production").metrics_admin_only is True

    @pytest.mark.parametrize("environment", ["development", "production"])
    @pytest.mark.parametrize("value", ["true", "false"])
    def test_the_environment_variable_wins(
        self, environment: str, value: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ENVIRONMENT", environment)
        monkeypatch.setenv("METRICS_REQUIRE_ADMIN", value)
        assert Settings().metrics_admin_only is (value == "true")
