"""Fixtures for the protection layers: a real Redis, apps with limits on, clients by address."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
import redis

from session_service.app import create_app
from session_service.core.settings import Settings
from tests.conftest import ClientFactory, FakeClock
from tests.helpers import Running, running
from tests.notify.conftest import smtp_server, webhook_server  # noqa: F401  (fixtures)
from tests.processes import free_port

# REQUIRE_REDIS=1 (set by CI) turns "Redis unreachable" from a skip into a failure.
REQUIRE_REDIS = os.environ.get("REQUIRE_REDIS") == "1"
# A database of its own, flushed before each test that uses it.
REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def redis_url() -> str:
    """The real Redis on 127.0.0.1:6379, database 13, emptied."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.flushdb()
    except redis.ConnectionError:
        if REQUIRE_REDIS:
            pytest.fail("Redis is not reachable on 127.0.0.1:6379 and REQUIRE_REDIS=1")
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(params=["memory", "redis"])
def limit_storage(request: pytest.FixtureRequest) -> str:
    """Rate limits counted in process memory and in Redis."""
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def limits_on(limit_storage: str) -> dict[str, object]:
    return {
        "rate_limit_enabled": True,
        "rate_limit_storage_uri": limit_storage,
        "rate_limit_create": "3/minute",
        "rate_limit_reset": "2/minute",
        "rate_limit_validate": "4/minute",
        "rate_limit_upload": "2/minute",
    }


@pytest.fixture
def settings_overrides(limits_on: dict[str, object]) -> dict[str, object]:
    return dict(limits_on)


@asynccontextmanager
async def running_app(settings: Settings, clock: FakeClock) -> AsyncIterator[Running]:
    """A second app instance (its own process state) on the same database and Redis."""
    application = create_app(settings, clock=clock)
    async with running(application) as started:
        yield started


@pytest.fixture
def redis_server() -> Iterator[Callable[[int], subprocess.Popen[bytes]]]:
    """Starts throwaway redis-server processes on given ports; stops them afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    started: list[subprocess.Popen[bytes]] = []

    def start(port: int) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        deadline = time.monotonic() + 10
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        client.close()
        return process

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


__all__ = ["ClientFactory", "free_port", "running_app"]
