"""Open the configured object store once per process (in the app's lifespan)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import structlog

from session_service.core.clock import Clock
from session_service.core.settings import Settings
from session_service.storage.base import ObjectStore, StorageUnavailable
from session_service.storage.local import LocalStore

log = structlog.get_logger(__name__)

START_CHECK_TIMEOUT: Final = 5.0
"""How long start-up waits for the bucket's first answer before going on without it."""


@asynccontextmanager
async def open_store(
    settings: Settings, *, clock: Clock, signing_keys: list[str]
) -> AsyncIterator[ObjectStore]:
    """The store for STORAGE_BACKEND, with one client for the process, closed on exit."""
    if settings.storage.backend == "s3":
        from session_service.storage.s3 import S3Store

        s3_settings = settings.storage.s3
        async with S3Store.connect(
            settings,
            clock=clock,
            connect_timeout=s3_settings.connect_timeout,
            read_timeout=s3_settings.read_timeout,
            max_attempts=s3_settings.max_attempts,
        ) as s3:
            await warn_unless_reachable(s3, bucket=s3_settings.bucket)
            yield s3
        return
    store = LocalStore(settings.storage.local_dir, keys=signing_keys, clock=clock)
    await asyncio.to_thread(store.prepare)
    yield store


async def warn_unless_reachable(store: ObjectStore, *, bucket: str) -> None:
    """Check the bucket once at start; a failure is one warning, never a failed start.

    The service still serves what needs no storage, and readiness and every storage call
    answer 503 naming the cause until the bucket answers.
    """
    try:
        await asyncio.wait_for(store.check(), START_CHECK_TIMEOUT)
    except (StorageUnavailable, TimeoutError) as error:
        reason = getattr(error, "reason", None) or "timeout"
        if reason == "NoSuchBucket":
            log.warning(
                "s3_bucket_missing",
                bucket=bucket,
                hint="create it (see the README's storage section); uploads answer 503 until then",
            )
        else:
            log.warning("s3_unavailable_at_start", bucket=bucket, reason=reason)
