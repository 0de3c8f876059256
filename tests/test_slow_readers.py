"""Export clients that never read starve nobody.

An export is read in the request's transaction, which commits before the answer goes
out; the archive is then streamed from storage. So twelve clients that ask for a large
export and never read a byte (the server blocks writing to them) hold no database
connection: with a pool of three, creating and validating sessions go on as before.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest

from session_service import migrations
from tests.conftest import PostgresFactory
from tests.files.helpers import upload_file
from tests.processes import free_port, start_serve, stop, wait_ready

READERS = 12
BIG = b"%PDF-1.7\n" + b"x" * (4 * 1024 * 1024) + b"\n%%EOF\n"


def _never_reading(port: int, token: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
    sock.connect(("127.0.0.1", port))
    request = (
        "GET /api/v1/session/export?format=zip HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nX-Session-ID: {token}\r\n\r\n"
    )
    sock.sendall(request.encode())
    return sock


@pytest.mark.timeout(120)
async def test_exports_nobody_reads_hold_no_connection(
    postgres: PostgresFactory, tmp_path: Path
) -> None:
    database = await asyncio.to_thread(postgres.create)
    await asyncio.to_thread(migrations.upgrade, database)
    port = free_port()
    env = {
        "DATABASE_URL": database,
        "DATABASE_POOL_SIZE": "3",
        "DATABASE_POOL_TIMEOUT": "2",
        "UPLOAD_MAX_BYTES": str(len(BIG)),
        "RATE_LIMIT_ENABLED": "false",
        "CLEANUP_ENABLED": "false",
        "LOG_LEVEL": "warning",
    }
    server = start_serve(env, tmp_path, port)
    readers: list[socket.socket] = []
    try:
        wait_ready(port, server)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            session = (await client.post("/api/v1/sessions")).json()
            await upload_file(client, session, BIG)
            readers = [_never_reading(port, session["token"]) for _ in range(READERS)]
            statuses = []
            for _ in range(10):
                created = await client.post("/api/v1/sessions")
                statuses.append(created.status_code)
                token = json.loads(created.text)["token"]
                validated = await client.post(
                    "/api/v1/session/validate", headers={"X-Session-ID": token}
                )
                statuses.append(validated.status_code)
            ready = await client.get("/readyz")
        # Each reader got its answer's head: the export was produced, then blocked on it.
        heads = [reader.recv(4096) for reader in readers]
    finally:
        for reader in readers:
            reader.close()
        stop(server)
    assert statuses == [201, 200] * 10
    assert ready.status_code == 200
    assert all(head.startswith(b"HTTP/1.1 200") for head in heads), heads[0][:200]
