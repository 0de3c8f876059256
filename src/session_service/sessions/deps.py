"""Annotated dependency aliases of the sessions domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from session_service.http.deps import (
    DbSession,
    RequestContextDep,
    ResourcesDep,
    mark_authenticated,
)
from session_service.http.ratelimits import HolderLimited
from session_service.sessions.service import SessionService
from session_service.sessions.snapshot import SessionSnapshot


async def get_session_service(resources: ResourcesDep) -> SessionService:
    """The process's session service."""
    return resources.sessions


SessionServiceDep = Annotated[SessionService, Depends(get_session_service)]
SESSION_ID_HEADER = "X-Session-ID"
SessionIdHeader = Annotated[
    str | None,
    Header(
        alias=SESSION_ID_HEADER,
        description="The session id (a bearer secret): sent in this header, never in a URL.",
    ),
]


async def get_current_session(
    _limited: HolderLimited,
    request: Request,
    service: SessionServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
    x_session_id: SessionIdHeader = None,
) -> SessionSnapshot:
    """The caller's valid session, read in the request's unit of work; else 401."""
    session = await service.hold(x_session_id, db=db, ctx=ctx, lock=False)
    mark_authenticated(request, session.id)
    return session


async def get_locked_session(
    _limited: HolderLimited,
    request: Request,
    service: SessionServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
    x_session_id: SessionIdHeader = None,
) -> SessionSnapshot:
    """The caller's valid session, locked until the request's unit of work ends; else 401.

    For every route that changes the session or what belongs to it: a reset, an erasure or
    another change of the same session waits for this request, or this request for it.
    """
    session = await service.hold(x_session_id, db=db, ctx=ctx, lock=True)
    mark_authenticated(request, session.id)
    return session


CurrentSession = Annotated[SessionSnapshot, Depends(get_current_session)]
LockedSession = Annotated[SessionSnapshot, Depends(get_locked_session)]
