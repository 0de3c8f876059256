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
    orphaned_objects: DeletedRead
    session_objects: DeletedRead
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
