"""Acting as the browser: ask for a slot, post the form, complete."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.helpers import Running, holder, rows

_MINUTE = timedelta(minutes=1)
PDF = b"%PDF-1.7\n" + b"x" * 200 + b"\n%%EOF\n"


async def request_slot(
    client: httpx.AsyncClient,
    session: dict[str, Any] | str,
    *,
    name: str = "report.pdf",
    content_type: str = "application/pdf",
    size: int = len(PDF),
) -> httpx.Response:
    """Ask for an upload slot as the holder of `session` (its answer, or its token)."""
    return await client.post(
        "/api/v1/session/uploads",
        headers=holder(session),
        json={"name": name, "content_type": content_type, "size": size},
    )


async def post_form(
    client: httpx.AsyncClient,
    upload: dict[str, Any],
    content: bytes,
    *,
    fields: dict[str, str] | None = None,
) -> httpx.Response:
    """The browser's multipart POST: the slot's fields in order, then the file, last."""
    form = dict(fields if fields is not None else upload["fields"])
    files = {"file": ("upload.bin", content, "application/octet-stream")}
    url = upload["url"]
    if url.startswith(str(client.base_url)):
        return await client.post(url, data=form, files=files)
    async with httpx.AsyncClient(timeout=10) as browser:  # straight to S3
        return await browser.post(url, data=form, files=files)


async def fetch(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET a URL the service handed out (its own, or the store's)."""
    if url.startswith(str(client.base_url)):
        return await client.get(url)
    async with httpx.AsyncClient(timeout=10) as browser:
        return await browser.get(url)


async def upload_file(
    client: httpx.AsyncClient, session: dict[str, Any] | str, content: bytes = PDF, **slot: Any
) -> dict[str, Any]:
    """Slot, post, complete: the happy path, as the holder of `session` (answer or token).

    Returns the completed file.
    """
    created = await request_slot(client, session, size=len(content), **slot)
    assert created.status_code == 201, created.text
    posted = await post_form(client, created.json()["upload"], content)
    assert posted.status_code in (200, 201, 204), posted.text
    completed = await client.post(
        f"/api/v1/session/files/{created.json()['file']['id']}/complete",
        headers=holder(session),
    )
    assert completed.status_code == 200, completed.text
    data: dict[str, Any] = completed.json()
    return data


async def put_directly(app: Running, key: str, content: bytes, content_type: str) -> None:
    """Store an object behind the service's back (as a replayed or forged upload would)."""
    await app.resources.store.put_object(key, content, content_type=content_type)


async def file_rows(app: Running) -> list[dict[str, Any]]:
    return await rows(app, "SELECT * FROM files ORDER BY created_at")
