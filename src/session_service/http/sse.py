"""Server-Sent Events on the wire: the frames, and a response that sends each as it comes.

The response is Starlette's streaming one (which ends the stream when the client leaves)
with two additions: headers that keep proxies from buffering or caching it, and a bound on
how long one write may wait for a client that stopped reading. Without it a stuck client
would keep its stream, and its place under LIVE_MAX_STREAMS, for as long as its TCP
connection lives; with it the connection is closed and the client, when it comes back,
resumes from its last event id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing

import structlog
from starlette.responses import StreamingResponse
from starlette.types import Send

log = structlog.get_logger(__name__)

EVENT_STREAM = "text/event-stream"
HEARTBEAT = b": heartbeat\n\n"
"""A comment line: clients ignore it, proxies see traffic."""

STALL_SECONDS = 20.0
"""How long one write may wait for the client to read before the connection is closed: only
a client that has not taken megabytes already sent (the socket buffers) waits here at all,
and a shutdown waits for it at most this long."""

RETRY_MS = 2000
"""How long an `EventSource` waits before reconnecting (the stream's first frame)."""


def event_frame(*, event_id: int, event: str, data: str) -> bytes:
    """One event; `data` is a single line (compact JSON is: it escapes line breaks)."""
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n".encode()


def retry_frame(milliseconds: int = RETRY_MS) -> bytes:
    """Tells an `EventSource` how long to wait before it reconnects."""
    return f"retry: {milliseconds}\n\n".encode()


class EventStreamResponse(StreamingResponse):
    """`text/event-stream`, sent frame by frame, never buffered or cached on the way."""

    media_type = EVENT_STREAM

    def __init__(self, frames: AsyncGenerator[bytes, None]) -> None:
        super().__init__(
            frames,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            media_type=EVENT_STREAM,
        )
        self.frames = frames

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async with aclosing(self.frames) as frames:
            async for frame in frames:
                try:
                    await asyncio.wait_for(
                        send({"type": "http.response.body", "body": frame, "more_body": True}),
                        STALL_SECONDS,
                    )
                except TimeoutError:
                    # The answer cannot end cleanly (that write would wait too): the server
                    # closes the connection once this returns without completing it.
                    log.warning("event_stream_stalled", seconds=STALL_SECONDS)
                    return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
