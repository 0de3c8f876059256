"""Rate limits per client IP and kind of call, in memory and in a real Redis."""

from __future__ import annotations

import asyncio
import io
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from subprocess import Popen

import httpx
import pytest
from pydantic import ValidationError

from session_service.core.settings import Settings, setting_name
from tests.conftest import FakeClock, service_log_lines
from tests.files.helpers import PDF
from tests.helpers import Running, assert_problem, audit_events, create_session, holder
from tests.protection.conftest import ClientFactory, free_port, running_app

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
        headers = holder(session)
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
        headers = holder(session)
        slot = {"name": "a.pdf", "content_type": "application/pdf", "size": len(PDF)}
        for _ in range(2):
            assert (await client.post(UPLOADS, json=slot, headers=headers)).status_code == 201
        response = await client.post(UPLOADS, json=slot, headers=headers)
        assert_limited(response, limit=2, kind="upload")

    async def test_kinds_have_separate_budgets(self, client: httpx.AsyncClient) -> None:
        sessions = [await create_session(client) for _ in range(3)]
        assert (await client.post(CREATE)).status_code == 429
        # Creation is spent; validation and reset are not.
        validation = await client.post(VALIDATE, headers=holder(sessions[0]))
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
        self, app: Running, settings: Settings, clock: FakeClock
    ) -> None:
        # Exactness only: on a loaded machine a Redis call can outlast the default 0.25 s
        # storage timeout, and the fallback to fresh in-process windows (tested on its own in
        # TestSlowRedisFallback) would let extra calls through. `app` empties the tables.
        patient = settings.with_overrides(rate_limit_storage_timeout=5.0)
        async with running_app(patient, clock) as instance:
            transport = httpx.ASGITransport(app=instance)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                statuses = await asyncio.gather(*(client.post(CREATE) for _ in range(20)))
            limiter = instance.resources.limiter
            assert limiter is not None
            assert limiter.shared_down_since is None  # every call was counted in one place
        codes = sorted(response.status_code for response in statuses)
        assert codes == [201] * 3 + [429] * 17


# The base settings count in memory; the test points its own instance at a throwaway Redis.
@pytest.mark.parametrize("limit_storage", ["memory"], indirect=True)
class TestSlowRedisFallback:
    async def test_calls_outlasting_the_timeout_fall_back_to_exact_local_counts(
        self,
        app: Running,
        settings: Settings,
        clock: FakeClock,
        json_log: io.StringIO,
        redis_server: Callable[[int], Popen[bytes]],
    ) -> None:
        port = free_port()
        server = redis_server(port)
        slow = settings.with_overrides(
            rate_limit_storage_uri=f"redis://127.0.0.1:{port}/0",
            rate_limit_storage_timeout=0.2,
            rate_limit_retry_interval=timedelta(minutes=10),  # no recovery meanwhile
        )
        async with running_app(slow, clock) as instance:
            limiter = instance.resources.limiter
            assert limiter is not None
            transport = httpx.ASGITransport(app=instance)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.post(CREATE)).status_code == 201  # counted in Redis
                assert limiter.status == "ok: redis"
                # Paused, Redis still accepts connections but answers nothing: every call
                # outlasts the storage timeout, as a Redis call can on a loaded machine.
                server.send_signal(signal.SIGSTOP)
                try:
                    burst = await asyncio.gather(*(client.post(CREATE) for _ in range(20)))
                    ready = await client.get("/readyz")
                    metrics = (await client.get("/metrics")).text
                finally:
                    server.send_signal(signal.SIGCONT)
        # Each process counts from zero, exactly: the limit through, the rest refused.
        assert sorted(r.status_code for r in burst) == [201] * 3 + [429] * 17
        refused = next(r for r in burst if r.status_code == 429)
        assert_limited(refused, limit=3, kind="create")
        assert ready.status_code == 200
        assert ready.json()["checks"]["rate_limit"].startswith("degraded")
        assert "session_service_rate_limit_shared_storage_up 0.0" in metrics
        down = [
            line
            for line in service_log_lines(json_log)
            if line["event"] == "rate_limit_storage_down"
        ]
        assert [line["error"] for line in down] == ["TimeoutError"]

    async def test_one_slow_call_is_not_an_outage(
        self,
        app: Running,
        settings: Settings,
        clock: FakeClock,
        redis_server: Callable[[int], Popen[bytes]],
    ) -> None:
        """A call outlasting the timeout (a loaded event loop, a busy Redis) is counted in
        memory, but Redis stays the counter until slow calls keep coming."""
        port = free_port()
        server = redis_server(port)
        slow = settings.with_overrides(
            rate_limit_storage_uri=f"redis://127.0.0.1:{port}/0",
            rate_limit_storage_timeout=0.2,
            rate_limit_fallback_after_timeouts=3,
            rate_limit_retry_interval=timedelta(minutes=10),
        )
        async with running_app(slow, clock) as instance:
            limiter = instance.resources.limiter
            assert limiter is not None
            transport = httpx.ASGITransport(app=instance)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for pauses in (1, 2):
                    server.send_signal(signal.SIGSTOP)
                    try:
                        for _ in range(pauses):
                            assert (await client.post(CREATE)).status_code == 201
                    finally:
                        server.send_signal(signal.SIGCONT)
                    assert limiter.status == "ok: redis"
                    assert (await client.post(CREATE)).status_code in (201, 429)
                    assert limiter.status == "ok: redis"  # a success in between starts over
                server.send_signal(signal.SIGSTOP)
                try:
                    for _ in range(3):
                        await client.post(CREATE)
                finally:
                    server.send_signal(signal.SIGCONT)
                assert limiter.status.startswith("degraded")


class TestRejections:
    async def test_the_first_rejection_is_audited_at_once_the_rest_summarised(
        self, client_from: ClientFactory, app: Running, clock: FakeClock
    ) -> None:
        async with client_from("203.0.113.9") as http:
            for _ in range(3):
                await http.post(CREATE)
            refused = [await http.post(CREATE) for _ in range(3)]
        [event] = [e for e in await audit_events(app) if e["type"] == "request.rate_limited"]
        assert event["outcome"] == "failure"
        assert event["client_ip"] == "203.0.113.0/24"  # the network (AUDIT_CLIENT_DETAIL)
        assert event["request_id"] == refused[0].headers["x-request-id"]
        assert event["details"]["kind"] == "create"
        assert event["details"]["limit"] == "3 per 1 minute"
        clock.advance(timedelta(minutes=1))
        assert await app.resources.refusals.flush() == 1
        [summary] = [e for e in await audit_events(app) if e["type"] == "request.rejected_summary"]
        assert summary["client_ip"] == "203.0.113.0/24"
        assert summary["details"]["event"] == "request.rate_limited"
        assert summary["details"]["code"] == "create"
        assert summary["details"]["count"] == 2

    async def test_a_refusal_names_no_session_from_an_unchecked_header(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        """Refused before any token is checked: a header alone writes into no one's trail."""
        session = await create_session(client)
        headers = holder(session)
        for _ in range(5):
            await client.post(VALIDATE, headers=headers)
        events = [e for e in await audit_events(app) if e["type"] == "request.rate_limited"]
        assert [e["session_id"] for e in events] == [None]

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
        assert defaults.rate_limits.create == "10/minute"
        assert defaults.rate_limits.reset == "10/minute"
        assert defaults.rate_limits.validation == "120/minute"
        assert defaults.rate_limits.upload == "5/minute"
        assert defaults.rate_limits.holder == "300/minute"
        assert defaults.rate_limits.ipv6_prefix == 64
        assert defaults.audit_refusal_keys == 1000
        assert defaults.rate_limits.storage_uri == "memory://"
        assert defaults.rate_limits.enabled is True

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("rate_limit_create", "ten a minute"),
            ("rate_limit_validate", ""),
            ("rate_limit_holder", "lots"),
            ("rate_limit_ipv6_prefix", "129"),
            ("audit_refusal_keys", "0"),
            ("rate_limit_storage_uri", "memcached://127.0.0.1:11211"),
        ],
    )
    def test_bad_values_are_refused_at_start(self, field: str, value: str) -> None:
        with pytest.raises(ValidationError) as refused:
            Settings(**{field: value})  # type: ignore[arg-type]
        # The error names the flat setting, as `serve` reports it.
        assert [setting_name(error["loc"]) for error in refused.value.errors()] == [field.upper()]

    def test_durations_accept_seconds(self) -> None:
        interval = Settings(rate_limit_retry_interval="2").rate_limits.retry_interval
        assert interval == timedelta(seconds=2)
