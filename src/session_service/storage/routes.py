"""The local backend's own upload and download endpoints (404 on the S3 backend)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

from session_service.core.db import job_scope
from session_service.http.deps import DbSession, body_chunks, resources_of
from session_service.storage.disposition import content_disposition
from session_service.storage.local import DownloadGone, LocalStore

router = APIRouter(tags=["storage"])


def _local_store(request: Request) -> LocalStore:
    store = resources_of(request).store
    if not isinstance(store, LocalStore):
        raise HTTPException(404)
    return store


# Not in the OpenAPI document: these are URLs the service hands out (an upload slot's
# form, a download link) for the browser to use as they are, not operations a client is
# generated for; README "Uploads" describes both.
@router.post("/storage/uploads", status_code=204, include_in_schema=False)
async def receive_upload(request: Request) -> Response:
    """Accept a file posted with an upload slot's form (the local backend's S3 POST).

    A form whose file is no longer pending (completed, deleted, erased) is refused before
    its first byte is written. That check reads in a unit of work of its own, so no
    database connection is held while the body streams in.
    """
    resources = resources_of(request)

    async def awaited(key: str) -> bool:
        async with job_scope(resources.sessionmaker) as db:
            return await resources.files.awaits_upload(key, db=db)

    await _local_store(request).receive_upload(
        request.headers.get("content-type"), body_chunks(request), awaited=awaited
    )
    return Response(status_code=204)


@router.get("/storage/downloads/{token}", include_in_schema=False)
async def serve_download(token: str, request: Request, db: DbSession) -> FileResponse:
    """Serve a file for a signed, unexpired download token, as an attachment.

    The attachment's name is read from the file's row: a file deleted or erased since the
    link was issued is gone, whatever the token says.
    """
    download = _local_store(request).open_download(token)
    filename = await resources_of(request).files.stored_name(download.key, db=db)
    if filename is None:
        raise DownloadGone("The file no longer exists.")
    return FileResponse(
        download.path,
        media_type=download.content_type,
        headers={
            "Content-Disposition": content_disposition(filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
