"""Browser-facing session routes: parse, one service call, a schema."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, TypeVar

from fastapi import APIRouter, Body, FastAPI, Request, Response
from pydantic import BaseModel

from session_service.http import API_PREFIX
from session_service.http.auth import ServiceKey
from session_service.http.deps import DbSession, RequestContextDep, request_context, resources_of
from session_service.http.direct import add_direct_route
from session_service.http.problems import problem_responses
from session_service.http.ratelimits import HOLDER_LIMIT, enforce, rate_limit
from session_service.idempotency.deps import Idempotent, IdempotentCall
from session_service.ratelimit.limiter import CallKind
from session_service.sessions.deps import (
    SESSION_ID_HEADER,
    CurrentSession,
    LockedSession,
    SessionIdHeader,
    SessionServiceDep,
)
from session_service.sessions.schemas import (
    DetailsAccepted,
    DetailsUpdate,
    ResetRead,
    ResetRequest,
    SessionCreate,
    SessionDetailsRead,
    SessionIssued,
    SessionRead,
    SessionServiceRead,
    ValidationFailed,
    ValidationOk,
)
from session_service.sessions.service import Issued
from session_service.sessions.snapshot import SessionSnapshot

router = APIRouter(tags=["sessions"])

SESSION_ID_HEADER_PARAMETER = {
    "name": SESSION_ID_HEADER,
    "in": "header",
    "required": False,
    "description": "The session token (a bearer secret); missing or malformed answers `malformed`.",
    "schema": {"type": "string"},
}

HOLDER_SESSION_PATH = f"{API_PREFIX}/session"


Answer = TypeVar("Answer", bound=BaseModel)


def _with_token(model: type[Answer], issued: Issued) -> Answer:
    """An answer that carries the token just issued (the only place it ever appears)."""
    return model.model_validate({**asdict(issued.session), "token": issued.token})


async def _created(idempotency: Idempotent, body: BaseModel, issued: Issued) -> Response:
    """`201`, `Location` the holder's session; the answer belongs to the new session."""
    return await idempotency.respond(
        body, status=201, session_id=issued.session.id, location=HOLDER_SESSION_PATH
    )


@router.post(
    "/sessions",
    status_code=201,
    response_model=SessionIssued,
    responses=problem_responses(400, 409, 413, 422, 429),
    dependencies=[rate_limit(CallKind.CREATE)],
)
async def create_session(
    service: SessionServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
    idempotency: IdempotentCall,
    body: Annotated[SessionCreate | None, Body()] = None,
) -> Response:
    """Open a new anonymous session; the answer carries its token (shown only here)."""
    issued = await service.open(db=db, proposed_token=body.id if body else None, ctx=ctx)
    return await _created(idempotency, _with_token(SessionIssued, issued), issued)


# Mounted as a DirectRoute (see add_direct_routes): no dependency resolution or response
# re-validation per request; it reads its one header itself and serialises its schema once.
async def validate_session(request: Request) -> Response:
    """Check the token in `X-Session-ID` before a user action; invalid answers say to reset."""
    await enforce(request, CallKind.VALIDATE)
    await enforce(request, CallKind.HOLDER)
    result = await resources_of(request).validator.validate(
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
    responses=problem_responses(400, 409, 413, 422, 429),
    dependencies=[rate_limit(CallKind.RESET), HOLDER_LIMIT],
)
async def reset_session(
    service: SessionServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
    body: ResetRequest,
    idempotency: IdempotentCall,
    x_session_id: SessionIdHeader = None,
) -> Response:
    """Replace a lost, tampered or invalid session with a new one (and a new token)."""
    issued = await service.reset(x_session_id, db=db, reason=body.reason, ctx=ctx)
    answer = ResetRead(session=_with_token(SessionIssued, issued))
    return await _created(idempotency, answer, issued)


@router.get(
    "/session",
    response_model=SessionDetailsRead,
    responses=problem_responses(401, 429),
)
async def read_session(session: CurrentSession) -> SessionSnapshot:
    """The caller's own session."""
    return session


@router.put(
    "/session/details",
    response_model=DetailsAccepted,
    responses=problem_responses(400, 401, 409, 413, 422, 429),
)
async def submit_details(
    session: LockedSession,
    body: DetailsUpdate,
    service: SessionServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
) -> DetailsAccepted:
    """Give a name and an email with consent; the answer carries the session's new token."""
    issued = await service.submit_details(session, body, db=db, ctx=ctx)
    return _with_token(DetailsAccepted, issued)


# Other services (email verification, support tools): a `service` key, the public id in the
# path (never a token).
service_router = APIRouter(tags=["service"], dependencies=[ServiceKey])
SERVICE_PROBLEMS = problem_responses(401, 403, 404, 422)


@service_router.get(
    "/sessions/{session_id}", response_model=SessionServiceRead, responses=SERVICE_PROBLEMS
)
async def find_session(
    session_id: uuid.UUID, service: SessionServiceDep, db: DbSession
) -> SessionSnapshot:
    """Look up any session, with its details."""
    return await service.find(session_id, db=db)


@service_router.post(
    "/sessions/{session_id}/complete",
    response_model=SessionServiceRead,
    responses={**SERVICE_PROBLEMS, **problem_responses(409)},
)
async def complete_session(
    session_id: uuid.UUID, service: SessionServiceDep, db: DbSession, ctx: RequestContextDep
) -> SessionSnapshot:
    """Mark a pending_verification session completed (its email is verified)."""
    return await service.complete(session_id, db=db, ctx=ctx)


def add_direct_routes(app: FastAPI) -> None:
    """Mount the hot routes on the app itself, ahead of every included router."""
    add_direct_route(
        app,
        f"{API_PREFIX}/session/validate",
        validate_session,
        methods=["POST"],
        tags=["sessions"],
        response_model=ValidationOk | ValidationFailed,
        responses=problem_responses(429),
        openapi_extra={"parameters": [SESSION_ID_HEADER_PARAMETER]},
    )
