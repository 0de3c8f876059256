"""`POST /admin/cleanup`: run cleanup now, or dry, for an admin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from session_service.core.errors import Conflict
from session_service.http.auth import AdminKey
from session_service.http.deps import RequestContextDep, ResourcesDep
from session_service.http.problems import problem_responses

admin_router = APIRouter(tags=["admin"], dependencies=[AdminKey])


class CleanupRunning(Conflict):
    """Another cleanup run (here or in another instance) is in progress."""

    code = "cleanup_running"
    title = "Cleanup already running"


@admin_router.post("/admin/cleanup", responses=problem_responses(401, 403, 409))
async def run_cleanup(
    resources: ResourcesDep,
    ctx: RequestContextDep,
    dry_run: Annotated[bool, Query(description="Report what would go; delete nothing.")] = False,
) -> dict[str, Any]:
    """Run cleanup now: counts, the first ids and keys per kind, errors, duration."""
    report = await resources.cleanup.run_once(dry_run=dry_run, ctx=ctx)
    if report is None:
        raise CleanupRunning("A cleanup run is in progress; try again when it has finished.")
    return report.as_dict()
