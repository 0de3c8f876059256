"""Names, emails, API keys, signed tokens and presigned signatures never reach the log."""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import service_log_lines
from tests.files.helpers import fetch, upload_file
from tests.helpers import create_session

SERVICE_KEY = "svc-" + "q" * 40
NAME, EMAIL = "Katherine Johnson", "katherine@example.nasa"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": [SERVICE_KEY], "access_log": True}


async def test_a_full_flow_logs_no_secret(client: httpx.AsyncClient, json_log: io.StringIO) -> None:
    sid = str((await create_session(client))["id"])
    details = {"name": NAME, "email": EMAIL, "consent_user_data": True}
    await client.put("/api/v1/session/details", headers={"X-Session-ID": sid}, json=details)
    file = await upload_file(client, sid)
    download = await client.get(
        f"/api/v1/session/files/{file['id']}/download", headers={"X-Session-ID": sid}
    )
    url = download.json()["url"]
    assert (await fetch(client, url)).status_code == 200
    headers = {"Authorization": f"Bearer {SERVICE_KEY}"}
    await client.get(f"/api/v1/sessions/{sid}", headers=headers)
    await client.get(f"/api/v1/sessions/{sid}", headers={"Authorization": "Bearer wrong-key"})

    logged = "\n".join(json.dumps(line) for line in service_log_lines(json_log))
    assert '"event": "request"' in logged  # the access log was on
    secrets = [NAME, EMAIL, SERVICE_KEY, "wrong-key"]
    parts = urlsplit(url)
    signature = parse_qs(parts.query).get("X-Amz-Signature")
    secrets.append(signature[0] if signature else parts.path.rsplit("/", 1)[1])  # local token
    for secret in secrets:
        assert secret not in logged, secret
