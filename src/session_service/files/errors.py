"""Upload and file errors, each with its stable code."""

from __future__ import annotations

from session_service.core.errors import Conflict, InvalidInput, ServiceError


class FileNotFound(ServiceError):
    """No such file in the caller's session."""

    status_code = 404
    code = "file_not_found"
    title = "File not found"


class UnsupportedContentType(InvalidInput):
    """The declared content type is not on the allow-list."""

    code = "unsupported_content_type"
    title = "Unsupported content type"


class FileTooLarge(InvalidInput):
    """The declared size is above the maximum upload size."""

    code = "file_too_large"
    title = "File too large"


class FileLimitReached(Conflict):
    """The session already holds as many files as it may."""

    code = "file_limit_reached"
    title = "File limit reached"


class QuotaExceeded(Conflict):
    """The file would take the session past its byte quota."""

    code = "quota_exceeded"
    title = "Storage quota exceeded"


class UploadMissing(Conflict):
    """Completion was asked for before the object arrived in storage."""

    code = "upload_missing"
    title = "Upload not found in storage"


class FileNotUploaded(Conflict):
    """The file has no stored content to download."""

    code = "file_not_uploaded"
    title = "File not uploaded"


class UploadRejected(ServiceError):
    """The stored object did not match its declaration; it was deleted.

    A fresh rejection is returned (`files/completion.Rejected`), not raised, so it commits
    (row marked, event written) before the route answers with this.
    """

    status_code = 422
    code = "upload_rejected"
    title = "Upload rejected"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, extra={"reason": reason})
        self.reason = reason
