"""`Idempotency-Key` at the HTTP edge: one dependency claims the key, one call answers.

A route that takes the header declares `IdempotentCall` (after its session dependency, so
the session is checked and locked first, as without a key) and answers through
`respond`, which stores what it sends when a key was claimed. A retry of an answered
request never reaches the route: the dependency raises `Replay`, whose handler sends the
stored answer with `Idempotent-Replayed: true`, and the request's unit of work rolls back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.http.deps import DbSession, ResourcesDep
from session_service.http.openapi import IDEMPOTENCY_KEY_HEADER, OPERATIONS, REPLAYED_HEADER
from session_service.idempotency.service import (
    Claim,
    IdempotencyService,
    StoredAnswer,
    parse_key,
)
from session_service.observability.metrics import route_template
from session_service.sessions.deps import SESSION_ID_HEADER

log = structlog.get_logger(__name__)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        description="1 to 255 visible ASCII characters, a fresh UUIDv4 per call, the same on "
        "each of its retries: a retry of a call that succeeded gets the first answer again "
        "(`Idempotent-Replayed: true`) and changes nothing; the same key with another body is "
        "`422 idempotency_key_reused`. Kept `IDEMPOTENCY_KEY_TTL` (24 h), per operation and "
        "`X-Session-ID` as sent; failed calls are not kept (their retry runs again).",
    ),
]


class Replay(Exception):
    """This request was answered before: its stored answer is sent, nothing runs again."""

    def __init__(self, answer: StoredAnswer) -> None:
        super().__init__("idempotent replay")
        self.answer = answer


def json_answer(answer: StoredAnswer, *, replayed: bool = False) -> Response:
    """An answer as it was (or is to be) sent: status, JSON body, `Location`."""
    headers = {REPLAYED_HEADER: "true"} if replayed else {}
    if answer.location is not None:
        headers["Location"] = answer.location
    return Response(
        answer.body, status_code=answer.status, media_type="application/json", headers=headers
    )


@dataclass(frozen=True, slots=True)
class Idempotent:
    """This request's key, if it sent one (`claim`), and the way to answer it."""

    service: IdempotencyService
    claim: Claim | None
    db: AsyncSession

    async def respond(
        self,
        body: BaseModel,
        *,
        status: int,
        session_id: uuid.UUID,
        location: str | None = None,
    ) -> Response:
        """Answer with `body` (the route's response model); kept for retries under the key.

        `session_id`: the session the answer belongs to; its keys go when it goes.
        """
        answer = StoredAnswer(
            status=status, body=body.model_dump_json(by_alias=True).encode(), location=location
        )
        if self.claim is not None:
            await self.service.keep(self.claim, answer, session_id=session_id, db=self.db)
        return json_answer(answer)


def operation_of(request: Request, templates: dict[int, str]) -> str:
    """The operationId of the route that matched (`sessions-create`), the key's scope."""
    template = route_template(request.scope, templates)
    operation = OPERATIONS.get((request.method, template))
    return operation.id if operation is not None else f"{request.method} {template}"


async def get_idempotent(
    request: Request,
    resources: ResourcesDep,
    db: DbSession,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Idempotent:
    """Claim the request's `Idempotency-Key` in its unit of work, or replay its answer."""
    service = resources.idempotency
    if idempotency_key is None:
        return Idempotent(service=service, claim=None, db=db)
    key = parse_key(request.headers.getlist(IDEMPOTENCY_KEY_HEADER))
    operation = operation_of(request, resources.metrics.route_templates)
    outcome = await service.claim(
        key,
        operation=operation,
        credential=request.headers.get(SESSION_ID_HEADER),
        method=request.method,
        path=request.url.path,
        body=await request.body(),
        db=db,
    )
    if isinstance(outcome, StoredAnswer):
        log.info("idempotent_replay", operation=operation)
        resources.metrics.idempotent_replay(operation)
        raise Replay(outcome)
    return Idempotent(service=service, claim=outcome, db=db)


IdempotentCall = Annotated[Idempotent, Depends(get_idempotent)]


async def _replay(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Replay)
    return json_answer(exc.answer, replayed=True)


def install_replay_handler(app: FastAPI) -> None:
    """Answer `Replay` with the stored answer."""
    app.add_exception_handler(Replay, _replay)
