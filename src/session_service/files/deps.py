"""Annotated dependency aliases of the files domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from session_service.files.service import FileService
from session_service.http.deps import DbSession


async def get_file_service(request: Request, db: DbSession) -> FileService:
    """A file service bound to this request's unit of work."""
    state = request.app.state
    return FileService(
        db, store=state.store, audit=state.audit, settings=state.settings, clock=state.clock
    )


FileServiceDep = Annotated[FileService, Depends(get_file_service)]
