"""Open the configured object store once per process (in the app's lifespan)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from session_service.core.clock import Clock
from session_service.core.settings import Settings
from session_service.storage.base import ObjectStore
from session_service.storage.local import LocalStore


@asynccontextmanager
async def open_store(
    settings: Settings, *, clock: Clock, signing_keys: list[str]
) -> AsyncIterator[ObjectStore]:
    """The store for STORAGE_BACKEND, with one client for the process, closed on exit."""
    if settings.storage.backend == "s3":
        from session_service.storage.s3 import S3Store

        async with S3Store.connect(
            settings,
            clock=clock,
            connect_timeout=settings.storage.s3.connect_timeout,
            max_attempts=settings.storage.s3.max_attempts,
        ) as s3:
            yield s3
        return
    store = LocalStore(settings.storage.local_dir, keys=signing_keys, clock=clock)
    await asyncio.to_thread(store.prepare)
    yield store
