"""A read-only copy of a files row, as repositories return it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from session_service.files.models import FileStatus


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    """A file as of the statement that read or wrote it; cheap, never written back."""

    id: uuid.UUID
    session_id: uuid.UUID
    storage_key: str
    original_name: str
    content_type: str
    declared_size: int
    stored_size: int | None
    status: FileStatus
    rejection_reason: str | None
    created_at: datetime
    updated_at: datetime
    uploaded_at: datetime | None
