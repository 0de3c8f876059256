"""Stopping background tasks for certain, whatever their code does with a cancellation."""

from __future__ import annotations

import asyncio

# How long a cancelled task gets before it is cancelled again.
RECANCEL_AFTER = 0.5


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended, cancelling again while it runs on.

    One `cancel()` is not enough: a cancellation that lands while an `asyncio.timeout`
    block is expiring is turned into `TimeoutError` on Python 3.11 (and some client
    libraries swallow `CancelledError` in their connect paths), after which a loop that
    treats a timeout as "try later" runs on forever, and so would a shutdown awaiting it.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_AFTER)
    if not task.cancelled():
        task.exception()  # retrieved: asyncio would otherwise log it as never retrieved
