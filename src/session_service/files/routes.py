"""Browser-facing upload routes: parse, one service call, a schema."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from session_service.files.completion import Rejected
from session_service.files.deps import FileServiceDep
from session_service.files.schemas import (
    DownloadRead,
    FileList,
    FileRead,
    UploadCreate,
    UploadCreated,
    UploadFormRead,
)
from session_service.http.deferred import DeferredResponse
from session_service.http.deps import DbSession, RequestContextDep
from session_service.http.problems import error_response, problem_responses
from session_service.http.ratelimits import rate_limit
from session_service.http.urls import PublicBase, absolute_url
from session_service.idempotency.deps import IdempotentCall
from session_service.ratelimit.limiter import CallKind
from session_service.sessions.deps import CurrentSession, LockedSession

router = APIRouter(tags=["files"])


@router.post(
    "/session/uploads",
    status_code=201,
    response_model=UploadCreated,
    responses=problem_responses(400, 401, 409, 413, 422, 429),
    dependencies=[rate_limit(CallKind.UPLOAD)],
)
async def create_upload(
    base: PublicBase,
    session: LockedSession,
    idempotency: IdempotentCall,
    body: UploadCreate,
    service: FileServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
) -> Response:
    """Record a pending file and return the form that uploads it straight to storage."""
    issued = await service.issue_slot(session, body, db=db, ctx=ctx)
    slot = issued.slot
    created = UploadCreated(
        file=FileRead.model_validate(issued.file),
        upload=UploadFormRead(
            url=absolute_url(base, slot.url), fields=slot.fields, expires_at=slot.expires_at
        ),
    )
    return await idempotency.respond(created, status=201, session_id=session.id)


@router.post(
    "/session/files/{file_id}/complete",
    response_model=FileRead,
    responses=problem_responses(401, 404, 409, 422, 429),
)
async def complete_upload(
    request: Request,
    file_id: uuid.UUID,
    session: LockedSession,
    service: FileServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
) -> Response:
    """Check the uploaded object (size, type, first bytes); idempotent once uploaded."""
    completion = await service.complete(session, file_id, db=db, ctx=ctx)

    async def decide() -> Response:
        # A rejection is committed (row marked, object gone, event written), then a 422.
        outcome = completion.result()
        if isinstance(outcome, Rejected):
            return error_response(request, outcome.error())
        body = FileRead.model_validate(outcome).model_dump_json()
        return Response(body, media_type="application/json")

    return DeferredResponse(decide)


@router.get("/session/files", response_model=FileList, responses=problem_responses(401, 429))
async def list_files(session: CurrentSession, service: FileServiceDep, db: DbSession) -> FileList:
    """The session's files, oldest first."""
    files = await service.list(session, db=db)
    return FileList(files=[FileRead.model_validate(file) for file in files])


@router.delete(
    "/session/files/{file_id}",
    status_code=204,
    responses=problem_responses(401, 404, 409, 422, 429),
)
async def delete_file(
    file_id: uuid.UUID,
    session: LockedSession,
    service: FileServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
) -> Response:
    """Delete the file: its object and its row."""
    await service.delete(session, file_id, db=db, ctx=ctx)
    return Response(status_code=204)


@router.get(
    "/session/files/{file_id}/download",
    response_model=DownloadRead,
    responses=problem_responses(400, 401, 404, 409, 422, 429),
)
async def download_file(
    base: PublicBase,
    file_id: uuid.UUID,
    session: CurrentSession,
    service: FileServiceDep,
    db: DbSession,
    ctx: RequestContextDep,
) -> DownloadRead:
    """A short-lived URL that serves the file as an attachment."""
    issued = await service.download(session, file_id, db=db, ctx=ctx)
    return DownloadRead(url=absolute_url(base, issued.url), expires_at=issued.expires_at)
