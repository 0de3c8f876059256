"""Names, emails, tokens, API keys, signed links and presigned signatures never reach the log.

The session token is the holder's secret and must never be logged; the public session id
names the session and may appear (log lines and service routes carry it).
"""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import service_log_lines
from tests.files.helpers import fetch, upload_file
from tests.helpers import create_session, holder

SERVICE_KEY = "svc-" + "q" * 40
NAME, EMAIL = "Katherine Johnson", "katherine@example.nasa"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": [SERVICE_KEY], "access_log": True}


async def test_a_full_flow_logs_no_secret(client: httpx.AsyncClient, json_log: io.StringIO) -> None:
    session = await create_session(client)
    sid, first_token = str(session["id"]), str(session["token"])
    details = {"name": NAME, "email": EMAIL, "consent_user_data": True}
    put = await client.put("/api/v1/session/details", headers=holder(session), json=details)
    assert put.status_code == 200, put.text
    token = str(put.json()["token"])  # the details answer replaced the token
    assert token != first_token
    file = await upload_file(client, token)
    download = await client.get(
        f"/api/v1/session/files/{file['id']}/download", headers=holder(token)
    )
    url = download.json()["url"]
    assert (await fetch(client, url)).status_code == 200
    rotated = await client.get("/api/v1/session", headers=holder(first_token))
    assert rotated.status_code == 401  # a failed check must not log the token either
    headers = {"Authorization": f"Bearer {SERVICE_KEY}"}
    await client.get(f"/api/v1/sessions/{sid}", headers=headers)
    await client.get(f"/api/v1/sessions/{sid}", headers={"Authorization": "Bearer wrong-key"})

    logged = "\n".join(json.dumps(line) for line in service_log_lines(json_log))
    assert '"event": "request"' in logged  # the access log was on
    secrets = [first_token, token, NAME, EMAIL, SERVICE_KEY, "wrong-key"]
    parts = urlsplit(url)
    signature = parse_qs(parts.query).get("X-Amz-Signature")
    secrets.append(signature[0] if signature else parts.path.rsplit("/", 1)[1])  # local token
    for secret in secrets:
        assert secret not in logged, secret
