"""Out of connection slots: every request is answered 503 with Retry-After, never a 500.

A throwaway PostgreSQL cluster with `max_connections=12` serves three instances whose
pools hold ten connections each, so connects are refused (`too many clients already`)
while requests arrive from every side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
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


@pytest.fixture(scope="module")
def small_cluster() -> Iterator[str]:
    require(pg_cluster.available(), "PostgreSQL's server binaries are not installed")
    with pg_cluster.cluster(max_connections=12, superuser_reserved_connections=0) as url:
        yield url


@pytest.fixture
async def instances(small_cluster: str, tmp_path: Path) -> AsyncIterator[list[httpx.AsyncClient]]:
    url = await pg_cluster.create_database(small_cluster, f"svc_{tmp_path.name[-8:]}".lower())
    await asyncio.to_thread(migrations.upgrade, url)
    async with AsyncExitStack() as stack:
        clients = []
        for n in range(3):
            settings = Settings(
                database_url=url,
                database_pool_size=10,
                local_storage_dir=tmp_path / f"storage{n}",
                signing_key_file=tmp_path / "signing.key",
                audit_seal_interval=0,
                rate_limit_enabled=False,
                cleanup_enabled=False,
                allowed_hosts=["testserver"],
            )
            app: Running = await stack.enter_async_context(
                running(create_app(settings, clock=FakeClock()))
            )
            transport = httpx.ASGITransport(app=app)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://testserver")
                )
            )
        yield clients


async def _visit(client: httpx.AsyncClient) -> list[httpx.Response]:
    answers = [await client.post("/api/v1/sessions")]
    if answers[0].status_code == 201:
        token = answers[0].json()["token"]
        for _ in range(3):
            answers.append(
                await client.post("/api/v1/session/validate", headers={"X-Session-ID": token})
            )
    answers.append(await client.get("/readyz"))
    return answers


async def test_full_slots_answer_503_with_retry_after(
    instances: list[httpx.AsyncClient],
) -> None:
    visits = await asyncio.gather(*(_visit(instances[n % 3]) for n in range(90)))
    answers = [answer for visit in visits for answer in visit]
    statuses = {answer.status_code for answer in answers}
    assert statuses <= {200, 201, 503}, sorted(
        {(a.status_code, a.text[:120]) for a in answers if a.status_code >= 500}
    )
    refused = [answer for answer in answers if answer.status_code == 503]
    assert refused, "the slots never ran out: the test proves nothing"
    for answer in refused:
        code = answer.json()["code"]
        assert code in ("database_unavailable", "not_ready"), answer.text
        if code == "database_unavailable":
            assert int(answer.headers["Retry-After"]) >= 1
