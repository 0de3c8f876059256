"""Annotated dependency aliases of the sessions domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from session_service.api.deps import ClockDep, DbSession, RequestContextDep, SettingsDep
from session_service.audit.service import AuditService
from session_service.sessions.models import Session
from session_service.sessions.repository import SessionRepository
from session_service.sessions.service import SessionService


def get_session_service(
    request: Request, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> SessionService:
    """A session service bound to this request's unit of work."""
    state = request.app.state
    return SessionService(
        repository=SessionRepository(db, engine=state.engine),
        audit=AuditService(db, maker=state.sessionmaker, clock=clock),
        settings=settings,
        clock=clock,
        new_id=state.new_session_id,
    )


SessionServiceDep = Annotated[SessionService, Depends(get_session_service)]
SessionIdHeader = Annotated[
    str | None,
    Header(
        alias="X-Session-ID",
        description="The session id (a bearer secret): sent in this header, never in a URL.",
    ),
]


async def get_current_session(
    service: SessionServiceDep, ctx: RequestContextDep, x_session_id: SessionIdHeader = None
) -> Session:
    """The caller's valid session; otherwise 401 `session_invalid` with the reason."""
    return await service.require(x_session_id, ctx=ctx)


CurrentSession = Annotated[Session, Depends(get_current_session)]
