"""Redis down: every kind keeps being limited, per instance; readiness and logs say so."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from subprocess import Popen

import httpx
import pytest

from tests.conftest import service_log_lines
from tests.helpers import Running, holder
from tests.processes import free_port

CREATE = "/api/v1/sessions"
VALIDATE = "/api/v1/session/validate"


@pytest.fixture
def redis_port() -> int:
    return free_port()


@pytest.fixture
def settings_overrides(redis_port: int) -> dict[str, object]:
    return {
        "rate_limit_enabled": True,
        "rate_limit_storage_uri": f"redis://127.0.0.1:{redis_port}/0",
        "rate_limit_create": "3/minute",
        "rate_limit_validate": "3/minute",
        "rate_limit_storage_timeout": 0.2,
        "rate_limit_retry_interval": 0.05,
    }


async def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


class TestRedisUnreachable:
    async def test_limits_still_hold_per_instance(self, client: httpx.AsyncClient) -> None:
        for _ in range(3):
            assert (await client.post(CREATE)).status_code == 201
        response = await client.post(CREATE)
        assert response.status_code == 429
        assert response.headers["retry-after"]

    async def test_validate_keeps_answering_and_limiting(self, client: httpx.AsyncClient) -> None:
        session = (await client.post(CREATE)).json()
        headers = holder(session)
        answers = [await client.post(VALIDATE, headers=headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert all(a.json()["valid"] is True for a in answers[:3])

    async def test_readiness_stays_ready_and_reports_degraded(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["rate_limit"].startswith("degraded")
        metrics = (await client.get("/metrics")).text
        assert "session_service_rate_limit_shared_storage_up 0.0" in metrics

    async def test_logged_once_at_start(self, json_log: io.StringIO, app: Running) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            for _ in range(5):
                await http.post(CREATE)
        down = [
            line
            for line in service_log_lines(json_log)
            if line["event"] == "rate_limit_storage_down"
        ]
        assert len(down) == 1
        assert down[0]["level"] == "warning"


class TestRecovery:
    async def test_counts_move_to_redis_once_it_answers(
        self,
        client: httpx.AsyncClient,
        app: Running,
        redis_port: int,
        redis_server: Callable[[int], Popen[bytes]],
    ) -> None:
        limiter = app.resources.limiter
        assert limiter is not None
        assert (await client.post(CREATE)).status_code == 201  # counted locally
        assert limiter.shared_down_since is not None

        redis_server(redis_port)
        await wait_for(lambda: limiter.shared_down_since is None)
        assert (await client.get("/readyz")).json()["checks"]["rate_limit"] == "ok: redis"
        # Redis starts from zero: three more are allowed, then refused.
        for _ in range(3):
            assert (await client.post(CREATE)).status_code == 201
        assert (await client.post(CREATE)).status_code == 429

    async def test_redis_dying_mid_run_falls_back_without_failing_requests(
        self,
        client: httpx.AsyncClient,
        app: Running,
        redis_port: int,
        redis_server: Callable[[int], Popen[bytes]],
    ) -> None:
        server = redis_server(redis_port)
        limiter = app.resources.limiter
        assert limiter is not None
        await wait_for(lambda: limiter.shared_down_since is None)
        assert (await client.post(CREATE)).status_code == 201

        server.kill()
        server.wait()
        statuses = [(await client.post(CREATE)).status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429]  # local counts from zero
        assert limiter.shared_down_since is not None
