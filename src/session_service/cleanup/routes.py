"""`POST /admin/cleanup`: start a cleanup run (or a dry one) for an admin; read its progress.

A run can take longer than a load balancer lets a request live (40,000 sessions took half
a minute), so it is started and answered `202` with its id at once; `?wait=true` answers
with the whole report when the run ends, for small installs and scripts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from session_service.cleanup.schemas import CleanupReportRead, CleanupRunRead, CleanupStarted
from session_service.core.errors import Conflict, ServiceError
from session_service.http.auth import AdminKey
from session_service.http.deps import RequestContextDep, ResourcesDep
from session_service.http.problems import problem_responses

admin_router = APIRouter(tags=["admin"], dependencies=[AdminKey])


class CleanupRunNotFound(ServiceError):
    """No run of that id was started by this instance (or it is long gone)."""

    status_code = 404
    code = "cleanup_run_not_found"
    title = "Cleanup run not found"


class CleanupRunning(Conflict):
    """Another cleanup run (here or in another instance) is in progress."""

    code = "cleanup_running"
    title = "Cleanup already running"


@admin_router.post(
    "/admin/cleanup",
    status_code=202,
    responses={
        200: {"model": CleanupReportRead, "description": "With `wait=true`: the run's report."},
        202: {"model": CleanupStarted, "description": "Started: its id, and where to follow it."},
        **problem_responses(401, 403, 409, 422),
    },
)
async def run_cleanup(
    request: Request,
    resources: ResourcesDep,
    ctx: RequestContextDep,
    dry_run: Annotated[bool, Query(description="Report what would go; delete nothing.")] = False,
    wait: Annotated[
        bool, Query(description="Answer when the run has finished, with its report.")
    ] = False,
    full_sweep: Annotated[
        bool,
        Query(
            description="Also list all of storage for orphans in this run, however recent "
            "the last full sweep (`ORPHAN_FULL_SWEEP_INTERVAL`)."
        ),
    ] = False,
) -> Response:
    """Start cleanup now: `202` with its run id, or with `wait=true` the finished report."""
    if wait:
        report = await resources.cleanup.run_once(dry_run=dry_run, ctx=ctx, full_sweep=full_sweep)
        if report is None:
            raise _running()
        return JSONResponse(report.as_dict())
    run = await resources.cleanup.start(dry_run=dry_run, ctx=ctx, full_sweep=full_sweep)
    if run is None:
        raise _running()
    location = request.url_for("cleanup_status", run_id=run.id).path
    return JSONResponse(
        {"run_id": run.id, "status": run.status, "status_url": location},
        status_code=202,
        headers={"Location": location},
    )


@admin_router.get(
    "/admin/cleanup/{run_id}",
    name="cleanup_status",
    response_model=CleanupRunRead,
    # Runs are kept in this process's memory: nothing the route reads can fail (no 500).
    responses=problem_responses(401, 403, 404, unexpected=False),
)
async def cleanup_status(run_id: str, resources: ResourcesDep) -> dict[str, Any]:
    """A run started here: `running` (its report so far, `report.step` in progress),
    `finished` or `failed`. Runs are kept by the instance that started them."""
    run = resources.cleanup.get(run_id)
    if run is None:
        raise CleanupRunNotFound("No such cleanup run on this instance.")
    return run.as_dict()


def _running() -> CleanupRunning:
    return CleanupRunning("A cleanup run is in progress; try again when it has finished.")
