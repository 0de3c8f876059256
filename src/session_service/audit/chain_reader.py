"""Reading the chain's events in order, a large page at a time, for the sealer and verify.

Pages are keyset pages in chain order (after the last (key, id) read, never OFFSET), so
memory stays at about two pages whatever the chain's length. On PostgreSQL the next page
is already being read while the caller hashes the current one: the server finds and
sends rows on its own core meanwhile, and the driver takes them in whenever the caller
awaits (`peek` and `take` give it a turn each). Nothing else may run on the unit of work
until the reader is closed (`async with`).
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_left
from collections.abc import Sequence
from operator import itemgetter
from types import TracebackType
from typing import Any

from session_service.audit.chain_repository import AuditChainRepository

_key = itemgetter(0)
Rows = Sequence[Sequence[Any]]


class ChainReader:
    """Events with keys from `start` (and below `below`), in chain order.

    The sealer looks at the next rows (`peek`) and consumes a batch's worth (`advance`);
    `verify_chain` takes key ranges (`take`), which in a sound chain follow each other, so
    the whole chain is read once.
    """

    def __init__(
        self,
        chain: AuditChainRepository,
        start: int | None,
        below: int | None,
        *,
        page: int,
        most: int | None = None,
    ) -> None:
        """`most`: the caller looks at no more than that many rows from `start` (no page
        is read past them, read ahead or not)."""
        self.chain = chain
        self.below = below
        self.page = page
        self.most = most
        self._ahead = chain.reads_ahead
        self._pending: asyncio.Future[Rows] | None = None
        self._seek(start)

    async def __aenter__(self) -> ChainReader:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _seek(self, start: int | None) -> None:
        self.start = start  # rows with lower keys are consumed, the others are not
        self._rows: list[Sequence[Any]] = []
        self._at = 0
        self._after: tuple[int, int] | None = None
        self._done = False
        self._read_rows = 0  # since `start`

    async def close(self) -> None:
        """Wait for the page being read, if any, and drop it: the unit of work is free."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            with contextlib.suppress(Exception):
                await pending

    async def pause(self) -> None:
        """Keep the page being read, if any, and read no further for now: the unit of work
        is free for a query of the caller's; the next read goes on from there."""
        if self._pending is not None:
            await self._fetch(read_on=False)

    def _limit(self) -> int:
        left = None if self.most is None else self.most - self._read_rows
        return self.page if left is None else min(self.page, left)

    def _read(self) -> asyncio.Future[Rows]:
        return asyncio.ensure_future(
            self.chain.chain_rows(self.start, self.below, after=self._after, limit=self._limit())
        )

    async def _fetch(self, *, read_on: bool = True) -> None:
        asked = self._limit()
        pending, self._pending = self._pending or self._read(), None
        page = await pending
        self._rows = [*self._rows[self._at :], *page]
        self._at = 0
        self._read_rows += len(page)
        self._done = len(page) < asked or self._limit() == 0
        if page:
            self._after = (int(page[-1][0]), int(page[-1][1]))
        if self._ahead and read_on and not self._done:
            self._pending = self._read()

    async def _turn(self) -> None:
        """Let the page being read arrive while the caller works."""
        if self._pending is not None:
            await asyncio.sleep(0)

    async def peek(self, count: int) -> Rows:
        """The next `count` rows not consumed (fewer at the end)."""
        await self._turn()
        while len(self._rows) - self._at < count and not self._done:
            await self._fetch()
        return self._rows[self._at : self._at + count]

    def advance(self, count: int) -> None:
        """Consume `count` rows (the first ones `peek` returned)."""
        self._at += count

    async def take(self, start: int | None, below: int) -> Rows:
        """The events with keys in [start, below), as `chain_rows(start, below)` gives them;
        read on from where the previous range ended when this one starts there."""
        if start is not None and below <= start:
            return []
        if start != self.start:  # not where the last range ended: read from `start`
            await self.close()
            self._seek(start)
        await self._turn()
        rows: list[Sequence[Any]] = []
        while True:
            end = bisect_left(self._rows, below, lo=self._at, key=_key)
            rows += self._rows[self._at : end]
            self._at = end
            if end < len(self._rows) or self._done:
                break
            await self._fetch()
        self.start = below
        return rows
