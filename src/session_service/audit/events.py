"""The names of audited events: stable strings that admins filter on."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """Every audit event type the service writes."""

    SESSION_CREATED = "session.created"
    SESSION_VALIDATED = "session.validated"
    SESSION_VALIDATION_FAILED = "session.validation_failed"
    SESSION_RESET = "session.reset"
    SESSION_SUPERSEDED = "session.superseded"
    SESSION_DETAILS_SUBMITTED = "session.details_submitted"
    SESSION_COMPLETED = "session.completed"
    SESSION_ERASED = "session.erased"
    SESSION_EXPORTED = "session.exported"
    SESSION_EXPIRED = "session.expired"
    ADMIN_AUDIT_QUERIED = "admin.audit_queried"
    ADMIN_AUDIT_VERIFIED = "admin.audit_verified"
    AUDIT_PURGED = "audit.purged"
    REQUEST_REJECTED = "request.rejected"
    REQUEST_RATE_LIMITED = "request.rate_limited"
    REQUEST_REJECTED_SUMMARY = "request.rejected_summary"
    AUTH_DENIED = "auth.denied"
    FILE_SLOT_ISSUED = "file.slot_issued"
    FILE_UPLOADED = "file.uploaded"
    FILE_REJECTED = "file.rejected"
    FILE_DELETED = "file.deleted"
    FILE_DOWNLOAD_ISSUED = "file.download_issued"
    FILE_ABANDONED = "file.abandoned"
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_RENAMED = "conversation.renamed"
    CONVERSATION_DELETED = "conversation.deleted"
    CONVERSATION_MESSAGE_ADDED = "conversation.message_added"
    STORAGE_ORPHAN_DELETED = "storage.orphan_deleted"
    CLEANUP_FAILED = "cleanup.failed"
    CLEANUP_COMPLETED = "cleanup.completed"
