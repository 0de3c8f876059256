"""Refusals of the conversations domain (problem+json codes in the README's table)."""

from __future__ import annotations

from session_service.core.errors import Conflict, InvalidInput, ServiceError


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
