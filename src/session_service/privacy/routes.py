"""Erasure and export routes: the holder's own, and a service's erasure by id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from session_service.http.auth import ServiceKey
from session_service.http.deferred import DeferredResponse
from session_service.http.deps import DbSession, RequestContextDep
from session_service.http.problems import problem_responses
from session_service.http.urls import PublicBase, absolute_url
from session_service.privacy.deps import LockedSessionById, SessionEraserDep, SessionExporterDep
from session_service.privacy.erasure import Erasure
from session_service.privacy.export import ExportDocument, ExportFormat
from session_service.sessions.deps import LockedSession
from session_service.sessions.schemas import ErasureRead

router = APIRouter(tags=["sessions"])
service_router = APIRouter(tags=["service"], dependencies=[ServiceKey])

ERASURE_RESPONSES: dict[int | str, dict[str, Any]] = {
    204: {"description": "Erased: personal data, file rows and stored objects."},
    202: {
        "model": ErasureRead,
        "description": "Erased, but storage was unreachable: its objects are left to cleanup.",
    },
}


def _erasure_response(erasure: Erasure) -> DeferredResponse:
    """204, or 202 with a body when storage could not be purged (known once committed)."""

    async def decide() -> Response:
        if erasure.storage_reachable is not False:
            return Response(status_code=204)
        body = ErasureRead(files=erasure.files, objects_deleted=erasure.objects_deleted)
        return Response(body.model_dump_json(), status_code=202, media_type="application/json")

    return DeferredResponse(decide)


@router.delete(
    "/session",
    status_code=204,
    responses={**ERASURE_RESPONSES, **problem_responses(401, 409, 429)},
    response_class=Response,
)
async def erase_session(
    session: LockedSession, eraser: SessionEraserDep, db: DbSession, ctx: RequestContextDep
) -> Response:
    """Erase the caller's session, its personal data and its files, for good."""
    return _erasure_response(await eraser.erase(session, db=db, ctx=ctx, by="holder"))


@router.get(
    "/session/export",
    response_class=Response,
    responses={
        200: {
            "model": ExportDocument,
            "content": {
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "The export, as an attachment: one JSON document, or a ZIP archive.",
        },
        **problem_responses(400, 401, 409, 422, 429),
    },
)
async def export_session(
    base: PublicBase,
    session: LockedSession,
    exporter: SessionExporterDep,
    db: DbSession,
    ctx: RequestContextDep,
    export_format: ExportFormat = Query(
        "json",
        alias="format",
        description="`json`: files as fresh download URLs; `zip`: files with their contents.",
    ),
) -> Response:
    """Everything stored about the caller's session, as a JSON or ZIP attachment."""
    pending = await exporter.collect(session, db=db, ctx=ctx, export_format=export_format)

    async def decide() -> Response:
        content = pending.result()
        if export_format == "zip":  # file contents stream from storage
            return StreamingResponse(
                exporter.archive(content),
                media_type="application/zip",
                headers={"Content-Disposition": 'attachment; filename="session-export.zip"'},
            )
        parts = await exporter.document(content, base_url=absolute_url(base, "/"))
        return Response(
            b"".join(parts),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="session-export.json"'},
        )

    return DeferredResponse(decide)


@service_router.delete(
    "/sessions/{session_id}",
    status_code=204,
    responses={**ERASURE_RESPONSES, **problem_responses(401, 403, 404, 422)},
    response_class=Response,
)
async def erase_session_by_service(
    session: LockedSessionById, eraser: SessionEraserDep, db: DbSession, ctx: RequestContextDep
) -> Response:
    """Erase a session, its personal data and its files, for good."""
    return _erasure_response(await eraser.erase(session, db=db, ctx=ctx, by="service"))
