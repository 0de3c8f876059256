"""Deleting objects once their rows are committed, leaving failures to orphan cleanup."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from session_service.files.names import object_ref
from session_service.storage.base import ObjectStore, StorageUnavailable

log = structlog.get_logger(__name__)


async def delete_or_leave(store: ObjectStore, keys: Sequence[str]) -> None:
    """Delete objects no row refers to any more; if storage fails, log and leave them.

    Only called after the commit that let go of them, so a failure loses nothing: the
    objects belong to no file, and orphan cleanup removes them.
    """
    try:
        await store.delete_many(keys)
    except StorageUnavailable as error:
        log.warning(
            "objects_left_for_cleanup",
            objects=[object_ref(key) for key in keys],
            reason=error.reason,
        )
