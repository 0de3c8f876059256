"""Answers decided when they are sent: after the unit of work and its after-commit work.

Some routes finish their work after the commit (storage, which no transaction may wait
for): erasure purges objects, completion checks the upload. The request's unit of work
commits, and runs that work, once the route has returned and before the answer goes out;
so the route returns a `DeferredResponse`, and what it says is decided only then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Response
from starlette.types import Receive, Scope, Send


class DeferredResponse(Response):
    """A response built by `decide` when it is sent."""

    def __init__(self, decide: Callable[[], Awaitable[Response]]) -> None:
        super().__init__()
        self.decide = decide

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.decide()
        await response(scope, receive, send)
