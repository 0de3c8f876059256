"""moto in server mode over real HTTP, so S3 tests exercise aiobotocore's own transport.

One server per test run; tests stay independent by each using a fresh bucket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import pytest
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer

from session_service.core.settings import Settings
from tests.processes import free_port as free_port  # re-exported: tests import it from here
from tests.processes import stop, wait_for_port

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The base URL of a moto S3 server running for the whole test session."""
    # werkzeug logs every request at INFO, even with verbose=False: thousands of lines of
    # noise in a failing test's captured log.
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        werkzeug.setLevel(level)


@contextmanager
def separate_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A moto server in a process of its own: (base URL, process), for tests that pause it
    or measure this process's memory. Only the process started here is ended, by its PID."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_for_port(port, server):
            raise RuntimeError("moto's server did not start")
        yield f"http://127.0.0.1:{port}", server
    finally:
        stop(server)


@contextmanager
def separate_process() -> Iterator[str]:
    """`separate_server`'s base URL."""
    with separate_server() as (endpoint, _):
        yield endpoint


def s3_settings(base: Settings, endpoint: str, bucket: str) -> Settings:
    """`base` switched to the S3 backend on the moto server, with dummy credentials."""
    return base.with_overrides(
        storage_backend="s3",
        s3_endpoint_url=endpoint,
        s3_bucket=bucket,
        s3_region=REGION,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
    )


@cache
def _session() -> Any:
    # One botocore session: it caches the loaded S3 service model (~50 ms per fresh load).
    return get_session()


@asynccontextmanager
async def s3_client(endpoint: str, service: str = "s3", **config: Any) -> AsyncIterator[Any]:
    """A raw aiobotocore client for arranging and checking state behind the store's back."""
    async with _session().create_client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        **config,
    ) as client:
        yield client


async def create_bucket(endpoint: str, bucket: str) -> None:
    """Create `bucket` on the moto server."""
    async with s3_client(endpoint) as client:
        await client.create_bucket(Bucket=bucket)


@pytest.fixture
def no_default_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing botocore's default chain could find: no variables, files or metadata service."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@dataclass(frozen=True)
class AuthServer:
    """A moto server that checks credentials: its endpoint and the keys it knows."""

    endpoint: str
    bucket: str
    allowed: tuple[str, str]
    """An IAM user's key pair whose policy allows everything on S3."""
    denied: tuple[str, str]
    """An IAM user's key pair with no policy: every S3 call is AccessDenied."""


ALLOW_ALL_S3 = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
)


async def _user(iam: Any, name: str, policy: str | None) -> tuple[str, str]:
    await iam.create_user(UserName=name)
    if policy is not None:
        await iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=policy)
    key = (await iam.create_access_key(UserName=name))["AccessKey"]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


@pytest.fixture(scope="module")
def moto_auth_server() -> Iterator[AuthServer]:
    """moto in a process of its own with authentication on: real `InvalidAccessKeyId`,
    `SignatureDoesNotMatch` and `AccessDenied` answers.

    By default moto accepts any key; turning checks on is process-wide state, so this
    server runs apart from the shared one.
    """

    async def arrange(endpoint: str) -> AuthServer:
        bucket = f"auth-{uuid.uuid4().hex[:20]}"
        await create_bucket(endpoint, bucket)
        async with s3_client(endpoint, "iam") as iam:
            allowed = await _user(iam, "uploader", ALLOW_ALL_S3)
            denied = await _user(iam, "nobody", None)
        async with httpx.AsyncClient() as http:
            # From now on every request must be signed by a known key.
            turned_on = await http.post(f"{endpoint}/moto-api/reset-auth", content=b"0")
            turned_on.raise_for_status()
        return AuthServer(endpoint, bucket, allowed, denied)

    with separate_process() as endpoint:
        yield asyncio.run(arrange(endpoint))
