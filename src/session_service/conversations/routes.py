"""Conversation routes: the browser's own (X-Session-ID) and the agent backend's (service key)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.conversations.deps import (
    ConversationServiceDep,
    LiveSubscription,
    MessageStreamDep,
)
from session_service.conversations.models import Role
from session_service.conversations.schemas import (
    EVENT_STREAM_EXAMPLE,
    MAX_PAGE,
    AgentMessageCreate,
    ConversationCreate,
    ConversationList,
    ConversationRead,
    ConversationUpdate,
    MessagePage,
    MessageRead,
    UserMessageCreate,
)
from session_service.conversations.service import Appended, ConversationService, Draft
from session_service.conversations.snapshot import MessageSnapshot
from session_service.http.auth import ServiceKey
from session_service.http.deps import DbSession, RequestContextDep
from session_service.http.problems import problem_responses
from session_service.http.ratelimits import rate_limit
from session_service.http.sse import (
    EVENT_STREAM,
    HEARTBEAT,
    EventStreamResponse,
    event_frame,
    retry_frame,
)
from session_service.idempotency.deps import Idempotent, IdempotentCall
from session_service.privacy.deps import LockedSessionById
from session_service.ratelimit.limiter import CallKind
from session_service.sessions.deps import CurrentSession, LockedSession, SessionServiceDep
from session_service.sessions.snapshot import SessionSnapshot

router = APIRouter(tags=["conversations"])
service_router = APIRouter(tags=["service"], dependencies=[ServiceKey])

CONVERSATION = "/session/conversations/{conversation_id}"
SERVICE_CONVERSATION = "/sessions/{session_id}/conversations/{conversation_id}"
Before = Annotated[int | None, Query(ge=1, description="Messages before this `seq`, newest first.")]
After = Annotated[
    int | None,
    Query(ge=0, description="Messages after this `seq`, oldest first (with `before`: between)."),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many.")]


@dataclass(frozen=True, slots=True)
class Window:
    """Which messages a page holds (query parameters)."""

    before: Before = None
    after: After = None
    limit: Limit = 50


WindowQuery = Annotated[Window, Depends()]
StreamAfter = Annotated[
    int | None,
    Query(ge=0, description="Send the messages after this `seq` first (default: only new ones)."),
]
LastEventId = Annotated[
    int | None,
    Header(
        alias="Last-Event-ID",
        ge=0,
        description="The last event id (`seq`) received: resume after it (wins over `after`).",
    ),
]
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `event: message` with `id: <seq>` and the message "
        "as JSON in `data`, oldest first and without gaps; a `: heartbeat` comment when idle.",
        "content": {EVENT_STREAM: {"schema": {"type": "string"}, "example": EVENT_STREAM_EXAMPLE}},
    },
}
APPEND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": MessageRead, "description": "Sent before: the message already stored."},
}


async def _read(
    service: ConversationService,
    session: SessionSnapshot,
    conversation_id: uuid.UUID,
    window: Window,
    *,
    db: AsyncSession,
) -> MessagePage:
    page = await service.page(
        session,
        conversation_id,
        before=window.before,
        after=window.after,
        limit=window.limit,
        db=db,
    )
    return MessagePage(
        messages=[MessageRead.of(message) for message in page.messages],
        next_before=page.next_before,
        next_after=page.next_after,
    )


def _draft(body: UserMessageCreate | AgentMessageCreate, role: Role) -> Draft:
    return Draft(
        role=role,
        content=body.content,
        client_message_id=body.client_message_id,
        attachments=body.attachments,
        metadata=body.metadata,
    )


async def _appended(
    idempotency: Idempotent, appended: Appended, session: SessionSnapshot
) -> Response:
    """`201`, or `200` with the stored message for a repeated `client_message_id`."""
    status = 201 if appended.created else 200
    body = MessageRead.of(appended.message)
    return await idempotency.respond(body, status=status, session_id=session.id)


@router.post(
    "/session/conversations",
    status_code=201,
    response_model=ConversationRead,
    responses=problem_responses(400, 401, 409, 413, 422, 429),
)
async def create_conversation(
    session: LockedSession,
    idempotency: IdempotentCall,
    service: ConversationServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
    body: ConversationCreate | None = None,
) -> Response:
    """Start a conversation in the caller's session."""
    title = body.title if body is not None else None
    created = await service.create(session, title=title, db=db, ctx=ctx)
    answer = ConversationRead.model_validate(created)
    return await idempotency.respond(answer, status=201, session_id=session.id)


@router.get(
    "/session/conversations",
    response_model=ConversationList,
    responses=problem_responses(401, 429),
)
async def list_conversations(
    session: CurrentSession, service: ConversationServiceDep, db: DbSession
) -> ConversationList:
    """The caller's conversations, oldest first."""
    found = await service.all(session, db=db)
    return ConversationList(conversations=[ConversationRead.model_validate(c) for c in found])


@router.patch(
    CONVERSATION,
    response_model=ConversationRead,
    responses=problem_responses(400, 401, 404, 409, 413, 422, 429),
)
async def rename_conversation(
    conversation_id: uuid.UUID,
    body: ConversationUpdate,
    session: LockedSession,
    service: ConversationServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
) -> ConversationRead:
    """Give the conversation a new title (null: none)."""
    renamed = await service.rename(session, conversation_id, title=body.title, db=db, ctx=ctx)
    return ConversationRead.model_validate(renamed)


@router.delete(CONVERSATION, status_code=204, responses=problem_responses(401, 404, 409, 422, 429))
async def delete_conversation(
    conversation_id: uuid.UUID,
    session: LockedSession,
    service: ConversationServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
) -> Response:
    """Delete the conversation and every message in it, for good."""
    await service.delete(session, conversation_id, db=db, ctx=ctx)
    return Response(status_code=204)


@router.post(
    f"{CONVERSATION}/messages",
    status_code=201,
    response_model=MessageRead,
    responses={**APPEND_RESPONSES, **problem_responses(400, 401, 404, 409, 413, 422, 429)},
    dependencies=[rate_limit(CallKind.MESSAGE)],
)
async def send_message(
    conversation_id: uuid.UUID,
    body: UserMessageCreate,
    session: LockedSession,
    idempotency: IdempotentCall,
    service: ConversationServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
) -> Response:
    """Add the visitor's message; `201`, or `200` with the stored one for a repeated
    `client_message_id`."""
    draft = _draft(body, Role.USER)
    appended = await service.append(session, conversation_id, draft, db=db, ctx=ctx)
    return await _appended(idempotency, appended, session)


@router.get(
    f"{CONVERSATION}/messages",
    response_model=MessagePage,
    responses=problem_responses(401, 404, 422, 429),
)
async def list_messages(
    conversation_id: uuid.UUID,
    session: CurrentSession,
    service: ConversationServiceDep,
    db: DbSession,
    window: WindowQuery,
) -> MessagePage:
    """A page of the conversation: the newest by default, `before` or `after` a `seq`."""
    return await _read(service, session, conversation_id, window, db=db)


@router.get(
    f"{CONVERSATION}/events",
    status_code=200,
    response_class=EventStreamResponse,
    responses={**STREAM_RESPONSES, **problem_responses(401, 404, 409, 422, 429)},
)
async def stream_messages(
    conversation_id: uuid.UUID,
    session: CurrentSession,
    subscription: LiveSubscription,
    service: ConversationServiceDep,
    streams: MessageStreamDep,
    db: DbSession,
    after: StreamAfter = None,
    last_event_id: LastEventId = None,
) -> EventStreamResponse:
    """Follow the conversation live: first the messages after `Last-Event-ID` (or `after`),
    then each new one as it is added, by the visitor (any tab) or the agent. The stream ends
    when the session or the conversation does, or the server stops: reconnect with the last
    event id. Read it with `fetch` (the token goes in `X-Session-ID`, never in the URL)."""
    await service.get(session, conversation_id, db=db)  # 404 before anything is sent
    start = last_event_id if last_event_id is not None else after
    return EventStreamResponse(_frames(streams.follow(subscription, session, after=start)))


async def _frames(
    pages: AsyncGenerator[list[MessageSnapshot], None],
) -> AsyncGenerator[bytes, None]:
    yield retry_frame()
    async with aclosing(pages) as following:
        async for page in following:
            if not page:
                yield HEARTBEAT
                continue
            yield b"".join(
                event_frame(
                    event_id=message.seq,
                    event="message",
                    data=MessageRead.of(message).model_dump_json(),
                )
                for message in page
            )


@service_router.get(
    "/sessions/{session_id}/conversations",
    response_model=ConversationList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_conversations_by_service(
    session_id: uuid.UUID,
    sessions: SessionServiceDep,
    service: ConversationServiceDep,
    db: DbSession,
) -> ConversationList:
    """A session's conversations, oldest first."""
    session = await sessions.find(session_id, db=db)
    found = await service.all(session, db=db)
    return ConversationList(conversations=[ConversationRead.model_validate(c) for c in found])


@service_router.delete(
    SERVICE_CONVERSATION, status_code=204, responses=problem_responses(401, 403, 404, 422)
)
async def delete_conversation_by_service(
    conversation_id: uuid.UUID,
    session: LockedSessionById,
    service: ConversationServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
) -> Response:
    """Delete a conversation of the session and every message in it, for good (an agent
    clearing its memory); an ended session's too."""
    await service.delete(session, conversation_id, db=db, ctx=ctx)
    return Response(status_code=204)


@service_router.get(
    f"{SERVICE_CONVERSATION}/messages",
    response_model=MessagePage,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_messages_by_service(
    session_id: uuid.UUID,
    conversation_id: uuid.UUID,
    sessions: SessionServiceDep,
    service: ConversationServiceDep,
    db: DbSession,
    window: WindowQuery,
) -> MessagePage:
    """The agent's context: the last `limit` messages (newest first), or a page."""
    session = await sessions.find(session_id, db=db)
    return await _read(service, session, conversation_id, window, db=db)


@service_router.post(
    f"{SERVICE_CONVERSATION}/messages",
    status_code=201,
    response_model=MessageRead,
    responses={**APPEND_RESPONSES, **problem_responses(400, 401, 403, 404, 409, 413, 422)},
)
async def add_message_by_service(
    conversation_id: uuid.UUID,
    body: AgentMessageCreate,
    session: LockedSessionById,
    idempotency: IdempotentCall,
    service: ConversationServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
) -> Response:
    """Add a message of any role (an assistant reply, a tool result) to a live session;
    `200` with the stored one for a repeated `client_message_id`."""
    draft = _draft(body, body.role)
    appended = await service.append_reply(session, conversation_id, draft, db=db, ctx=ctx)
    return await _appended(idempotency, appended, session)
