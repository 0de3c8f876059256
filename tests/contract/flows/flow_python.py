"""The Python client flow of the contract test (tests/contract/test_generated_clients.py):
`mypy --strict` checks it against the client openapi-python-client generates from
openapi.json. It reads a success body and an error's `code` and `reason` with no cast, no
Any and no suppression: the generated models alone must carry them. Lines marked
`contract: error-body` read an error body."""

from __future__ import annotations

from uuid import UUID

from session_service_client import Client
from session_service_client.api.sessions import (
    sessions_create as create_session,
)
from session_service_client.api.sessions import (
    sessions_get as read_session,
)
from session_service_client.api.sessions import (
    sessions_validate as validate_session,
)
from session_service_client.models import (
    InvalidReason,
    Problem,
    SessionIssued,
    ValidationFailed,
    ValidationOk,
)
from session_service_client.types import Unset


async def flow(base_url: str) -> list[str]:
    """What a frontend's backend does with the service: open, check, read a refusal."""
    seen: list[str] = []
    async with Client(base_url=base_url) as client:
        # Success: the create answer's token and public id.
        created = await create_session.asyncio(client=client)
        if isinstance(created, Problem):
            # Error: every refusal is a problem document with the service's stable code.
            code: str = created.code  # contract: error-body
            return [code]
        assert isinstance(created, SessionIssued)
        token: UUID = created.token
        session_id: UUID = created.id
        seen.append(str(session_id))

        # Success: validate answers either the session or why the token is unusable.
        validated = await validate_session.asyncio(client=client, x_session_id=str(token))
        if isinstance(validated, ValidationOk):
            seen.append(validated.session.status.value)
        elif isinstance(validated, ValidationFailed):
            why: InvalidReason = validated.reason
            seen.append(why.value)

        # Error: a token that is not usable is 401 `session_invalid` with its `reason`.
        refused = await read_session.asyncio(client=client, x_session_id="not-a-token")
        if isinstance(refused, Problem):
            seen.append(refused.code)  # contract: error-body
            reason: str | Unset = refused.reason  # contract: error-body
            if isinstance(reason, str):
                seen.append(reason)
    return seen
