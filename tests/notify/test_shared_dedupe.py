"""Alerts: one message per distinct error per window across instances, each naming its sender.

Two notifiers stand for two instances; they agree through a real Redis (and through a
real Sentinel in front of one), and send when Redis cannot answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from session_service.core.settings import Settings
from session_service.notify.alert import Alert
from session_service.notify.claims import RedisClaims
from session_service.notify.notifier import AlertNotifier
from session_service.notify.webhook import WebhookChannel
from tests.conftest import FakeClock
from tests.notify.conftest import WebhookReceiver
from tests.processes import free_port, install_hint, stop, wait_for_port
from tests.protection.conftest import (  # noqa: F401  (fixtures)
    redis_server,
    redis_url,
    running_app,
)

WINDOW = timedelta(minutes=5)


def _instance(
    receiver: WebhookReceiver, clock: FakeClock, name: str, claims: RedisClaims | None
) -> AlertNotifier:
    return AlertNotifier(
        [WebhookChannel(receiver.url, secret=None, timeout=5)],
        window=WINDOW,
        clock=clock,
        instance=name,
        claims=claims,
    )


def _alert(clock: FakeClock, key: str = "RuntimeError:/api/v1/sessions") -> Alert:
    return Alert(key=key, summary="boom", occurred_at=clock.now, source="request")


async def _both_notify(
    receiver: WebhookReceiver, clock: FakeClock, uri: str, key: str
) -> list[dict[str, object]]:
    instances = [
        _instance(receiver, clock, name, RedisClaims(uri, timeout=1))
        for name in ("a:8000", "b:8000")
    ]
    for notifier in instances:
        notifier.start()
    for notifier in instances:
        assert notifier.notify(_alert(clock, key))  # each is due in its own process
    for notifier in instances:
        await notifier.drain()
        await notifier.aclose()
    return [json.loads(request.body) for request in receiver.requests]


async def test_one_message_for_the_whole_deployment(
    webhook_server: WebhookReceiver,
    clock: FakeClock,
    redis_url: str,  # noqa: F811
) -> None:
    sent = await _both_notify(webhook_server, clock, redis_url, f"key-{time.time_ns()}")
    assert len(sent) == 1
    assert sent[0]["instance"] in ("a:8000", "b:8000")


async def test_without_redis_every_instance_sends(
    webhook_server: WebhookReceiver, clock: FakeClock
) -> None:
    """A duplicate beats a lost alert."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    sent = await _both_notify(webhook_server, clock, closed, "key")
    assert sorted(str(message["instance"]) for message in sent) == ["a:8000", "b:8000"]


def test_the_instance_defaults_to_host_and_port() -> None:
    assert Settings(port=8123).instance.endswith(":8123")
    assert Settings(instance_name="eu-1").instance == "eu-1"


@pytest.fixture
def sentinel_uri(redis_server: Callable[[int], subprocess.Popen[bytes]]) -> Iterator[str]:  # noqa: F811
    """A real redis-sentinel watching a throwaway redis-server: its URI."""
    binary = shutil.which("redis-sentinel")
    if binary is None:
        message = f"redis-sentinel is not installed: {install_hint('redis-sentinel')}"
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    master = free_port()
    redis_server(master)
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="sentinel-"))
    config = directory / "sentinel.conf"
    config.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor main 127.0.0.1 {master} 1\n")
    process = subprocess.Popen(
        [binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        assert wait_for_port(port, process, timeout=10), "redis-sentinel did not start"
        yield f"redis+sentinel://127.0.0.1:{port}/main"
    finally:
        stop(process)
        shutil.rmtree(directory, ignore_errors=True)


async def test_through_sentinel(
    webhook_server: WebhookReceiver, clock: FakeClock, sentinel_uri: str
) -> None:
    sent = await _both_notify(webhook_server, clock, sentinel_uri, "key")
    assert len(sent) == 1
    assert Settings(rate_limit_storage_uri=sentinel_uri).rate_limits.storage_uri == sentinel_uri


def test_a_sentinel_uri_without_its_service_is_refused() -> None:
    with pytest.raises(ValueError, match="names its service"):
        Settings(rate_limit_storage_uri="redis+sentinel://127.0.0.1:26379")


async def test_rate_limits_count_through_sentinel(
    settings: Settings, clock: FakeClock, sentinel_uri: str
) -> None:
    """Two instances draw on one budget, in the master Sentinel points at."""
    shared = settings.with_overrides(
        rate_limit_enabled=True, rate_limit_storage_uri=sentinel_uri, rate_limit_create="3/minute"
    )
    statuses = []
    async with running_app(shared, clock) as one, running_app(shared, clock) as other:
        for app in (one, other, one, other):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                statuses.append((await c.post("/api/v1/sessions")).status_code)
        assert one.resources.limiter is not None
        assert one.resources.limiter.status == "ok: redis"
    assert statuses == [201, 201, 201, 429]
