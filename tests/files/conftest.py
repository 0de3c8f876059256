"""Upload fixtures: the same behavioural suite runs on each storage backend.

`s3` runs against moto in server mode over real HTTP, a fresh bucket per test.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from session_service.core.settings import Settings
from tests import moto_server

moto_endpoint = moto_server.moto_endpoint


@pytest.fixture(params=["local", "s3"])
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(settings: Settings, store_backend: str, request: pytest.FixtureRequest) -> Settings:
    """The base settings, pointed at the backend under test."""
    if store_backend == "local":
        return settings
    endpoint: str = request.getfixturevalue("moto_endpoint")
    bucket = f"test-{uuid.uuid4().hex[:24]}"
    asyncio.run(moto_server.create_bucket(endpoint, bucket))
    return moto_server.s3_settings(settings, endpoint, bucket)
