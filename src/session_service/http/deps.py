"""Dependencies shared by every domain: the unit of work and the request context.

All `async def`: FastAPI runs plain `def` dependencies in a worker thread, a thread hop
per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.core.context import RequestContext
from session_service.core.db import get_db

# scope="function": the commit runs as the endpoint returns, before the response is sent.
DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]


def request_context(request: Request) -> RequestContext:
    """Request id (set by the middleware), client address and user agent."""
    client = request.client
    user_agent = request.headers.get("user-agent")
    return RequestContext(
        request_id=request.scope["state"].get("request_id"),
        client_ip=client.host if client else None,
        user_agent=user_agent[:512] if user_agent else None,
    )


async def get_request_context(request: Request) -> RequestContext:
    """`request_context` as a dependency."""
    return request_context(request)


RequestContextDep = Annotated[RequestContext, Depends(get_request_context)]
