"""Response bodies of the admin cleanup API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from session_service.http.examples import CLEANUP_REPORT, examples

RunStatusRead = Literal["running", "finished", "failed"]
RUN_ID = "c1e2a3b4d5f6"


class DeletedRead(BaseModel):
    """Deletions of one kind: the count, and the first ids or keys (`CLEANUP_REPORT_LIMIT`)."""

    count: int
    items: list[str]
    truncated: bool


class CleanupErrorRead(BaseModel):
    """A step that failed, by its error class (messages can quote URLs or SQL)."""

    step: str
    error: str


class FullSweepRead(BaseModel):
    """Whether the run listed all of storage for orphans (`ORPHAN_FULL_SWEEP_INTERVAL`)."""

    ran: bool
    forced: bool = Field(description="Asked for (`full_sweep=true`), due or not.")
    previous_at: datetime | None = Field(description="The last full sweep before this run.")
    next_due_at: datetime | None = Field(
        description="When a run next sweeps by itself; null: only when asked for (interval 0)."
    )


class CleanupReportRead(BaseModel):
    """What a run did (or, dry, would do)."""

    model_config = examples(CLEANUP_REPORT)

    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    step: str | None = Field(description="The step in progress; null once the run has ended.")
    seconds: float
    expired_sessions: DeletedRead
    abandoned_uploads: DeletedRead
    session_objects: DeletedRead = Field(description="Objects of the expired sessions' files.")
    stale_quarantine: DeletedRead = Field(
        description="Quarantined uploads never completed (of abandoned uploads and of expired "
        "sessions' pending files)."
    )
    queued_deletions: DeletedRead = Field(
        description="Keys and prefixes of the deletion queue that were due: what erasures, "
        "file deletions, resets, completions and failed storage calls left."
    )
    orphaned_objects: DeletedRead = Field(
        description="Objects no live file row refers to, found by the full sweep."
    )
    full_sweep: FullSweepRead
    audit_events: DeletedRead
    erasure_journal: DeletedRead
    idempotency_keys: DeletedRead = Field(
        description="Expired `Idempotency-Key` answers: counted, not listed (a key's row is "
        "named by a digest only)."
    )
    errors: list[CleanupErrorRead]
    deletions: int = Field(description="Everything deleted (or, dry, to be deleted).")


class CleanupStarted(BaseModel):
    """A run started: its id, and where to follow it."""

    model_config = examples(
        {"run_id": RUN_ID, "status": "running", "status_url": f"/api/v1/admin/cleanup/{RUN_ID}"}
    )

    run_id: str
    status: RunStatusRead
    status_url: str


class CleanupRunRead(BaseModel):
    """A run started by this instance: its status and its report so far."""

    model_config = examples({"run_id": RUN_ID, "status": "finished", "report": CLEANUP_REPORT})

    run_id: str
    status: RunStatusRead
    report: CleanupReportRead
