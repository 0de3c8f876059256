"""Request and response bodies of the upload API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from session_service.core.bodies import RequestBody
from session_service.files.models import FileStatus
from session_service.http.examples import FILE, LATER, examples

PENDING_FILE = {**FILE, "stored_size": None, "status": "pending", "uploaded_at": None}
UPLOAD_FORM = {
    "url": "https://uploads.example.com/session-files",
    "fields": {
        "key": "incoming/3f1c2b9e-8a47-4d2e-9b6a-0c5d7e8f9a1b/5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        "Content-Type": "application/pdf",
        "policy": "eyJleHBpcmF0aW9uIjogIjIwMjYtMDEtMTVUMDk6MzU6MDBaIn0=",
        "x-amz-signature": "c2f1e0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1",
    },
    "expires_at": "2026-01-15T09:35:00Z",
}
DOWNLOAD_URL = "https://uploads.example.com/session-files/uploads/...?X-Amz-Signature=..."


class UploadCreate(RequestBody):
    """What the browser states about the file it is about to upload."""

    model_config = examples(
        {"name": "Quarterly report.pdf", "content_type": "application/pdf", "size": 48213}
    )

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

    # By name too: the examples (and the export) use the names it answers with.
    model_config = examples(FILE, from_attributes=True, validate_by_name=True)

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

    model_config = examples(UPLOAD_FORM)

    url: str
    fields: dict[str, str]
    expires_at: datetime


class UploadCreated(BaseModel):
    """The pending file and the form to upload it with."""

    model_config = examples({"file": PENDING_FILE, "upload": UPLOAD_FORM})

    file: FileRead
    upload: UploadFormRead


class FileList(BaseModel):
    """The session's files, oldest first."""

    model_config = examples({"files": [FILE]})

    files: list[FileRead]


class DownloadRead(BaseModel):
    """A short-lived URL that serves the file as an attachment."""

    model_config = examples({"url": DOWNLOAD_URL, "expires_at": LATER})

    url: str
    expires_at: datetime
