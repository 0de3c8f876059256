"""The erasure journal: which sessions were erased, kept where a database restore cannot undo it.

A backup taken before an erasure still holds the erased session. The journal lives in the
object store (`erasures/{session_id}`), whose lifecycle is not the database's, and holds the
public id and the time, nothing personal. After a restore, `session-service privacy
reapply-erasures` erases again every journaled session the database has brought back.
Cleanup deletes entries older than `ERASURE_JOURNAL_RETENTION`, which must outlast the
oldest backup that might be restored; pruning lists the journal, so its cost follows the
number of erasures within that time, not the number of stored objects, and cleanup lists it
only once its oldest entry can be due (it remembers that entry's age between runs).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from session_service.core.ids import parse_session_id
from session_service.storage.base import ObjectStore, StorageUnavailable

log = structlog.get_logger(__name__)

JOURNAL_PREFIX = "erasures/"


@dataclass(frozen=True, slots=True)
class Pruned:
    """The session ids of the entries pruned, and when the oldest entry kept was written."""

    session_ids: list[str]
    oldest_kept: datetime | None


class ErasureJournal:
    """Entries in the object store, one per erased session; one per process."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def record(self, session_ids: Sequence[uuid.UUID], *, erased_at: datetime) -> None:
        """Journal these erasures; a warning (no failure) when storage is unreachable.

        Written once the erasure has committed, with its objects: the journal is storage,
        and no storage call runs inside a database transaction.
        """
        body = json.dumps({"erased_at": erased_at.isoformat()}).encode()
        try:
            for session_id in session_ids:
                await self.store.put_object(
                    f"{JOURNAL_PREFIX}{session_id}", body, content_type="application/json"
                )
        except StorageUnavailable:
            log.warning("erasure_not_journaled", sessions=len(session_ids))

    async def prune(self, *, before: datetime, dry_run: bool) -> Pruned:
        """Delete (or, dry, list) entries written before `before`; what went, what stays."""
        old: list[str] = []
        oldest_kept: datetime | None = None
        async for info in self.store.list_prefix(JOURNAL_PREFIX):
            if info.last_modified < before:
                old.append(info.key)
            elif oldest_kept is None or info.last_modified < oldest_kept:
                oldest_kept = info.last_modified
        if not dry_run:
            await self.store.delete_many(old)
        return Pruned([key.removeprefix(JOURNAL_PREFIX) for key in old], oldest_kept)

    async def erased(self) -> AsyncIterator[uuid.UUID]:
        """Every journaled session id (storage errors propagate: a reapply must not guess)."""
        async for info in self.store.list_prefix(JOURNAL_PREFIX):
            session_id = parse_session_id(info.key.removeprefix(JOURNAL_PREFIX))
            if session_id is not None:
                yield session_id
