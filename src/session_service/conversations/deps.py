"""Annotated dependency aliases of the conversations domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from session_service.conversations.service import ConversationService
from session_service.http.deps import ResourcesDep


async def get_conversation_service(resources: ResourcesDep) -> ConversationService:
    """The process's conversation service."""
    return resources.conversations


ConversationServiceDep = Annotated[ConversationService, Depends(get_conversation_service)]
