"""The LangChain adapter against a live service: a session's conversation as a LangChain
chat message history (session_service.integrations.langchain)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from session_service.integrations import langchain as adapter
from session_service.integrations.langchain import SessionChatMessageHistory, SessionServiceError
from tests.integrations.conftest import Visitor


def _history(visitor: Visitor, **options: Any) -> SessionChatMessageHistory:
    return SessionChatMessageHistory(
        visitor.live.base_url,
        visitor.live.key,
        session_id=visitor.session_id,
        conversation_id=visitor.conversation_id,
        **options,
    )


def _shape(messages: list[BaseMessage]) -> list[tuple[str, str | list[str | dict[Any, Any]]]]:
    return [(message.type, message.content) for message in messages]


def test_add_get_clear_round_trip(visitor: Visitor) -> None:
    history = _history(visitor)
    assert history.messages == []
    history.add_messages(
        [
            SystemMessage("You are terse."),
            HumanMessage("What is the capital of France?"),
            AIMessage("Paris."),
        ]
    )
    history.add_user_message("And of Italy?")
    history.add_ai_message("Rome.")
    expected = [
        ("system", "You are terse."),
        ("human", "What is the capital of France?"),
        ("ai", "Paris."),
        ("human", "And of Italy?"),
        ("ai", "Rome."),
    ]
    assert _shape(history.messages) == expected
    # The same conversation the visitor's browser reads.
    assert [(m["role"], m["content"]) for m in visitor.history()] == [
        ("system", "You are terse."),
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
        ("user", "And of Italy?"),
        ("assistant", "Rome."),
    ]
    history.clear()
    assert history.messages == []
    assert visitor.conversations() == []
    history.clear()  # already gone: nothing to do
    with pytest.raises(SessionServiceError) as refused:
        history.add_user_message("Anyone there?")
    assert (refused.value.status, refused.value.code) == (404, "conversation_not_found")
    assert refused.value.request_id


def test_roles_map_both_ways(visitor: Visitor) -> None:
    history = _history(visitor)
    call = {"name": "weather", "args": {"city": "Oslo"}, "id": "call-1", "type": "tool_call"}
    written: list[BaseMessage] = [
        SystemMessage("Use the tools."),
        HumanMessage([{"type": "text", "text": "Weather "}, "in Oslo?"], name="ada"),
        AIMessage("", tool_calls=[call]),  # a tool call with no text
        ToolMessage("-3 C", tool_call_id="call-1"),
        ToolMessage("timeout", tool_call_id="call-2", status="error"),
        AIMessage("It is -3 C in Oslo."),
        ChatMessage(content="Noted.", role="ai"),
    ]
    history.add_messages(written)

    stored = visitor.history()
    assert [m["role"] for m in stored] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "assistant",
    ]
    assert stored[1]["content"] == "Weather in Oslo?"
    assert stored[1]["metadata"] == {"name": "ada"}
    assert stored[2]["content"] == "[calls weather]"  # what a browser shows for it
    assert stored[2]["metadata"] == {"tool_calls": [call], "empty_content": True}
    assert stored[3]["metadata"] == {"tool_call_id": "call-1"}
    assert stored[4]["metadata"] == {"tool_call_id": "call-2", "status": "error"}

    read = history.messages
    assert [type(m) for m in read] == [
        SystemMessage,
        HumanMessage,
        AIMessage,
        ToolMessage,
        ToolMessage,
        AIMessage,
        AIMessage,
    ]
    assert [m.id for m in read] == [m.id for m in written]
    human, calling, tool, failed = read[1], read[2], read[3], read[4]
    assert (human.content, human.name) == ("Weather in Oslo?", "ada")
    assert isinstance(calling, AIMessage)
    assert calling.content == ""
    assert calling.tool_calls == [call]
    assert isinstance(tool, ToolMessage)
    assert (tool.content, tool.tool_call_id, tool.status) == ("-3 C", "call-1", "success")
    assert isinstance(failed, ToolMessage)
    assert (failed.tool_call_id, failed.status) == ("call-2", "error")

    # Written by others through the API (the browser, another service) reads the same way.
    with visitor.live.service() as service:
        added = service.post(
            f"/api/v1/sessions/{visitor.session_id}/conversations/{visitor.conversation_id}"
            "/messages",
            json={"role": "tool", "content": "42", "metadata": {"tool_call_id": "t-9"}},
        )
    assert added.status_code == 201, added.text
    by_browser = visitor.send("Thanks!")
    *_, tool_result, thanks = history.messages
    assert isinstance(tool_result, ToolMessage)
    assert (tool_result.content, tool_result.tool_call_id) == ("42", "t-9")
    assert tool_result.id == added.json()["id"]  # no client_message_id: the service's id
    assert isinstance(thanks, HumanMessage)
    assert (thanks.content, thanks.id) == ("Thanks!", by_browser["id"])

    # A message with no role in a conversation is refused before anything is sent.
    count = len(visitor.history())
    with pytest.raises(ValueError, match="FunctionMessage"):
        history.add_messages([HumanMessage("first"), FunctionMessage(content="x", name="f")])
    assert len(visitor.history()) == count


def test_a_retried_add_stores_each_message_once(visitor: Visitor) -> None:
    history = _history(visitor)
    turn: list[BaseMessage] = [
        HumanMessage("Hello"),  # no id: given one, on the object, before it is sent
        AIMessage("Hi!", id="lc_run--0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a-0"),
        AIMessage("Anything else?", id="an id the service would refuse: spaces, ü, " + "x" * 80),
    ]
    history.add_messages(turn)
    history.add_messages(turn)  # the retry after a timeout
    _history(visitor).add_messages(turn)  # another history object, same messages
    assert [m["content"] for m in visitor.history()] == ["Hello", "Hi!", "Anything else?"]
    assert turn[0].id is not None
    assert visitor.history()[0]["client_message_id"] == turn[0].id
    assert visitor.history()[2]["client_message_id"].startswith("lc-")
    # Messages read back carry their client_message_id: adding them again adds nothing.
    history.add_messages(history.messages)
    assert len(visitor.history()) == 3
    # A new message with the same text is a new message.
    history.add_messages([HumanMessage("Hello")])
    assert [m["content"] for m in visitor.history()][-1] == "Hello"
    assert len(visitor.history()) == 4


async def test_the_async_methods(visitor: Visitor) -> None:
    history = _history(visitor)
    turn: list[BaseMessage] = [HumanMessage("ping"), AIMessage("pong")]
    await history.aadd_messages(turn)
    await history.aadd_messages(turn)
    assert _shape(await history.aget_messages()) == [("human", "ping"), ("ai", "pong")]
    await history.aclear()
    assert await history.aget_messages() == []
    assert visitor.conversations() == []


def test_pages_and_the_newest_only(visitor: Visitor, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads follow the pages (two messages a page here) in both directions."""
    monkeypatch.setattr(adapter, "PAGE", 2)
    history = _history(visitor)
    history.add_messages([HumanMessage(f"m{n}") for n in range(5)])
    assert [m.content for m in history.messages] == ["m0", "m1", "m2", "m3", "m4"]
    assert [m.content for m in _history(visitor, max_messages=3).messages] == ["m2", "m3", "m4"]
    assert [m.content for m in _history(visitor, max_messages=9).messages] == [
        "m0",
        "m1",
        "m2",
        "m3",
        "m4",
    ]


def test_refusals_raise(visitor: Visitor) -> None:
    wrong_key = SessionChatMessageHistory(
        visitor.live.base_url,
        "svc-" + "w" * 40,
        session_id=visitor.session_id,
        conversation_id=visitor.conversation_id,
    )
    with pytest.raises(SessionServiceError) as refused:
        _ = wrong_key.messages
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    too_long = _history(visitor)
    with pytest.raises(SessionServiceError) as limited:
        too_long.add_user_message("x" * 40_000)
    assert limited.value.code == "message_too_long"


# RunnableWithMessageHistory is deprecated from langchain-core 1.3.3 on (for LangGraph's
# persistence) but is still the way a LangChain runnable takes a BaseChatMessageHistory.
@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
def test_a_langchain_chain_keeps_its_memory_in_the_conversation(visitor: Visitor) -> None:
    """Two turns, each with a history object of its own (as two requests to an agent
    backend): the second answer needs the first turn, which only the service kept."""

    def model(prompt: PromptValue) -> AIMessage:
        said = [m.content for m in prompt.to_messages() if isinstance(m, HumanMessage)]
        names = [str(s).removeprefix("My name is ") for s in said if str(s).startswith("My name")]
        if said[-1] == "What is my name?":
            return AIMessage(f"You are {names[-1]}." if names else "I do not know.")
        return AIMessage(f"Noted ({len(said)} messages from you so far).")

    prompt = ChatPromptTemplate.from_messages(
        [("system", "You remember names."), MessagesPlaceholder("history"), ("human", "{q}")]
    )
    chain = RunnableWithMessageHistory(
        prompt | RunnableLambda(model),
        lambda conversation_id: SessionChatMessageHistory(
            visitor.live.base_url,
            visitor.live.key,
            session_id=visitor.session_id,
            conversation_id=conversation_id,
        ),
        input_messages_key="q",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": visitor.conversation_id}}
    first = chain.invoke({"q": "My name is Ada"}, config=config)
    second = chain.invoke({"q": "What is my name?"}, config=config)
    assert (first.content, second.content) == (
        "Noted (1 messages from you so far).",
        "You are Ada.",
    )
    assert [(m["role"], m["content"]) for m in visitor.history()] == [
        ("user", "My name is Ada"),
        ("assistant", "Noted (1 messages from you so far)."),
        ("user", "What is my name?"),
        ("assistant", "You are Ada."),
    ]


def test_the_adapter_loads_nothing_of_the_server() -> None:
    """An agent backend imports httpx and langchain-core, not FastAPI or SQLAlchemy."""
    probe = (
        "import sys, session_service.integrations.langchain as _;"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'fastapi', 'starlette', 'sqlalchemy', 'sqlmodel', 'asyncpg', 'uvicorn'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
