"""Each way S3 fails answers 503 storage_unavailable naming its cause; nothing is recorded.

Against real servers: moto over HTTP (a missing bucket; no credentials at all), moto with
authentication on in a process of its own (unknown key, wrong secret, no permission), and a
loopback socket that accepts connections and never answers (timeouts).
"""

from __future__ import annotations

import io
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from session_service.app import create_app
from session_service.core.settings import Settings
from tests import moto_server
from tests.conftest import FakeClock, empty_tables, service_log_lines
from tests.files.helpers import file_rows, request_slot
from tests.helpers import Running, assert_problem, audit_events, create_session, holder, running
from tests.moto_server import AuthServer, s3_client

moto_auth_server = moto_server.moto_auth_server
no_default_credentials = moto_server.no_default_credentials


@pytest.fixture
def store_backend() -> str:
    return "s3"


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@asynccontextmanager
async def serving(settings: Settings, clock: FakeClock) -> AsyncIterator[tuple[Running, Any]]:
    """The app on `settings` (its lifespan run) and a client for it."""
    async with running(create_app(settings, clock=clock)) as app:
        engine = app.resources.engine
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield app, http
        finally:
            await empty_tables(engine)  # a failing test leaves nothing for the next one


async def assert_refused_and_unrecorded(
    app: Running, http: httpx.AsyncClient, reason: str, *, secret: str = "testing"
) -> None:
    """A slot answers 503 with nothing recorded, and readiness names `reason`, not `secret`."""
    session = await create_session(http)
    events = await audit_events(app)

    refused = await request_slot(http, session)

    body = assert_problem(refused, 503, "storage_unavailable")
    assert reason in body["detail"]
    assert await file_rows(app) == []
    assert await audit_events(app) == events
    ready = await http.get("/readyz")
    checks = assert_problem(ready, 503, "not_ready")["checks"]
    assert checks["storage"] == f"unavailable: {reason}"
    assert checks["database"] == "ok"
    assert secret not in refused.text + ready.text


class TestMissingBucket:
    async def test_slots_and_readiness_name_the_missing_bucket(
        self, settings: Settings, clock: FakeClock, json_log: io.StringIO
    ) -> None:
        missing = settings.with_overrides(s3_bucket="no-such-bucket-here")
        async with serving(missing, clock) as (app, http):
            await assert_refused_and_unrecorded(app, http, "NoSuchBucket")
        warnings = [
            line for line in service_log_lines(json_log) if line["event"] == "s3_bucket_missing"
        ]
        assert len(warnings) == 1
        assert warnings[0]["level"] == "warning"
        assert warnings[0]["bucket"] == "no-such-bucket-here"

    async def test_complete_says_the_bucket_is_gone_not_that_the_upload_is_missing(
        self, settings: Settings, clock: FakeClock, moto_endpoint: str
    ) -> None:
        async with serving(settings, clock) as (app, http):
            session = await create_session(http)
            pending = (await request_slot(http, session)).json()["file"]
            async with s3_client(moto_endpoint) as raw:
                await raw.delete_bucket(Bucket=settings.storage.s3.bucket)
            events = await audit_events(app)

            complete = await http.post(
                f"/api/v1/session/files/{pending['id']}/complete", headers=holder(session)
            )

            assert "NoSuchBucket" in assert_problem(complete, 503, "storage_unavailable")["detail"]
            assert [row["status"] for row in await file_rows(app)] == ["pending"]
            assert await audit_events(app) == events
            # ... and no new form is handed out until the bucket answers again.
            assert_problem(await request_slot(http, session), 503, "storage_unavailable")
            async with s3_client(moto_endpoint) as raw:
                await raw.create_bucket(Bucket=settings.storage.s3.bucket)
            assert (await request_slot(http, session)).status_code == 201


class TestCredentials:
    async def test_no_credentials_anywhere(
        self, settings: Settings, clock: FakeClock, no_default_credentials: None
    ) -> None:
        anonymous = settings.with_overrides(s3_access_key_id=None, s3_secret_access_key=None)
        async with serving(anonymous, clock) as (app, http):
            await assert_refused_and_unrecorded(app, http, "NoCredentialsError")

    @pytest.mark.parametrize(
        ("keys", "reason"),
        [
            (lambda server: ("AKIAUNKNOWNKEY000000", "x" * 40), "InvalidAccessKeyId"),
            (lambda server: (server.allowed[0], "not-the-secret"), "SignatureDoesNotMatch"),
            (lambda server: server.denied, "AccessDenied"),
        ],
        ids=["unknown-key", "wrong-secret", "no-permission"],
    )
    async def test_keys_s3_refuses(
        self,
        settings: Settings,
        clock: FakeClock,
        moto_auth_server: AuthServer,
        keys: Any,
        reason: str,
    ) -> None:
        key_id, secret = keys(moto_auth_server)
        async with serving(on(moto_auth_server, settings, key_id, secret), clock) as (app, http):
            await assert_refused_and_unrecorded(app, http, reason, secret=secret)

    async def test_keys_s3_accepts(
        self, settings: Settings, clock: FakeClock, moto_auth_server: AuthServer
    ) -> None:
        accepted = on(moto_auth_server, settings, *moto_auth_server.allowed)
        async with serving(accepted, clock) as (_, http):
            assert (await http.get("/readyz")).json()["checks"]["storage"] == "ok"
            session = await create_session(http)
            assert (await request_slot(http, session)).status_code == 201


def on(server: AuthServer, settings: Settings, key_id: str, secret: str) -> Settings:
    """`settings` pointed at the authenticating server's bucket, with these keys."""
    return settings.with_overrides(
        s3_endpoint_url=server.endpoint,
        s3_bucket=server.bucket,
        s3_access_key_id=key_id,
        s3_secret_access_key=secret,
    )


class TestTimeout:
    async def test_an_endpoint_that_never_answers(
        self, settings: Settings, clock: FakeClock, silent_endpoint: str, json_log: io.StringIO
    ) -> None:
        silent = settings.with_overrides(
            s3_endpoint_url=silent_endpoint,
            s3_read_timeout=0.5,
            s3_connect_timeout=0.5,
            s3_max_attempts=0,
        )
        async with serving(silent, clock) as (app, http):
            await assert_refused_and_unrecorded(app, http, "timeout")
        [warning] = [
            line
            for line in service_log_lines(json_log)
            if line["event"] == "s3_unavailable_at_start"
        ]
        assert warning["reason"] == "timeout"
