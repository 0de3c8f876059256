"""Two real `session-service serve` processes sharing PostgreSQL, S3 (moto) and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from session_service.core.locks import LockKey
from tests import moto_server
from tests.conftest import PostgresFactory
from tests.files.helpers import PDF
from tests.moto_server import moto_endpoint  # noqa: F401  (fixture)
from tests.processes import free_port
from tests.protection.conftest import REDIS_URL, REQUIRE_REDIS

ADMIN = {"Authorization": "Bearer " + "a" * 40}
SERVICE_KEY = "s" * 40


def redis_available() -> None:
    """The shared Redis, emptied; a skip without it (a failure in CI)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.flushdb()
    except redis.ConnectionError:
        if REQUIRE_REDIS:
            pytest.fail("Redis is not reachable on 127.0.0.1:6379 and REQUIRE_REDIS=1")
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    finally:
        client.close()


def _start(env: dict[str, str], home: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (home / f"{name}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "session_service", "serve"],
        env={**os.environ, "SHUTDOWN_DRAIN_SECONDS": "0", **env, "PORT": str(port)},
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 45
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"an instance did not start:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def instances(
    postgres: PostgresFactory,
    moto_endpoint: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str, str]]:
    """Two instances on one PostgreSQL database, one bucket and one Redis; their DSN too."""
    redis_available()
    database = postgres.create()
    bucket = f"multi-{uuid.uuid4().hex[:20]}"
    asyncio.run(moto_server.create_bucket(moto_endpoint, bucket))
    home = tmp_path_factory.mktemp("instances")
    env = {
        "DATABASE_URL": database,
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT_URL": moto_endpoint,
        "S3_BUCKET": bucket,
        "S3_REGION": moto_server.REGION,
        "S3_ACCESS_KEY_ID": moto_server.ACCESS_KEY,
        "S3_SECRET_ACCESS_KEY": moto_server.SECRET_KEY,
        "RATE_LIMIT_STORAGE_URI": REDIS_URL,
        "RATE_LIMIT_CREATE": "4/minute",
        "SIGNING_KEYS": json.dumps(["k" * 40]),
        "ADMIN_API_KEYS": json.dumps(["a" * 40]),
        "SERVICE_API_KEYS": json.dumps([SERVICE_KEY]),
        "CLEANUP_ENABLED": "false",
        "LOG_FORMAT": "json",
    }
    started = [_start(env, home, name) for name in ("a", "b")]
    try:
        for (process, base), name in zip(started, ("a", "b"), strict=True):
            _wait_ready(process, base, home / f"{name}.log")
        yield started[0][1], started[1][1], database.replace("+asyncpg", "")
    finally:
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
        for process, _ in started:
            process.wait(timeout=20)


def test_a_session_created_on_one_validates_and_resets_on_the_other(
    instances: tuple[str, str, str],
) -> None:
    a, b, _ = instances
    session = httpx.post(f"{a}/api/v1/sessions").json()
    headers = {"X-Session-ID": session["token"]}
    assert httpx.post(f"{b}/api/v1/session/validate", headers=headers).json()["valid"] is True
    reset = httpx.post(f"{b}/api/v1/session/reset", json={"reason": "tampered"}, headers=headers)
    assert reset.status_code == 201
    assert httpx.post(f"{a}/api/v1/session/validate", headers=headers).json()["reason"] == "reset"
    new = {"X-Session-ID": reset.json()["session"]["token"]}
    assert httpx.post(f"{a}/api/v1/session/validate", headers=new).json()["valid"] is True


def test_an_upload_slot_from_one_completes_on_the_other(instances: tuple[str, str, str]) -> None:
    a, b, _ = instances
    session = httpx.post(f"{a}/api/v1/sessions").json()
    headers = {"X-Session-ID": session["token"]}
    slot = httpx.post(
        f"{a}/api/v1/session/uploads",
        json={"name": "r.pdf", "content_type": "application/pdf", "size": len(PDF)},
        headers=headers,
    ).json()
    posted = httpx.post(
        slot["upload"]["url"],
        data=slot["upload"]["fields"],
        files={"file": ("r.pdf", PDF, "application/pdf")},
    )
    assert posted.status_code in (200, 201, 204), posted.text
    done = httpx.post(f"{b}/api/v1/session/files/{slot['file']['id']}/complete", headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "uploaded"


def test_rate_limits_are_shared(instances: tuple[str, str, str]) -> None:
    a, b, _ = instances
    redis.Redis.from_url(REDIS_URL).flushdb()
    statuses = [httpx.post(f"{url}/api/v1/sessions").status_code for url in (a, b, a, b, a, b)]
    assert statuses == [201, 201, 201, 201, 429, 429]


def test_cleanup_runs_on_one_instance_at_a_time(instances: tuple[str, str, str]) -> None:
    a, b, dsn = instances

    async def while_held() -> list[int]:
        # Whoever holds the lock (here: the test, as a third instance would), the others skip.
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", int(LockKey.CLEANUP))
            async with httpx.AsyncClient() as http:
                answers = await asyncio.gather(
                    *(http.post(f"{url}/api/v1/admin/cleanup", headers=ADMIN) for url in (a, b))
                )
            await conn.execute("SELECT pg_advisory_unlock($1)", int(LockKey.CLEANUP))
        finally:
            await conn.close()
        return [answer.status_code for answer in answers]

    assert asyncio.run(while_held()) == [409, 409]
    assert httpx.post(f"{b}/api/v1/admin/cleanup?wait=true", headers=ADMIN).status_code == 200


def test_sealing_waits_for_the_instance_that_holds_the_lock(
    instances: tuple[str, str, str],
) -> None:
    a, b, dsn = instances

    async def sealed_through(conn: asyncpg.Connection) -> int:
        return int(await conn.fetchval("SELECT coalesce(max(last_event_id), 0) FROM audit_batches"))

    redis.Redis.from_url(REDIS_URL).flushdb()  # creations are rate limited across instances

    async def run() -> tuple[int, int, int]:
        conn = await asyncpg.connect(dsn)
        holder = await asyncpg.connect(dsn)
        http = httpx.AsyncClient()
        try:
            await holder.execute("BEGIN")
            await holder.execute("SELECT pg_advisory_xact_lock($1)", int(LockKey.AUDIT_CHAIN))
            session = (await http.post(f"{a}/api/v1/sessions")).json()
            event = int(
                await conn.fetchval(
                    "SELECT max(id) FROM audit_events WHERE session_id = $1",
                    uuid.UUID(session["id"]),
                )
            )
            # Past AUDIT_SEAL_MIN_AGE (5 s), with commits waking both instances' sealers.
            for _ in range(14):
                await asyncio.sleep(0.5)
                await http.post(f"{b}/api/v1/session/validate", headers={"X-Session-ID": "x"})
            while_held = await sealed_through(conn)
            await holder.execute("COMMIT")
            for _ in range(60):  # up to 30 s
                after = await sealed_through(conn)
                if after >= event:
                    break
                await asyncio.sleep(0.5)
            return event, while_held, after
        finally:
            await http.aclose()
            await holder.close()
            await conn.close()

    event, while_held, after = asyncio.run(run())
    assert while_held < event  # nobody sealed while another holder had the lock
    assert after >= event  # then one of the instances did
