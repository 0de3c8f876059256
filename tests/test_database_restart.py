"""PostgreSQL restarting under load: only 503s with Retry-After, never a 500, then recovery.

A fast shutdown ends every session ("terminating connection due to administrator
command"), nothing listens for a moment, then the server answers "the database system is
starting up" until it accepts connections again. Each of those is "not now".
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from session_service import migrations
from session_service.app import create_app
from session_service.core.settings import Settings
from tests import pg_cluster
from tests.conftest import FakeClock
from tests.helpers import Running, running
from tests.processes import require

VISITORS = 8


@pytest.fixture(scope="module")
def cluster() -> Iterator[pg_cluster.Cluster]:
    require(pg_cluster.available(), "PostgreSQL's server binaries are not installed")
    with pg_cluster.restartable() as started:
        yield started


@pytest.fixture
async def instance(cluster: pg_cluster.Cluster, tmp_path: Path) -> AsyncIterator[Running]:
    url = await pg_cluster.create_database(cluster.url, f"svc_{tmp_path.name[-8:]}".lower())
    await asyncio.to_thread(migrations.upgrade, url)
    settings = Settings(
        database_url=url,
        database_pool_size=4,
        database_pool_timeout=1.0,
        local_storage_dir=tmp_path / "storage",
        signing_key_file=tmp_path / "signing.key",
        audit_seal_interval=0,
        rate_limit_enabled=False,
        cleanup_enabled=False,
        allowed_hosts=["testserver"],
    )
    async with running(create_app(settings, clock=FakeClock())) as app:
        yield app


async def _visitor(client: httpx.AsyncClient, until: float) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    while time.monotonic() < until:
        created = await client.post("/api/v1/sessions")
        answers.append(created)
        if created.status_code == 201:
            token = created.json()["token"]
            validated = await client.post(
                "/api/v1/session/validate", headers={"X-Session-ID": token}
            )
            answers.append(validated)
        answers.append(await client.get("/readyz"))
        await asyncio.sleep(0.01)
    return answers


async def test_a_restart_mid_load_is_503_then_recovers(
    cluster: pg_cluster.Cluster, instance: Running
) -> None:
    transport = httpx.ASGITransport(app=instance)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        until = time.monotonic() + 6
        load = [asyncio.create_task(_visitor(client, until)) for _ in range(VISITORS)]
        await asyncio.sleep(1.5)
        await asyncio.to_thread(cluster.restart, down_for=1.0)
        answers = [answer for visit in await asyncio.gather(*load) for answer in visit]
        await asyncio.to_thread(cluster.wait_ready)
        after = await client.post("/api/v1/sessions")
        metrics = (await client.get("/metrics")).text

    statuses = Counter(answer.status_code for answer in answers)
    print("answers by status:", dict(statuses))
    assert set(statuses) <= {200, 201, 503}, statuses
    assert statuses[503] > 0, statuses  # the restart was felt...
    assert statuses[201] > 0
    for answer in answers:
        if answer.status_code == 503 and answer.url.path == "/readyz":
            assert answer.json()["code"] == "not_ready", answer.text
        elif answer.status_code == 503:
            assert answer.json()["code"] == "database_unavailable", answer.text
            assert answer.headers["retry-after"] == "2"
    assert after.status_code == 201  # ...and is over once the database is back
    assert 'status="500"' not in metrics
