"""Request and response bodies of the upload API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from session_service.core.bodies import RequestBody
from session_service.files.models import FileStatus


class UploadCreate(RequestBody):
    """What the browser states about the file it is about to upload."""

    name: str = Field(min_length=1, max_length=255, description="The file's own name.")
    content_type: str = Field(min_length=1, max_length=127, examples=["application/pdf"])
    size: int = Field(gt=0, description="Exact size in bytes.")

    @field_validator("name")
    @classmethod
    def _a_file_name_not_a_path(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped or stripped in {".", ".."}:
            raise ValueError("must be a file name")
        if any(char in stripped for char in "/\\") or not stripped.isprintable():
            raise ValueError("must be a file name, without path separators or control characters")
        return stripped


class FileRead(BaseModel):
    """A file as its session's holder sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str = Field(validation_alias="original_name")
    content_type: str
    size: int = Field(validation_alias="declared_size")
    stored_size: int | None
    status: FileStatus
    rejection_reason: str | None
    created_at: datetime
    uploaded_at: datetime | None


class UploadFormRead(BaseModel):
    """Post a multipart form to `url`: `fields` in order, then the file as `file`."""

    url: str
    fields: dict[str, str]
    expires_at: datetime


class UploadCreated(BaseModel):
    """The pending file and the form to upload it with."""

    file: FileRead
    upload: UploadFormRead


class FileList(BaseModel):
    """The session's files, oldest first."""

    files: list[FileRead]


class DownloadRead(BaseModel):
    """A short-lived URL that serves the file as an attachment."""

    url: str
    expires_at: datetime
