"""Browser-facing session routes: parse, one service call, a schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from session_service.api import API_PREFIX
from session_service.api.deps import RequestContextDep
from session_service.api.problems import problem_responses
from session_service.sessions.deps import CurrentSession, SessionIdHeader, SessionServiceDep
from session_service.sessions.models import Session
from session_service.sessions.schemas import (
    ResetRead,
    ResetRequest,
    SessionCreate,
    SessionDetailsRead,
    SessionRead,
    ValidationFailed,
    ValidationOk,
)

router = APIRouter(tags=["sessions"])

HOLDER_SESSION_PATH = f"{API_PREFIX}/session"


@router.post(
    "/sessions",
    status_code=201,
    response_model=SessionRead,
    responses=problem_responses(409, 422),
)
async def create_session(
    service: SessionServiceDep,
    ctx: RequestContextDep,
    response: Response,
    body: Annotated[SessionCreate | None, Body()] = None,
) -> Session:
    """Open a new anonymous session (optionally with a client-proposed UUIDv4)."""
    session = await service.open(proposed_id=body.id if body else None, ctx=ctx)
    response.headers["Location"] = HOLDER_SESSION_PATH
    return session


@router.post(
    "/session/validate",
    response_model=ValidationOk | ValidationFailed,
    responses=problem_responses(),
)
async def validate_session(
    service: SessionServiceDep, ctx: RequestContextDep, x_session_id: SessionIdHeader = None
) -> Any:
    """Check the `X-Session-ID` before a user action; invalid answers say to reset."""
    result = await service.validate(x_session_id, ctx=ctx)
    if result.reason is not None:
        return ValidationFailed(reason=result.reason)
    return ValidationOk(session=SessionRead.model_validate(result.session))


@router.post(
    "/session/reset",
    status_code=201,
    response_model=ResetRead,
    responses=problem_responses(422),
)
async def reset_session(
    service: SessionServiceDep,
    ctx: RequestContextDep,
    response: Response,
    body: ResetRequest,
    x_session_id: SessionIdHeader = None,
) -> ResetRead:
    """Replace a lost, tampered or invalid session with a new one."""
    session = await service.reset(x_session_id, reason=body.reason, ctx=ctx)
    response.headers["Location"] = HOLDER_SESSION_PATH
    return ResetRead(session=SessionRead.model_validate(session))


@router.get(
    "/session",
    response_model=SessionDetailsRead,
    responses=problem_responses(401),
)
async def read_session(session: CurrentSession) -> Session:
    """The caller's own session."""
    return session
