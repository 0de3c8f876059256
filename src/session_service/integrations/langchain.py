"""A LangChain chat message history kept in a session's conversation, over the service API.

`pip install 'session-service[langchain]'`, then give a LangChain agent the conversation
as its memory (a service key, the session's public id, the conversation's id)::

    history = SessionChatMessageHistory(
        "http://127.0.0.1:8000", api_key, session_id=session_id, conversation_id=conversation_id
    )
    context = history.messages  # oldest first, as LangChain messages
    history.add_messages([reply])  # stored once, however often it is retried

Roles map both ways: `user` is a `HumanMessage`, `assistant` an `AIMessage` (its
`tool_calls` in the message's metadata), `system` a `SystemMessage`, `tool` a
`ToolMessage` (its `tool_call_id` in the metadata). A message read back has the
`client_message_id` it was stored with as its `id` (the service's own id when it has none).

- Adding is idempotent: each message is sent with a `client_message_id` made from its `id`
  (a message without one is given a random one first, on the object itself), so adding the
  same messages again, after a timeout say, stores each of them once.
- The conversation holds text: the text parts of a message's content are stored, other
  parts (images, reasoning) are not. A message with no text (an `AIMessage` that only
  calls tools) is stored with a placeholder and reads back empty.
- `clear()` deletes the conversation and every message in it, for good; a history whose
  conversation is gone (cleared, or deleted by the visitor) reads as empty and refuses
  additions (`conversation_not_found`). Other refusals raise `SessionServiceError`.

It imports httpx and langchain-core only, so an agent backend loads nothing of the server.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Generator, Sequence
from typing import Any

import httpx

try:
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        ChatMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )
except ModuleNotFoundError as missing:  # pragma: no cover - the extra is not installed
    raise ModuleNotFoundError(
        f"{missing.msg}: install the extra: pip install 'session-service[langchain]'",
        name=missing.name,
    ) from missing

__all__ = ["SessionChatMessageHistory", "SessionServiceError", "from_service", "to_service"]

PAGE = 200  # the service's largest page
CLIENT_MESSAGE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Ids the service would refuse as a client_message_id are mapped into this namespace.
ID_NAMESPACE = uuid.UUID("5e55104e-1a6c-4c1d-9b2e-6c0f1a2b3c4d")
EMPTY = "empty_content"  # metadata flag: the stored text is a placeholder for ""
CHAT_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant"}
CHAT_ROLES |= {"system": "system", "tool": "tool"}

Json = dict[str, Any]
Query = dict[str, int]


class SessionServiceError(Exception):
    """The service refused a call: the status and problem `code` it answered."""

    def __init__(self, status: int, code: str, detail: str, request_id: str | None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.request_id = request_id


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {}
    raise SessionServiceError(
        response.status_code,
        str(problem.get("code", f"http_{response.status_code}")),
        str(problem.get("detail", response.reason_phrase)),
        response.headers.get("X-Request-ID"),
    )


def _missing(error: SessionServiceError) -> bool:
    return error.status == 404 and error.code == "conversation_not_found"


def _text(content: str | list[str | dict[Any, Any]]) -> str:
    if isinstance(content, str):
        return content
    parts = [
        block if isinstance(block, str) else block.get("text", "")
        for block in content
        if isinstance(block, str) or block.get("type") == "text"
    ]
    return "".join(part for part in parts if isinstance(part, str))


def to_service(message: BaseMessage) -> Json:
    """The API's body for a LangChain message: role, text, metadata, client_message_id."""
    metadata: Json = {}
    if isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
        if message.tool_calls:
            metadata["tool_calls"] = [dict(call) for call in message.tool_calls]
    elif isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, ToolMessage):
        role = "tool"
        metadata["tool_call_id"] = message.tool_call_id
        if message.status != "success":
            metadata["status"] = message.status
    elif isinstance(message, ChatMessage) and message.role in CHAT_ROLES:
        role = CHAT_ROLES[message.role]
    else:
        raise ValueError(f"a {type(message).__name__} has no role in a conversation")
    if message.name:
        metadata["name"] = message.name
    content = _text(message.content)
    if not content:
        metadata[EMPTY] = True
        calls = metadata.get("tool_calls", [])
        content = f"[calls {', '.join(call['name'] for call in calls)}]" if calls else "[empty]"
    if message.id is None:
        message.id = str(uuid.uuid4())  # kept on the message, so a retry sends the same id
    client_id = message.id
    if not CLIENT_MESSAGE_ID.fullmatch(client_id):
        client_id = f"lc-{uuid.uuid5(ID_NAMESPACE, client_id)}"
    return {
        "role": role,
        "content": content,
        "client_message_id": client_id,
        "metadata": metadata or None,
    }


def from_service(message: Json) -> BaseMessage:
    """The LangChain message for a stored one (`MessageRead`)."""
    metadata: Json = message.get("metadata") or {}
    content = "" if metadata.get(EMPTY) is True else str(message["content"])
    common: Json = {"content": content, "id": message.get("client_message_id") or message["id"]}
    if isinstance(metadata.get("name"), str):
        common["name"] = metadata["name"]
    role = message["role"]
    if role == "user":
        return HumanMessage(**common)
    if role == "assistant":
        calls = metadata.get("tool_calls")
        return AIMessage(**common, tool_calls=calls if isinstance(calls, list) else [])
    if role == "system":
        return SystemMessage(**common)
    if role == "tool":
        call_id = str(metadata.get("tool_call_id", ""))
        if metadata.get("status") == "error":
            return ToolMessage(**common, tool_call_id=call_id, status="error")
        return ToolMessage(**common, tool_call_id=call_id)
    raise ValueError(f"unknown role {role!r}")


class SessionChatMessageHistory(BaseChatMessageHistory):
    """A session's conversation as a LangChain chat message history (see the module's doc).

    `max_messages` reads only the newest that many (the model's context), still oldest
    first. Pass `client` / `async_client` to reuse connections (they are not closed here);
    otherwise each call opens its own.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        session_id: uuid.UUID | str,
        conversation_id: uuid.UUID | str,
        max_messages: int | None = None,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__()
        if max_messages is not None and max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        session = uuid.UUID(str(session_id))
        conversation = uuid.UUID(str(conversation_id))
        self.url = f"{base_url.rstrip('/')}/api/v1/sessions/{session}/conversations/{conversation}"
        self.max_messages = max_messages
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._client = client
        self._async_client = async_client

    # What to ask for, page by page: both the sync and the async reads drive this.
    def _reading(self) -> Generator[Query, Json, list[Json]]:
        found: list[Json] = []
        if self.max_messages is None:  # everything, oldest first
            after = 0
            while True:
                page = yield {"after": after, "limit": PAGE}
                found += page["messages"]
                if len(page["messages"]) < PAGE:
                    return found
                after = page["next_after"]
        query: Query = {}
        while len(found) < self.max_messages:  # the newest, newest first
            page = yield {**query, "limit": min(PAGE, self.max_messages - len(found))}
            found += page["messages"]
            if page["next_before"] is None:
                break
            query = {"before": page["next_before"]}
        return found[::-1]

    def _request(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        if self._client is not None:
            sent = self._client.request(method, self.url + path, headers=self._headers, **kwargs)
            return _checked(sent)
        with httpx.Client(timeout=self.timeout) as client:
            return _checked(
                client.request(method, self.url + path, headers=self._headers, **kwargs)
            )

    async def _arequest(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        url, headers = self.url + path, self._headers
        if self._async_client is not None:
            return _checked(
                await self._async_client.request(method, url, headers=headers, **kwargs)
            )
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            return _checked(await client.request(method, url, headers=headers, **kwargs))

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # a read-only property
        """The conversation's messages, oldest first ([] when it does not exist)."""
        reading = self._reading()
        try:
            query = next(reading)
            while True:
                query = reading.send(self._request("GET", "/messages", params=query).json())
        except StopIteration as done:
            return [from_service(message) for message in done.value]
        except SessionServiceError as error:
            if _missing(error):
                return []
            raise

    async def aget_messages(self) -> list[BaseMessage]:
        reading = self._reading()
        try:
            query = next(reading)
            while True:
                page = await self._arequest("GET", "/messages", params=query)
                query = reading.send(page.json())
        except StopIteration as done:
            return [from_service(message) for message in done.value]
        except SessionServiceError as error:
            if _missing(error):
                return []
            raise

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store each message in order, once (a retry adds nothing)."""
        for body in [to_service(message) for message in messages]:
            self._request("POST", "/messages", json=body)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        for body in [to_service(message) for message in messages]:
            await self._arequest("POST", "/messages", json=body)

    def clear(self) -> None:
        """Delete the conversation and its messages, for good."""
        try:
            self._request("DELETE")
        except SessionServiceError as error:
            if not _missing(error):
                raise

    async def aclear(self) -> None:
        try:
            await self._arequest("DELETE")
        except SessionServiceError as error:
            if not _missing(error):
                raise
