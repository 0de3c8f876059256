"""Annotated dependency aliases of the privacy package."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from session_service.http.deps import DbSession, ResourcesDep
from session_service.privacy.erasure import SessionEraser
from session_service.privacy.export import SessionExporter
from session_service.sessions.deps import SessionServiceDep
from session_service.sessions.snapshot import SessionSnapshot


async def get_session_eraser(resources: ResourcesDep) -> SessionEraser:
    """The process's eraser."""
    return resources.eraser


async def get_session_exporter(resources: ResourcesDep) -> SessionExporter:
    """The process's exporter."""
    return resources.exporter


async def get_locked_session_by_id(
    session_id: uuid.UUID, service: SessionServiceDep, db: DbSession
) -> SessionSnapshot:
    """The session a service names in the path, locked until the request's unit of work ends."""
    return await service.find(session_id, db=db, lock=True)


SessionEraserDep = Annotated[SessionEraser, Depends(get_session_eraser)]
SessionExporterDep = Annotated[SessionExporter, Depends(get_session_exporter)]
LockedSessionById = Annotated[SessionSnapshot, Depends(get_locked_session_by_id)]
