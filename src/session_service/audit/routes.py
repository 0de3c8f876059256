"""Admin routes over the audit trail (admin key)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from session_service.audit.query import AuditFilter
from session_service.audit.schemas import AuditEventPage, AuditEventRead, VerifyReportRead
from session_service.audit.sealing import verify_and_record
from session_service.http.auth import AdminKey
from session_service.http.deps import DbSession, RequestContextDep, ResourcesDep
from session_service.http.problems import problem_responses

admin_router = APIRouter(tags=["admin"], dependencies=[AdminKey])
MAX_PAGE = 200


def _within_utc(moment: datetime) -> datetime:
    """Year 1 at +14:00 is valid ISO 8601 but has no UTC time: a 422, not a 500 later."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be a time that exists in UTC") from None
    return moment


def _iso_8601(value: object) -> object:
    """A date-time as ISO 8601 text (`2026-01-15T09:30:00Z`), never a number of seconds:
    pydantic would read `0.5` as a Unix time, which no client sending it meant."""
    if not isinstance(value, str) or not (value[:4].isdigit() and value[4:5] == "-"):
        raise ValueError("must be an ISO 8601 date-time with a time zone")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_iso_8601), AfterValidator(_within_utc)]


@admin_router.get(
    "/admin/audit-events",
    response_model=AuditEventPage,
    responses=problem_responses(401, 403, 422),
)
async def list_audit_events(
    resources: ResourcesDep,
    db: DbSession,
    ctx: RequestContextDep,
    session_id: uuid.UUID | None = None,
    type: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9_.]+$")] = None,
    since: Moment | None = None,
    until: Moment | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> AuditEventPage:
    """Events newest first, filtered by session, type and time; keyset cursor pagination."""
    audit_filter = AuditFilter(session_id=session_id, type=type, since=since, until=until)
    page = await resources.audit_query.page(
        audit_filter, db=db, cursor=cursor, limit=limit, ctx=ctx
    )
    return AuditEventPage(
        events=[AuditEventRead.model_validate(event) for event in page.events],
        next_cursor=page.next_cursor,
    )


@admin_router.get(
    "/admin/audit/verify", response_model=VerifyReportRead, responses=problem_responses(401, 403)
)
async def verify_audit_chain(
    resources: ResourcesDep, db: DbSession, ctx: RequestContextDep
) -> dict[str, Any]:
    """Recompute the hash chain; `problems` names each broken batch and how it broke."""
    report = await verify_and_record(
        maker=resources.sessionmaker, db=db, audit=resources.audit, ctx=ctx
    )
    return report.as_dict()
