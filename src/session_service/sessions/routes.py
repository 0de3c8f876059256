"""Browser-facing session routes: parse, one service call, a schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, FastAPI, Request, Response

from session_service.api import API_PREFIX
from session_service.api.deps import RequestContextDep, request_context
from session_service.api.direct import add_direct_route
from session_service.api.problems import problem_responses
from session_service.sessions.deps import (
    SESSION_ID_HEADER,
    CurrentSession,
    SessionIdHeader,
    SessionServiceDep,
    session_validator,
)
from session_service.sessions.schemas import (
    ResetRead,
    ResetRequest,
    SessionCreate,
    SessionDetailsRead,
    SessionRead,
    ValidationFailed,
    ValidationOk,
)
from session_service.sessions.snapshot import SessionSnapshot

router = APIRouter(tags=["sessions"])

SESSION_ID_HEADER_PARAMETER = {
    "name": SESSION_ID_HEADER,
    "in": "header",
    "required": False,
    "description": "The session id (a bearer secret); missing or malformed answers `malformed`.",
    "schema": {"type": "string"},
}

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
) -> SessionSnapshot:
    """Open a new anonymous session (optionally with a client-proposed UUIDv4)."""
    session = await service.open(proposed_id=body.id if body else None, ctx=ctx)
    response.headers["Location"] = HOLDER_SESSION_PATH
    return session


# Mounted as a DirectRoute (see add_direct_routes): no dependency resolution or response
# re-validation per request; it reads its one header itself and serialises its schema once.
async def validate_session(request: Request) -> Response:
    """Check the `X-Session-ID` before a user action; invalid answers say to reset."""
    result = await session_validator(request).validate(
        request.headers.get(SESSION_ID_HEADER), ctx=request_context(request)
    )
    body: ValidationOk | ValidationFailed
    if result.reason is not None:
        body = ValidationFailed(reason=result.reason)
    else:
        body = ValidationOk(session=SessionRead.model_validate(result.session))
    return Response(body.model_dump_json(), media_type="application/json")


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
async def read_session(session: CurrentSession) -> SessionSnapshot:
    """The caller's own session."""
    return session


def add_direct_routes(app: FastAPI) -> None:
    """Mount the hot routes on the app itself, ahead of every included router."""
    add_direct_route(
        app,
        f"{API_PREFIX}/session/validate",
        validate_session,
        methods=["POST"],
        tags=["sessions"],
        response_model=ValidationOk | ValidationFailed,
        responses=problem_responses(),
        openapi_extra={"parameters": [SESSION_ID_HEADER_PARAMETER]},
    )
