"""Annotated dependency aliases of the conversations domain."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends

from session_service.conversations.feed import Subscription
from session_service.conversations.follow import MessageStream
from session_service.conversations.service import ConversationService
from session_service.http.deps import ResourcesDep
from session_service.sessions.deps import CurrentSession


async def get_conversation_service(resources: ResourcesDep) -> ConversationService:
    """The process's conversation service."""
    return resources.conversations


async def get_message_stream(resources: ResourcesDep) -> MessageStream:
    """The process's reader of followed conversations."""
    return resources.streams


async def get_subscription(
    conversation_id: uuid.UUID, session: CurrentSession, resources: ResourcesDep
) -> AsyncIterator[Subscription]:
    """A place among the live streams, held until the answer has been sent (exit after the
    response, FastAPI's default for `yield`), refused beyond LIVE_MAX_STREAMS(_PER_SESSION)
    before anything is sent."""
    with resources.feed.subscribe(session.id, conversation_id) as subscription:
        yield subscription


ConversationServiceDep = Annotated[ConversationService, Depends(get_conversation_service)]
MessageStreamDep = Annotated[MessageStream, Depends(get_message_stream)]
LiveSubscription = Annotated[Subscription, Depends(get_subscription)]
