"""Annotated dependency aliases of the files domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from session_service.files.service import FileService
from session_service.http.deps import ResourcesDep


async def get_file_service(resources: ResourcesDep) -> FileService:
    """The process's file service."""
    return resources.files


FileServiceDep = Annotated[FileService, Depends(get_file_service)]
