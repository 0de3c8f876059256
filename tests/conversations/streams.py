"""Reading Server-Sent Events in tests: frames as they arrive, in process or over HTTP.

httpx's ASGI transport collects a whole answer before returning it, so a stream that never
ends would never come back: `open_stream` drives the app itself (the ASGI messages a
server would exchange) and hands over the body as it is sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Message

from tests.helpers import Running


@dataclass
class Frame:
    """One SSE frame: an event, a `retry`, or a comment (a heartbeat)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        assert self.event == "message", self
        assert self.data is not None
        body: dict[str, Any] = json.loads(self.data)
        return body


def parse_frame(raw: str) -> Frame:
    frame = Frame()
    for line in raw.split("\n"):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            frame.comments.append(value)
        elif name == "id":
            frame.id = value
        elif name == "event":
            frame.event = value
        elif name == "data":
            frame.data = value if frame.data is None else f"{frame.data}\n{value}"
        elif name == "retry":
            frame.retry = int(value)
    return frame


class FrameReader:
    """Frames from a body that arrives in chunks."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.ended = False

    async def frame(self, within: float = 10) -> Frame | None:
        """The next frame; None once the server has ended the stream."""
        async with asyncio.timeout(within):
            while b"\n\n" not in self._buffer:
                try:
                    self._buffer += await anext(self._chunks)
                except StopAsyncIteration:
                    self.ended = True
                    return None
        raw, self._buffer = self._buffer.split(b"\n\n", 1)
        return parse_frame(raw.decode())

    async def messages(self, count: int, within: float = 10) -> list[dict[str, Any]]:
        """The next `count` events (heartbeats skipped)."""
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(within):
            while len(found) < count:
                frame = await self.frame(within)
                assert frame is not None, f"the stream ended after {found}"
                if frame.event is not None:
                    found.append(frame.message())
        return found

    async def until_end(self, within: float = 10) -> list[Frame]:
        """Every frame until the server ends the stream."""
        frames: list[Frame] = []
        async with asyncio.timeout(within):
            while (frame := await self.frame(within)) is not None:
                frames.append(frame)
        return frames


@dataclass
class Opened:
    """An answer whose head has arrived; its body is read through `reader`."""

    status: int
    headers: dict[str, str]
    reader: FrameReader
    task: asyncio.Task[None]
    """The app handling the request (done once it has returned)."""

    async def json(self) -> dict[str, Any]:
        """The whole body of a refusal, as JSON."""
        body = b""
        async for chunk in self.reader._chunks:
            body += chunk
        parsed: dict[str, Any] = json.loads(body)
        return parsed


@asynccontextmanager
async def open_stream(
    app: Running, target: str, headers: dict[str, str], *, reads: int | None = None
) -> AsyncIterator[Opened]:
    """GET `target` from the app as a server would; leaving the block disconnects.

    `reads`: the client takes that many body writes, then stops reading (every later
    write waits, as on a connection whose buffers are full)."""
    sent: asyncio.Queue[Message] = asyncio.Queue()
    gone = asyncio.Event()
    asked = False
    taken = 0

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal taken
        if message["type"] == "http.response.body":
            taken += 1
            if reads is not None and taken > reads:
                await asyncio.Event().wait()  # never read
        await sent.put(message)

    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    task = asyncio.create_task(app(scope, receive, send))
    start = await asyncio.wait_for(sent.get(), 10)
    assert start["type"] == "http.response.start", start

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            message = await sent.get()
            yield message.get("body", b"")
            if not message.get("more_body", False):
                return

    opened = Opened(
        status=start["status"],
        headers={name.decode(): value.decode() for name, value in start["headers"]},
        reader=FrameReader(chunks()),
        task=task,
    )
    try:
        yield opened
    finally:
        gone.set()
        await asyncio.wait_for(asyncio.shield(task), 10)
