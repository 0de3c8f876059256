"""Dependencies shared by every domain: the unit of work and the request context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.clock import Clock
from session_service.context import RequestContext
from session_service.db import get_db
from session_service.settings import Settings

# scope="function": the commit runs as the endpoint returns, before the response is sent.
DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]


def get_request_context(request: Request) -> RequestContext:
    """Request id (set by the middleware), client address and user agent."""
    client = request.client
    user_agent = request.headers.get("user-agent")
    return RequestContext(
        request_id=request.scope["state"].get("request_id"),
        client_ip=client.host if client else None,
        user_agent=user_agent[:512] if user_agent else None,
    )


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Clock:
    """The app's clock (replaceable in tests)."""
    clock: Clock = request.app.state.clock
    return clock


RequestContextDep = Annotated[RequestContext, Depends(get_request_context)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
