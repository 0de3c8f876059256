"""Refusals of the conversations domain (problem+json codes in docs/errors.md)."""

from __future__ import annotations

from session_service.core.errors import RETRY_AFTER_SECONDS, Conflict, InvalidInput, ServiceError


class ConversationNotFound(ServiceError):
    """No such conversation in the caller's session (another session's included)."""

    status_code = 404
    code = "conversation_not_found"
    title = "Conversation not found"


class MessageTooLong(InvalidInput):
    """The message's text is longer than MESSAGE_MAX_CHARS."""

    code = "message_too_long"
    title = "Message too long"


class AttachmentNotUploaded(InvalidInput):
    """An attachment names no uploaded file of this session."""

    code = "attachment_not_uploaded"
    title = "Attachment not uploaded"


class ConversationLimitReached(Conflict):
    """The session holds CONVERSATION_MAX_MESSAGES messages or CONVERSATION_MAX_BYTES already."""

    code = "conversation_limit_reached"
    title = "Conversation limit reached"


class SessionInactive(Conflict):
    """The service named a session that has ended (reset or expired): nothing is added to it."""

    code = "session_inactive"
    title = "Session inactive"


class StreamLimitReached(Conflict):
    """The session follows LIVE_MAX_STREAMS_PER_SESSION streams in this instance already."""

    code = "stream_limit_reached"
    title = "Stream limit reached"


class LiveUpdatesUnavailable(ServiceError):
    """This instance serves LIVE_MAX_STREAMS streams already, or is stopping: retry, and the
    balancer may send the stream to another instance."""

    status_code = 503
    code = "live_updates_unavailable"
    title = "Live updates unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
