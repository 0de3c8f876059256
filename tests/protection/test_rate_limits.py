"""Rate limits per client IP and kind of call, in memory and in a real Redis."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest
from pydantic import ValidationError

from session_service.core.settings import Settings
from tests.conftest import FakeClock
from tests.files.helpers import PDF
from tests.helpers import Running, assert_problem, audit_events, create_session
from tests.protection.conftest import ClientFactory, running_app

CREATE = "/api/v1/sessions"
VALIDATE = "/api/v1/session/validate"
RESET = "/api/v1/session/reset"
UPLOADS = "/api/v1/session/uploads"


def assert_limited(response: httpx.Response, *, limit: int, kind: str) -> dict[str, object]:
    body = assert_problem(response, 429, "rate_limited")
    assert body["kind"] == kind
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert body["retry_after"] == retry_after
    assert response.headers["x-ratelimit-limit"] == str(limit)
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert int(response.headers["x-ratelimit-reset"]) >= int(time.time())
    return body


class TestEachKind:
    async def test_create_holds_exactly_at_its_limit(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        for _ in range(3):
            assert (await client.post(CREATE)).status_code == 201
        assert_limited(await client.post(CREATE), limit=3, kind="create")
        sessions = [e for e in await audit_events(app) if e["type"] == "session.created"]
        assert len(sessions) == 3

    async def test_validate(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        headers = {"X-Session-ID": session["id"]}
        for _ in range(4):
            assert (await client.post(VALIDATE, headers=headers)).json()["valid"] is True
        assert_limited(await client.post(VALIDATE, headers=headers), limit=4, kind="validate")

    async def test_reset(self, client: httpx.AsyncClient) -> None:
        for _ in range(2):
            response = await client.post(RESET, json={"reason": "missing"})
            assert response.status_code == 201
        assert_limited(await client.post(RESET, json={"reason": "missing"}), limit=2, kind="reset")

    async def test_upload_slots(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        headers = {"X-Session-ID": session["id"]}
        slot = {"name": "a.pdf", "content_type": "application/pdf", "size": len(PDF)}
        for _ in range(2):
            assert (await client.post(UPLOADS, json=slot, headers=headers)).status_code == 201
        response = await client.post(UPLOADS, json=slot, headers=headers)
        assert_limited(response, limit=2, kind="upload")

    async def test_kinds_have_separate_budgets(self, client: httpx.AsyncClient) -> None:
        sessions = [await create_session(client) for _ in range(3)]
        assert (await client.post(CREATE)).status_code == 429
        # Creation is spent; validation and reset are not.
        validation = await client.post(VALIDATE, headers={"X-Session-ID": sessions[0]["id"]})
        assert validation.json()["valid"] is True
        assert (await client.post(RESET, json={"reason": "missing"})).status_code == 201

    async def test_invalid_input_counts_too(self, client: httpx.AsyncClient) -> None:
        for _ in range(3):
            assert (await client.post(CREATE, json={"id": "nope"})).status_code == 422
        assert (await client.post(CREATE)).status_code == 429


class TestPerClientAddress:
    async def test_each_address_has_its_own_budget(self, client_from: ClientFactory) -> None:
        async with client_from("198.51.100.1") as first, client_from("198.51.100.2") as second:
            for _ in range(3):
                assert (await first.post(CREATE)).status_code == 201
            assert (await first.post(CREATE)).status_code == 429
            assert (await second.post(CREATE)).status_code == 201

    async def test_concurrent_burst_lets_exactly_the_limit_through(
        self, client: httpx.AsyncClient
    ) -> None:
        statuses = await asyncio.gather(*(client.post(CREATE) for _ in range(20)))
        codes = sorted(response.status_code for response in statuses)
        assert codes == [201] * 3 + [429] * 17


class TestRejections:
    async def test_each_rejection_is_audited_with_address_and_kind(
        self, client_from: ClientFactory, app: Running
    ) -> None:
        async with client_from("203.0.113.9") as http:
            for _ in range(3):
                await http.post(CREATE)
            refused = [await http.post(CREATE) for _ in range(2)]
        events = [e for e in await audit_events(app) if e["type"] == "request.rate_limited"]
        assert len(events) == 2
        for event, response in zip(events, refused, strict=True):
            assert event["outcome"] == "failure"
            assert event["client_ip"] == "203.0.113.9"
            assert event["request_id"] == response.headers["x-request-id"]
            assert event["details"]["kind"] == "create"
            assert event["details"]["limit"] == "3 per 1 minute"

    async def test_rejection_names_the_session_it_was_for(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        headers = {"X-Session-ID": session["id"]}
        for _ in range(5):
            await client.post(VALIDATE, headers=headers)
        events = [e for e in await audit_events(app) if e["type"] == "request.rate_limited"]
        assert [e["session_id"] for e in events] == [session["id"]]

    async def test_rejections_are_counted_in_metrics(self, client: httpx.AsyncClient) -> None:
        for _ in range(5):
            await client.post(CREATE)
        metrics = (await client.get("/metrics")).text
        assert 'session_service_rate_limit_rejections_total{kind="create"} 2.0' in metrics


@pytest.mark.parametrize("limit_storage", ["redis"], indirect=True)
class TestSharedByInstances:
    async def test_two_instances_share_one_count(
        self, app: Running, settings: Settings, clock: FakeClock
    ) -> None:
        async with running_app(settings, clock) as other:
            first = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a")
            second = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=other), base_url="http://b"
            )
            async with first, second:
                assert (await first.post(CREATE)).status_code == 201
                assert (await second.post(CREATE)).status_code == 201
                assert (await first.post(CREATE)).status_code == 201
                assert_limited(await second.post(CREATE), limit=3, kind="create")
                assert (await first.post(CREATE)).status_code == 429


class TestSettings:
    def test_defaults_are_the_specified_budgets(self) -> None:
        defaults = Settings()
        assert defaults.rate_limit_create == "10/minute"
        assert defaults.rate_limit_reset == "10/minute"
        assert defaults.rate_limit_validate == "120/minute"
        assert defaults.rate_limit_upload == "5/minute"
        assert defaults.rate_limit_storage_uri == "memory://"
        assert defaults.rate_limit_enabled is True

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("rate_limit_create", "ten a minute"),
            ("rate_limit_validate", ""),
            ("rate_limit_storage_uri", "memcached://127.0.0.1:11211"),
        ],
    )
    def test_bad_values_are_refused_at_start(self, field: str, value: str) -> None:
        with pytest.raises(ValidationError, match=field):
            Settings(**{field: value})  # type: ignore[arg-type]

    def test_durations_accept_seconds(self) -> None:
        assert Settings(rate_limit_retry_interval="2").rate_limit_retry_interval == timedelta(
            seconds=2
        )
