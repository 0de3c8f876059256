"""Each operation answers every error status it declares, for a real cause (issue 20, item 1).

openapi.json lists, per operation, the statuses it can answer. `CASES` holds one scenario
for each declared (operationId, status >= 400) pair that drives the real app over HTTP into
that status: a request as a client would send it, against a database, settings or a race
that make it fail; a pair answered with several codes may have one more scenario per code
(the `Idempotency-Key` refusals). `test_the_table_is_exactly_what_is_declared` keeps the
pairs equal, so a status declared without a scenario fails, and so does a scenario for a
status that is not declared (the declaration is then what needs fixing, in the route's
`problem_responses`).

Faults are real ones, never a patched service: 503 is a database that cannot be reached (a
closed port; a database file that cannot be opened) or a role without keys; 500 is a
database that answers with an error (one that does not exist; a file that is not a
database). Each answer must be problem+json whose `code` is a documented `ProblemCode` of
that very status.

Not per operation, so declared nowhere: what is answered to a request that is no
operation's, before any route runs (404 and 405; 413 for a body sent to an operation that
takes none; the server's 400 `malformed_request`, 408, 431 and 503 `server_busy`).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from session_service.app import create_app
from session_service.core.locks import LockKey, advisory_lock_for_run
from session_service.core.settings import Settings
from session_service.http.codes import STATUS, ProblemCode
from session_service.http.openapi import OPERATIONS
from tests.conftest import FakeClock
from tests.conversations.streams import open_stream
from tests.files.helpers import PDF, post_form, request_slot
from tests.helpers import Running, assert_problem, create_session, holder, running
from tests.processes import free_port

SERVICE_KEY = "svc-" + "d" * 40
ADMIN_KEY = "adm-" + "d" * 40
KEYS: dict[str, object] = {"service_api_keys": [SERVICE_KEY], "admin_api_keys": [ADMIN_KEY]}
# Every kind of call counted, one call a minute: the second call of any kind is refused.
ONE_CALL_A_MINUTE: dict[str, object] = {
    "rate_limit_enabled": True,
    "rate_limit_storage_uri": "memory://",
    **{
        f"rate_limit_{kind}": "1/minute"
        for kind in ("create", "reset", "validate", "upload", "holder")
    },
}
METRICS_BEHIND_THE_ADMIN_KEY: dict[str, object] = {"metrics_require_admin": True}

DETAILS = {"name": "Ada", "email": "ada@example.org", "consent_user_data": True}
SLOT = {"name": "report.pdf", "content_type": "application/pdf", "size": len(PDF)}
NOT_JSON = b'{"reason": '
NOT_A_UUID = "not-a-uuid"
EVIL_HOST = "evil.example:666"

Backend = Literal["sqlite", "postgresql"]
Caller = Literal["anyone", "holder", "service", "admin"]
Fault = Literal["unreachable", "broken"]


# -- calling an operation --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """How a client calls an operation that works: its caller, its usual query and body."""

    caller: Caller
    body: dict[str, Any] | None = None
    query: str = ""


CALLS: dict[str, Call] = {
    "sessions-create": Call("anyone"),
    "sessions-validate": Call("holder"),
    "sessions-reset": Call("anyone", {"reason": "missing"}),
    "sessions-get": Call("holder"),
    "sessions-submit-details": Call("holder", DETAILS),
    "sessions-export": Call("holder"),
    "sessions-erase": Call("holder"),
    "files-create-upload": Call("holder", SLOT),
    "files-complete": Call("holder"),
    "files-list": Call("holder"),
    "files-delete": Call("holder"),
    "files-download": Call("holder"),
    "service-get-session": Call("service"),
    "service-complete-session": Call("service"),
    "service-erase-session": Call("service"),
    "admin-list-audit-events": Call("admin"),
    "admin-verify-audit-chain": Call("admin"),
    # Waiting, the run happens in the request (started, it runs after the answer).
    "admin-start-cleanup": Call("admin", query="wait=true"),
    "admin-get-cleanup-run": Call("admin"),
    "operations-readiness": Call("anyone"),
    "operations-metrics": Call("admin"),
    "conversations-create": Call("holder", {"title": "Help"}),
    "conversations-list": Call("holder"),
    "conversations-rename": Call("holder", {"title": "Renamed"}),
    "conversations-delete": Call("holder"),
    "conversations-send-message": Call("holder", {"content": "Hello"}),
    "conversations-list-messages": Call("holder"),
    "service-list-conversations": Call("service"),
    "service-list-messages": Call("service"),
    "service-add-message": Call("service", {"role": "assistant", "content": "Hello"}),
    "service-delete-conversation": Call("service"),
    "conversations-stream-messages": Call("holder"),
}
ROUTES = {operation.id: route for route, operation in OPERATIONS.items()}


class Usual(Enum):
    """In `call`: what the operation's caller usually sends."""

    SENT = "sent"


USUAL = Usual.SENT


async def call(
    client: httpx.AsyncClient,
    operation: str,
    *,
    token: str | Literal[Usual.SENT] | None = USUAL,
    key: str | Literal[Usual.SENT] | None = USUAL,
    body: object = USUAL,
    content: bytes | None = None,
    query: str | None = None,
    host: str | None = None,
    headers: Mapping[str, str] | None = None,
    **path: str,
) -> httpx.Response:
    """Send `operation` as its caller would: a well-formed (unknown) token, the key of its
    role, its usual body and query, fresh ids in the path; each can be replaced, and more
    headers sent."""
    method, template = ROUTES[operation]
    how = CALLS[operation]
    values = {
        "file_id": str(uuid.uuid4()),
        "session_id": str(uuid.uuid4()),
        "conversation_id": str(uuid.uuid4()),
        "run_id": "0" * 32,
    }
    url = template.format(**{**values, **path})
    query = how.query if query is None else query
    headers = dict(headers or {})
    if token is USUAL:
        token = str(uuid.uuid4()) if how.caller == "holder" else None
    if isinstance(token, str):
        headers.update(holder(token))
    if key is USUAL:
        key = {"service": SERVICE_KEY, "admin": ADMIN_KEY}.get(how.caller)
    if isinstance(key, str):
        headers["Authorization"] = f"Bearer {key}"
    if host is not None:
        headers["Host"] = host
    if content is not None:
        headers["Content-Type"] = "application/json"
        return await client.request(
            method, url, params=query or None, headers=headers, content=content
        )
    json = how.body if body is USUAL else body
    return await client.request(method, url, params=query or None, headers=headers, json=json)


# -- the world a scenario acts in ------------------------------------------------------------


@dataclass
class World:
    """The app on the test database, and apps on a failing database, made on demand."""

    client: httpx.AsyncClient
    app: Running
    settings: Settings
    clock: FakeClock
    database_url: str
    backend: Backend
    tmp_path: Path

    def on_failing_database(self, fault: Fault) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        """The app (same settings) on a database that cannot be reached or that is broken."""
        return _app_on(self.settings, self.clock, url=self._failing_url(fault))

    def _failing_url(self, fault: Fault) -> str:
        if self.backend == "postgresql":
            if fault == "unreachable":  # nothing listens there: the server is down
                return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/session_service"
            # The server answers, with an error: the database was dropped.
            base = self.database_url.rsplit("/", 1)[0]
            return f"{base}/session_service_dropped_{uuid.uuid4().hex[:12]}"
        path = self.tmp_path / f"{fault}.db"
        if fault == "unreachable":  # the database file cannot be opened
            path.mkdir()
        else:  # it opens, and is not a database (overwritten)
            path.write_bytes(b"this is not a database\n" * 256)
        return f"sqlite+aiosqlite:///{path}"


@asynccontextmanager
async def _app_on(
    settings: Settings, clock: FakeClock, *, url: str
) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings.with_overrides(database_url=url), clock=clock)
    async with running(application) as started:
        transport = httpx.ASGITransport(app=started)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


Scenario = Callable[[World], Awaitable[httpx.Response]]


@dataclass(frozen=True, slots=True)
class Case:
    """One declared (operation, status) pair, the code it answers with, and how."""

    operation: str
    status: int
    code: ProblemCode
    scenario: Scenario
    settings: Mapping[str, object] = field(default_factory=dict)
    # A cause that exists on one backend only, and why.
    only_on: Backend | None = None
    why: str = ""
    # Names a further scenario of a pair (another code it is answered with).
    label: str = ""

    def __str__(self) -> str:
        name = f"{self.operation}-{self.status}"
        return f"{name}-{self.label}" if self.label else name


CASES: list[Case] = []


def declared(
    operation: str,
    status: int,
    code: ProblemCode,
    *,
    settings: Mapping[str, object] | None = None,
    only_on: Backend | None = None,
    why: str = "",
    label: str = "",
) -> Callable[[Scenario], Scenario]:
    """Register the decorated scenario as the one for (operation, status), or, `label`led,
    as a further one answered with another code."""

    def register(scenario: Scenario) -> Scenario:
        case = Case(operation, status, code, scenario, settings or {}, only_on, why, label)
        CASES.append(case)
        return scenario

    return register


def declared_for_each(
    operations: list[str],
    status: int,
    code: ProblemCode,
    scenario: Callable[[World, str], Awaitable[httpx.Response]],
    *,
    settings: Mapping[str, object] | None = None,
    only_on: Backend | None = None,
    why: str = "",
    label: str = "",
) -> None:
    """Register one scenario, which takes the operation, for each of `operations`."""
    for operation in operations:

        async def bound(world: World, operation: str = operation) -> httpx.Response:
            return await scenario(world, operation)

        declared(operation, status, code, settings=settings, only_on=only_on, why=why, label=label)(
            bound
        )


# -- families: one cause, the operations it reaches ------------------------------------------

HOLDER_OPERATIONS = [
    "sessions-get",
    "sessions-submit-details",
    "sessions-export",
    "sessions-erase",
    "files-create-upload",
    "files-list",
    "files-complete",
    "files-delete",
    "files-download",
    "conversations-create",
    "conversations-list",
    "conversations-rename",
    "conversations-delete",
    "conversations-send-message",
    "conversations-list-messages",
    "conversations-stream-messages",
]
SERVICE_OPERATIONS = [
    "service-get-session",
    "service-complete-session",
    "service-erase-session",
    "service-list-conversations",
    "service-list-messages",
    "service-add-message",
    "service-delete-conversation",
]
ADMIN_OPERATIONS = [
    "admin-list-audit-events",
    "admin-verify-audit-chain",
    "admin-start-cleanup",
    "admin-get-cleanup-run",
]
JSON_BODY_OPERATIONS = [
    "sessions-create",
    "sessions-reset",
    "sessions-submit-details",
    "files-create-upload",
    "conversations-create",
    "conversations-rename",
    "conversations-send-message",
    "service-add-message",
]
# Every operation that reads or writes the database.
DATABASE_OPERATIONS = [
    "sessions-create",
    "sessions-validate",
    "sessions-reset",
    *HOLDER_OPERATIONS,
    *SERVICE_OPERATIONS,
    "admin-list-audit-events",
    "admin-verify-audit-chain",
    "admin-start-cleanup",
]


async def without_a_token(world: World, operation: str) -> httpx.Response:
    return await call(world.client, operation, token=None)


async def without_a_key(world: World, operation: str) -> httpx.Response:
    return await call(world.client, operation, key=None)


async def with_the_other_roles_key(world: World, operation: str) -> httpx.Response:
    other = ADMIN_KEY if CALLS[operation].caller == "service" else SERVICE_KEY
    return await call(world.client, operation, key=other)


async def twice(world: World, operation: str) -> httpx.Response:
    """The second call within the minute (the first is counted, whatever it answered)."""
    await call(world.client, operation)
    return await call(world.client, operation)


async def with_a_body_over_the_cap(world: World, operation: str) -> httpx.Response:
    cap = world.settings.max_body_bytes
    return await call(world.client, operation, content=b'{"name": "' + b"x" * cap + b'"}')


async def with_a_body_that_is_not_json(world: World, operation: str) -> httpx.Response:
    return await call(world.client, operation, content=NOT_JSON)


async def when_the_database_is_unreachable(world: World, operation: str) -> httpx.Response:
    async with world.on_failing_database("unreachable") as client:
        return await call(client, operation)


async def when_the_database_is_broken(world: World, operation: str) -> httpx.Response:
    async with world.on_failing_database("broken") as client:
        return await call(client, operation)


declared_for_each(HOLDER_OPERATIONS, 401, ProblemCode.SESSION_INVALID, without_a_token)
declared_for_each(
    [*SERVICE_OPERATIONS, *ADMIN_OPERATIONS], 401, ProblemCode.UNAUTHORIZED, without_a_key
)
declared_for_each(
    [*SERVICE_OPERATIONS, *ADMIN_OPERATIONS], 403, ProblemCode.FORBIDDEN, with_the_other_roles_key
)
declared_for_each(
    ["sessions-create", "sessions-validate", "sessions-reset", *HOLDER_OPERATIONS],
    429,
    ProblemCode.RATE_LIMITED,
    twice,
    settings=ONE_CALL_A_MINUTE,
)
declared_for_each(
    JSON_BODY_OPERATIONS, 413, ProblemCode.PAYLOAD_TOO_LARGE, with_a_body_over_the_cap
)
declared_for_each(
    JSON_BODY_OPERATIONS, 400, ProblemCode.MALFORMED_JSON, with_a_body_that_is_not_json
)
declared_for_each(
    DATABASE_OPERATIONS,
    500,
    ProblemCode.INTERNAL_ERROR,
    when_the_database_is_broken,
)
declared_for_each(
    DATABASE_OPERATIONS, 503, ProblemCode.DATABASE_UNAVAILABLE, when_the_database_is_unreachable
)

# /metrics behind the admin key (METRICS_REQUIRE_ADMIN, the default in production).
declared_for_each(
    ["operations-metrics"],
    401,
    ProblemCode.UNAUTHORIZED,
    without_a_key,
    settings=METRICS_BEHIND_THE_ADMIN_KEY,
)
declared_for_each(
    ["operations-metrics"],
    403,
    ProblemCode.FORBIDDEN,
    with_the_other_roles_key,
    settings=METRICS_BEHIND_THE_ADMIN_KEY,
)


@declared(
    "operations-metrics",
    503,
    ProblemCode.AUTH_NOT_CONFIGURED,
    settings={**METRICS_BEHIND_THE_ADMIN_KEY, "admin_api_keys": []},
)
async def _metrics_without_admin_keys(world: World) -> httpx.Response:
    return await call(world.client, "operations-metrics")


@declared(
    "admin-get-cleanup-run", 503, ProblemCode.AUTH_NOT_CONFIGURED, settings={"admin_api_keys": []}
)
async def _cleanup_run_without_admin_keys(world: World) -> httpx.Response:
    return await call(world.client, "admin-get-cleanup-run")


@declared("operations-readiness", 503, ProblemCode.NOT_READY)
async def _readiness_without_a_database(world: World) -> httpx.Response:
    async with world.on_failing_database("unreachable") as client:
        return await call(client, "operations-readiness")


# -- sessions -------------------------------------------------------------------------------


@declared(
    "sessions-create", 409, ProblemCode.SESSION_EXISTS, settings={"allow_client_tokens": True}
)
async def _create_with_a_token_already_used(world: World) -> httpx.Response:
    proposed = {"id": str(uuid.uuid4())}
    first = await call(world.client, "sessions-create", body=proposed)
    assert first.status_code == 201, first.text
    return await call(world.client, "sessions-create", body=proposed)


@declared("sessions-create", 422, ProblemCode.CLIENT_TOKENS_DISABLED)
async def _create_with_a_token_of_the_clients(world: World) -> httpx.Response:
    return await call(world.client, "sessions-create", body={"id": str(uuid.uuid4())})


@declared("sessions-reset", 409, ProblemCode.TOKEN_REPLACED)
async def _reset_twice_with_one_token(world: World) -> httpx.Response:
    session = await create_session(world.client)
    first = await call(world.client, "sessions-reset", token=session["token"])
    assert first.status_code == 201, first.text
    return await call(world.client, "sessions-reset", token=session["token"])


@declared("sessions-reset", 422, ProblemCode.VALIDATION_ERROR)
async def _reset_for_no_known_reason(world: World) -> httpx.Response:
    return await call(world.client, "sessions-reset", body={"reason": "boredom"})


@declared("sessions-submit-details", 409, ProblemCode.SESSION_COMPLETED)
async def _details_for_a_completed_session(world: World) -> httpx.Response:
    session = await create_session(world.client)
    given = await call(world.client, "sessions-submit-details", token=session["token"])
    assert given.status_code == 200, given.text
    completed = await call(world.client, "service-complete-session", session_id=session["id"])
    assert completed.status_code == 200, completed.text
    return await call(world.client, "sessions-submit-details", token=given.json()["token"])


@declared("sessions-submit-details", 422, ProblemCode.VALIDATION_ERROR)
async def _details_without_consent(world: World) -> httpx.Response:
    session = await create_session(world.client)
    body = {**DETAILS, "consent_user_data": False}
    return await call(world.client, "sessions-submit-details", token=session["token"], body=body)


@declared("sessions-export", 400, ProblemCode.INVALID_HOST)
async def _export_on_a_host_not_allowed(world: World) -> httpx.Response:
    session = await create_session(world.client)
    return await call(world.client, "sessions-export", token=session["token"], host=EVIL_HOST)


@declared("sessions-export", 422, ProblemCode.VALIDATION_ERROR)
async def _export_in_no_known_format(world: World) -> httpx.Response:
    session = await create_session(world.client)
    return await call(world.client, "sessions-export", token=session["token"], query="format=pdf")


RACE_ONLY_ON_POSTGRESQL = (
    "a token is replaced while a request waits for its session's row lock, which only "
    "PostgreSQL has: SQLite runs one write transaction at a time, so nothing changes under it"
)


async def while_the_token_is_replaced(world: World, operation: str) -> httpx.Response:
    """`operation` waits for the session's lock while another tab gives details (its token
    is replaced), then goes on once that has committed."""
    session = await create_session(world.client)
    conn = await asyncpg.connect(world.database_url.replace("+asyncpg", "", 1))
    try:
        async with conn.transaction():
            session_id = uuid.UUID(session["id"])
            await conn.execute(
                "INSERT INTO session_tombstones (digest, ended_at, reason)"
                " SELECT token_digest, now(), 'rotated' FROM sessions WHERE id = $1",
                session_id,
            )
            await conn.execute(
                "UPDATE sessions SET token_digest = $2 WHERE id = $1", session_id, "0" * 64
            )
            waiting = asyncio.create_task(call(world.client, operation, token=session["token"]))
            await _until_a_request_waits_for_a_lock(conn)
        return await asyncio.wait_for(waiting, 10)
    finally:
        await conn.close()


async def _until_a_request_waits_for_a_lock(conn: asyncpg.Connection) -> None:
    for _ in range(250):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the request never waited for the session's lock")


declared_for_each(
    [
        "sessions-erase",
        "sessions-export",
        "files-delete",
        "conversations-rename",
        "conversations-delete",
    ],
    409,
    ProblemCode.TOKEN_REPLACED,
    while_the_token_is_replaced,
    only_on="postgresql",
    why=RACE_ONLY_ON_POSTGRESQL,
)


# -- files ----------------------------------------------------------------------------------


async def _a_pending_upload(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """A session and a slot whose file was never posted."""
    session = await create_session(world.client)
    created = await request_slot(world.client, session)
    assert created.status_code == 201, created.text
    return session, created.json()


@declared(
    "files-create-upload", 409, ProblemCode.FILE_LIMIT_REACHED, settings={"upload_max_files": 1}
)
async def _a_slot_past_the_file_limit(world: World) -> httpx.Response:
    session, _ = await _a_pending_upload(world)
    return await call(world.client, "files-create-upload", token=session["token"])


@declared("files-create-upload", 422, ProblemCode.UNSUPPORTED_CONTENT_TYPE)
async def _a_slot_for_a_program(world: World) -> httpx.Response:
    session = await create_session(world.client)
    body = {**SLOT, "content_type": "application/x-msdownload"}
    return await call(world.client, "files-create-upload", token=session["token"], body=body)


@declared("files-complete", 404, ProblemCode.FILE_NOT_FOUND)
async def _complete_a_file_of_no_one(world: World) -> httpx.Response:
    session = await create_session(world.client)
    return await call(world.client, "files-complete", token=session["token"])


@declared("files-complete", 409, ProblemCode.UPLOAD_MISSING)
async def _complete_before_uploading(world: World) -> httpx.Response:
    session, created = await _a_pending_upload(world)
    file_id = created["file"]["id"]
    return await call(world.client, "files-complete", token=session["token"], file_id=file_id)


@declared("files-complete", 422, ProblemCode.UPLOAD_REJECTED)
async def _complete_a_pdf_that_is_not_one(world: World) -> httpx.Response:
    session, created = await _a_pending_upload(world)
    posted = await post_form(world.client, created["upload"], b"GIF89a".ljust(len(PDF), b"\0"))
    assert posted.status_code in (200, 201, 204), posted.text
    file_id = created["file"]["id"]
    return await call(world.client, "files-complete", token=session["token"], file_id=file_id)


@declared("files-delete", 404, ProblemCode.FILE_NOT_FOUND)
async def _delete_a_file_of_no_one(world: World) -> httpx.Response:
    session = await create_session(world.client)
    return await call(world.client, "files-delete", token=session["token"])


@declared("files-delete", 422, ProblemCode.VALIDATION_ERROR)
async def _delete_by_a_malformed_id(world: World) -> httpx.Response:
    session = await create_session(world.client)
    return await call(world.client, "files-delete", token=session["token"], file_id=NOT_A_UUID)


@declared("files-download", 400, ProblemCode.INVALID_HOST)
async def _download_on_a_host_not_allowed(world: World) -> httpx.Response:
    session, created = await _a_pending_upload(world)
    file_id = created["file"]["id"]
    return await call(
        world.client, "files-download", token=session["token"], file_id=file_id, host=EVIL_HOST
    )


@declared("files-download", 404, ProblemCode.FILE_NOT_FOUND)
async def _download_a_file_of_no_one(world: World) -> httpx.Response:
    session = await create_session(world.client)
    return await call(world.client, "files-download", token=session["token"])


@declared("files-download", 409, ProblemCode.FILE_NOT_UPLOADED)
async def _download_before_uploading(world: World) -> httpx.Response:
    session, created = await _a_pending_upload(world)
    file_id = created["file"]["id"]
    return await call(world.client, "files-download", token=session["token"], file_id=file_id)


@declared("files-download", 422, ProblemCode.VALIDATION_ERROR)
async def _download_by_a_malformed_id(world: World) -> httpx.Response:
    session = await create_session(world.client)
    return await call(world.client, "files-download", token=session["token"], file_id=NOT_A_UUID)


# -- other services -------------------------------------------------------------------------

declared_for_each(
    SERVICE_OPERATIONS,
    404,
    ProblemCode.SESSION_NOT_FOUND,
    lambda world, operation: call(world.client, operation),  # a fresh id names no session
)
declared_for_each(
    SERVICE_OPERATIONS,
    422,
    ProblemCode.VALIDATION_ERROR,
    lambda world, operation: call(world.client, operation, session_id=NOT_A_UUID),
)


@declared("service-complete-session", 409, ProblemCode.SESSION_ACTIVE)
async def _complete_a_session_without_details(world: World) -> httpx.Response:
    session = await create_session(world.client)
    return await call(world.client, "service-complete-session", session_id=session["id"])


# -- conversations --------------------------------------------------------------------------


async def _a_conversation(world: World) -> tuple[dict[str, Any], str]:
    session = await create_session(world.client)
    created = await call(world.client, "conversations-create", token=session["token"])
    assert created.status_code == 201, created.text
    return session, str(created.json()["id"])


async def of_no_one(world: World, operation: str) -> httpx.Response:
    """The caller's own session, and a conversation id it does not hold."""
    session = await create_session(world.client)
    return await call(world.client, operation, token=session["token"])


declared_for_each(
    [
        "conversations-rename",
        "conversations-delete",
        "conversations-send-message",
        "conversations-list-messages",
        "conversations-stream-messages",
    ],
    404,
    ProblemCode.CONVERSATION_NOT_FOUND,
    of_no_one,
)


async def by_a_malformed_conversation_id(world: World, operation: str) -> httpx.Response:
    session = await create_session(world.client)
    return await call(world.client, operation, token=session["token"], conversation_id=NOT_A_UUID)


declared_for_each(
    ["conversations-delete", "conversations-list-messages", "conversations-stream-messages"],
    422,
    ProblemCode.VALIDATION_ERROR,
    by_a_malformed_conversation_id,
)


@declared(
    "conversations-create",
    409,
    ProblemCode.CONVERSATION_LIMIT_REACHED,
    settings={"conversation_max_per_session": 1},
)
async def _a_conversation_past_the_limit(world: World) -> httpx.Response:
    session, _ = await _a_conversation(world)
    return await call(world.client, "conversations-create", token=session["token"])


@declared("conversations-create", 422, ProblemCode.VALIDATION_ERROR)
async def _a_conversation_with_a_long_title(world: World) -> httpx.Response:
    session = await create_session(world.client)
    body = {"title": "x" * 201}
    return await call(world.client, "conversations-create", token=session["token"], body=body)


@declared("conversations-rename", 422, ProblemCode.VALIDATION_ERROR)
async def _rename_to_an_empty_title(world: World) -> httpx.Response:
    session, conversation = await _a_conversation(world)
    return await call(
        world.client,
        "conversations-rename",
        token=session["token"],
        conversation_id=conversation,
        body={"title": ""},
    )


@declared(
    "conversations-send-message",
    409,
    ProblemCode.CONVERSATION_LIMIT_REACHED,
    settings={"conversation_max_messages": 1},
)
async def _a_message_past_the_limit(world: World) -> httpx.Response:
    session, conversation = await _a_conversation(world)
    for _ in range(2):
        answer = await call(
            world.client,
            "conversations-send-message",
            token=session["token"],
            conversation_id=conversation,
        )
    return answer


@declared(
    "conversations-send-message",
    422,
    ProblemCode.MESSAGE_TOO_LONG,
    settings={"message_max_chars": 3},
)
async def _a_message_too_long(world: World) -> httpx.Response:
    session, conversation = await _a_conversation(world)
    return await call(
        world.client,
        "conversations-send-message",
        token=session["token"],
        conversation_id=conversation,
    )


@declared(
    "conversations-stream-messages",
    409,
    ProblemCode.STREAM_LIMIT_REACHED,
    settings={"live_max_streams_per_session": 1},
)
async def _a_second_stream_of_one_session(world: World) -> httpx.Response:
    session, conversation = await _a_conversation(world)
    _, template = ROUTES["conversations-stream-messages"]
    url = template.format(conversation_id=conversation)
    # httpx's ASGI transport waits for a whole answer: the open stream is driven directly.
    async with open_stream(world.app, url, holder(session)) as first:
        assert first.status == 200
        assert await first.reader.frame() is not None  # subscribed: its first frame is out
        return await call(
            world.client,
            "conversations-stream-messages",
            token=session["token"],
            conversation_id=conversation,
        )


@declared("service-add-message", 409, ProblemCode.SESSION_INACTIVE)
async def _a_reply_to_a_reset_session(world: World) -> httpx.Response:
    session, conversation = await _a_conversation(world)
    reset = await call(world.client, "sessions-reset", token=session["token"])
    assert reset.status_code == 201, reset.text
    return await call(
        world.client,
        "service-add-message",
        session_id=session["id"],
        conversation_id=conversation,
    )


# -- operators ------------------------------------------------------------------------------


@declared("admin-list-audit-events", 422, ProblemCode.INVALID_CURSOR)
async def _audit_page_after_a_forged_cursor(world: World) -> httpx.Response:
    return await call(world.client, "admin-list-audit-events", query="cursor=forged")


@declared("admin-start-cleanup", 409, ProblemCode.CLEANUP_RUNNING)
async def _cleanup_while_another_runs(world: World) -> httpx.Response:
    engine = world.app.resources.engine
    async with advisory_lock_for_run(engine, LockKey.CLEANUP) as acquired:
        assert acquired
        return await call(world.client, "admin-start-cleanup", query="")


@declared("admin-start-cleanup", 422, ProblemCode.VALIDATION_ERROR)
async def _cleanup_maybe_dry(world: World) -> httpx.Response:
    return await call(world.client, "admin-start-cleanup", query="dry_run=maybe")


@declared("admin-get-cleanup-run", 404, ProblemCode.CLEANUP_RUN_NOT_FOUND)
async def _cleanup_run_never_started(world: World) -> httpx.Response:
    return await call(world.client, "admin-get-cleanup-run")


# -- idempotency keys -----------------------------------------------------------------------

IDEMPOTENT_OPERATIONS = [
    "sessions-create",
    "sessions-reset",
    "files-create-upload",
    "conversations-create",
    "conversations-send-message",
    "service-add-message",
]
# The same key again with another body: another request.
OTHER_BODIES: dict[str, object] = {
    "sessions-create": {},
    "sessions-reset": {"reason": "tampered"},
    "files-create-upload": {**SLOT, "name": "other.pdf"},
    "conversations-create": {"title": "Other"},
    "conversations-send-message": {"content": "Other"},
    "service-add-message": {"role": "assistant", "content": "Other"},
}


@dataclass(frozen=True, slots=True)
class Ready:
    """What an operation needs to succeed: a live session's token, ids of what it holds."""

    token: str | None = None
    path: dict[str, str] = field(default_factory=dict)

    async def call(
        self, world: World, operation: str, key: str, *, body: object = USUAL
    ) -> httpx.Response:
        """`operation` with `Idempotency-Key: key` (and another body, if given)."""
        path: dict[str, Any] = dict(self.path)
        headers = {"Idempotency-Key": key}
        return await call(
            world.client, operation, token=self.token, body=body, headers=headers, **path
        )


async def _ready(world: World, operation: str) -> Ready:
    if operation == "sessions-create":
        return Ready()
    session = await create_session(world.client)
    if operation in ("sessions-reset", "files-create-upload", "conversations-create"):
        return Ready(session["token"])
    created = await call(world.client, "conversations-create", token=session["token"])
    assert created.status_code == 201, created.text
    conversation = {"conversation_id": str(created.json()["id"])}
    if operation == "service-add-message":
        return Ready(None, {"session_id": session["id"], **conversation})
    return Ready(session["token"], conversation)


async def with_a_key_that_is_no_key(world: World, operation: str) -> httpx.Response:
    return await (await _ready(world, operation)).call(world, operation, "no key")


async def with_a_key_used_for_another_body(world: World, operation: str) -> httpx.Response:
    ready, key = await _ready(world, operation), str(uuid.uuid4())
    first = await ready.call(world, operation, key)
    assert first.is_success, first.text
    return await ready.call(world, operation, key, body=OTHER_BODIES[operation])


async def with_a_key_still_in_use(world: World, operation: str) -> httpx.Response:
    """The key's row without its answer, as if its first request were still running (on
    PostgreSQL a retry waits for it instead; a row never commits without its answer)."""
    ready, key = await _ready(world, operation), str(uuid.uuid4())
    first = await ready.call(world, operation, key)
    assert first.is_success, first.text
    async with world.app.resources.engine.begin() as conn:
        await conn.execute(text("UPDATE idempotency_keys SET answer = NULL, session_id = NULL"))
    return await ready.call(world, operation, key)


declared_for_each(
    IDEMPOTENT_OPERATIONS,
    400,
    ProblemCode.IDEMPOTENCY_KEY_INVALID,
    with_a_key_that_is_no_key,
    label="idempotency",
)
declared_for_each(
    IDEMPOTENT_OPERATIONS,
    409,
    ProblemCode.IDEMPOTENCY_KEY_IN_USE,
    with_a_key_still_in_use,
    label="idempotency",
)
declared_for_each(
    IDEMPOTENT_OPERATIONS,
    422,
    ProblemCode.IDEMPOTENCY_KEY_REUSED,
    with_a_key_used_for_another_body,
    label="idempotency",
)


# -- the tests ------------------------------------------------------------------------------


def declared_pairs() -> set[tuple[str, int]]:
    """Every (operationId, status >= 400) the app declares, /metrics behind its key included."""
    documents = [
        create_app().openapi(),
        create_app(Settings(metrics_require_admin=True)).openapi(),
    ]
    return {
        (operation["operationId"], int(status))
        for document in documents
        for operations in document["paths"].values()
        for operation in operations.values()
        for status in operation["responses"]
        if int(status) >= 400
    }


def test_the_table_is_exactly_what_is_declared() -> None:
    cases = [(each_case.operation, each_case.status, each_case.code) for each_case in CASES]
    assert len(cases) == len(set(cases)), "a pair has two scenarios for one code"
    assert len({str(each_case) for each_case in CASES}) == len(CASES), "two cases, one name"
    table = [(operation, status) for operation, status, _ in cases]
    declared = declared_pairs()
    assert set(table) - declared == set(), "scenarios for statuses no operation declares"
    assert declared - set(table) == set(), "declared statuses without a scenario"


def test_each_code_is_documented_with_the_status_of_its_case() -> None:
    for each_case in CASES:
        assert STATUS[each_case.code] == each_case.status, each_case


@pytest.fixture
def settings_overrides(case: Case) -> dict[str, object]:
    return {**KEYS, **case.settings}


@pytest.fixture
def world(
    client: httpx.AsyncClient,
    app: Running,
    settings: Settings,
    clock: FakeClock,
    database_url: str,
    backend: Backend,
    tmp_path: Path,
) -> World:
    return World(client, app, settings, clock, database_url, backend, tmp_path)


def _path_pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)))


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_the_operation_answers_the_declared_status(case: Case, world: World) -> None:
    if case.only_on is not None and case.only_on != world.backend:
        pytest.skip(case.why)
    response = await case.scenario(world)

    method, template = ROUTES[case.operation]
    assert response.request.method == method
    assert _path_pattern(template).fullmatch(response.request.url.path), response.request.url
    body = assert_problem(response, case.status, case.code)
    assert STATUS[ProblemCode(body["code"])] == case.status
