"""Dependencies every domain's routes share: the resources, the unit of work, the context.

All `async def`: FastAPI runs plain `def` dependencies in a worker thread, a thread hop
per dependency per request.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import ClientDisconnect
from starlette.types import Scope

from session_service.core.context import RequestContext
from session_service.core.db import unit_of_work
from session_service.core.errors import RequestAborted
from session_service.resources import Resources

# The lifespan state entry that holds the process's resources.
RESOURCES = "resources"
# The request state entry naming the session whose holder this request proved to be.
AUTHENTICATED_SESSION = "authenticated_session"


def resources_in(scope: Scope) -> Resources | None:
    """The resources of a request's ASGI scope (None before start-up has finished)."""
    return cast("Resources | None", scope.get("state", {}).get(RESOURCES))


async def body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client leaving mid-body is `RequestAborted`.

    Services that stream a body see the service's own exception, not Starlette's.
    """
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect as error:
        raise RequestAborted from error


def authenticated_session(scope: Scope) -> uuid.UUID | None:
    """The session this request's token was checked for, if it was valid; else None.

    Audit events about refused requests and admin alerts attribute a request to a session
    only this way: a header alone proves nothing (anyone who knows an id can send it).
    """
    return cast("uuid.UUID | None", scope.get("state", {}).get(AUTHENTICATED_SESSION))


def mark_authenticated(request: Request, session_id: uuid.UUID) -> None:
    """Note that this request's holder proved to hold `session_id`."""
    request.scope["state"][AUTHENTICATED_SESSION] = session_id


def resources_of(request: Request) -> Resources:
    """The process's resources, as the lifespan yielded them."""
    return cast(Resources, request.scope["state"][RESOURCES])


async def get_resources(request: Request) -> Resources:
    """`resources_of` as a dependency."""
    return resources_of(request)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_db_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """The request's one unit of work: committed when the endpoint returns, else rolled back.

    Declared with `scope="function"`, so the commit runs as the endpoint returns and before
    the response goes out: a failing commit becomes a 5xx, never a success that was lost.
    """
    async with unit_of_work(resources.sessionmaker) as db:
        yield db


DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


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
