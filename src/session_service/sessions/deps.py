"""Annotated dependency aliases of the sessions domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from session_service.http.deps import DbSession, RequestContextDep
from session_service.privacy.erasure import SessionEraser
from session_service.privacy.export import SessionExporter
from session_service.sessions.service import SessionService, SessionValidator
from session_service.sessions.snapshot import SessionSnapshot


async def get_session_service(request: Request, db: DbSession) -> SessionService:
    """A session service bound to this request's unit of work."""
    state = request.app.state
    return SessionService(
        db,
        audit=state.audit,
        settings=state.settings,
        clock=state.clock,
        new_id=state.new_session_id,
    )


def session_validator(request: Request) -> SessionValidator:
    """The process's validator (no unit of work: validation is the hot path)."""
    validator: SessionValidator = request.app.state.session_validator
    return validator


async def get_session_validator(request: Request) -> SessionValidator:
    """`session_validator` as a dependency."""
    return session_validator(request)


async def get_session_eraser(request: Request, db: DbSession) -> SessionEraser:
    """An eraser bound to this request's unit of work."""
    state = request.app.state
    return SessionEraser(db, store=state.store, audit=state.audit)


async def get_session_exporter(request: Request) -> SessionExporter:
    """An exporter; it streams from a unit of work of its own."""
    state = request.app.state
    return SessionExporter(
        maker=state.sessionmaker,
        audit=state.audit,
        store=state.store,
        settings=state.settings,
        clock=state.clock,
    )


SessionServiceDep = Annotated[SessionService, Depends(get_session_service)]
SessionEraserDep = Annotated[SessionEraser, Depends(get_session_eraser)]
SessionExporterDep = Annotated[SessionExporter, Depends(get_session_exporter)]
SessionValidatorDep = Annotated[SessionValidator, Depends(get_session_validator)]
SESSION_ID_HEADER = "X-Session-ID"
SessionIdHeader = Annotated[
    str | None,
    Header(
        alias=SESSION_ID_HEADER,
        description="The session id (a bearer secret): sent in this header, never in a URL.",
    ),
]


async def get_current_session(
    validator: SessionValidatorDep, ctx: RequestContextDep, x_session_id: SessionIdHeader = None
) -> SessionSnapshot:
    """The caller's valid session; otherwise 401 `session_invalid` with the reason."""
    return await validator.require(x_session_id, ctx=ctx)


CurrentSession = Annotated[SessionSnapshot, Depends(get_current_session)]
