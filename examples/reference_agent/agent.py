"""A reference agent: answers every new visitor message of one session with a rule-based reply.

It talks to the service only through the client generated from openapi.json
(`make agent-client`) and a service key, so the whole loop runs locally (README.md beside
this file):

    SERVICE_API_KEY=<key> python examples/reference_agent/agent.py --session <public id>

Every `--interval` seconds it lists the session's conversations and reads, oldest first,
what came after the last `seq` it has seen (`?after=`), then answers each `user` message.
A reply's `client_message_id` is `reply-to-<message id>`: the service stores it once, so
a restarted agent (which reads from the start again) or a retried request adds no second
reply.
"""

from __future__ import annotations

import argparse
import operator
import os
import re
import sys
import time
from datetime import UTC, datetime
from http import HTTPStatus
from uuid import UUID

import httpx

try:
    from session_service_client import AuthenticatedClient
    from session_service_client.api.service import (
        service_add_message,
        service_list_conversations,
        service_list_messages,
    )
    from session_service_client.models import (
        AgentMessageCreate,
        AgentMessageCreateMetadataType0,
        ConversationList,
        MessagePage,
        MessageRead,
        Problem,
        ProblemCode,
        Role,
    )
except ModuleNotFoundError as missing:  # the client is generated, not committed
    sys.exit(f"{missing}: generate the client first with `make agent-client`")

PAGE = 200  # the service's largest page
NAME = "reference-agent"
SUM = re.compile(r"(-?\d+(?:\.\d+)?)\s*([-+*/x])\s*(-?\d+(?:\.\d+)?)")
OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "x": operator.mul}
# The session is gone, ended or full, or the key is refused: polling again will not help.
FATAL = {
    ProblemCode.SESSION_NOT_FOUND,
    ProblemCode.SESSION_INACTIVE,
    ProblemCode.CONVERSATION_LIMIT_REACHED,
    ProblemCode.UNAUTHORIZED,
    ProblemCode.FORBIDDEN,
    ProblemCode.AUTH_NOT_CONFIGURED,
}


class Refused(Exception):
    """The service answered with a problem (or an answer the client does not know)."""

    def __init__(self, answer: Problem | None) -> None:
        self.code = answer.code if answer is not None else None
        super().__init__(f"{answer.code}: {answer.detail}" if answer else "unexpected answer")


def reply_to(text: str) -> str:
    """The agent's "model": a sum, a greeting, the time, or an echo."""
    lowered = text.lower()
    if found := SUM.search(lowered):
        a, sign, b = float(found[1]), found[2], float(found[3])
        if sign == "/":
            if b == 0:
                return "I cannot divide by zero."
            value = a / b
        else:
            value = OPERATORS[sign](a, b)
        shown = int(value) if value.is_integer() else round(value, 6)
        return f"{found[1]} {sign} {found[3]} = {shown}"
    if re.search(r"\b(hello|hi|hey)\b", lowered):
        return "Hello! Ask me a sum like 2+2, or the time; anything else I repeat."
    if "time" in lowered:
        return f"It is {datetime.now(UTC):%H:%M} UTC."
    return f"You said: {text[:500]}"  # well under MESSAGE_MAX_CHARS


class Agent:
    """Follows one session's conversations and answers their new `user` messages."""

    def __init__(self, client: AuthenticatedClient, session_id: UUID) -> None:
        self.client = client
        self.session_id = session_id
        self.seen: dict[UUID, int] = {}  # conversation id -> last `seq` read

    def round(self) -> int:
        """One poll of every conversation; the number of replies sent."""
        listed = service_list_conversations.sync(self.session_id, client=self.client)
        if not isinstance(listed, ConversationList):
            raise Refused(listed)
        sent = 0
        for conversation in listed.conversations:
            if conversation.last_seq > self.seen.get(conversation.id, 0):
                sent += self._follow(conversation.id)
        return sent

    def _follow(self, conversation_id: UUID) -> int:
        sent = 0
        while True:
            page = service_list_messages.sync(
                self.session_id,
                conversation_id,
                client=self.client,
                after=self.seen.get(conversation_id, 0),
                limit=PAGE,
            )
            if isinstance(page, Problem) and page.code == ProblemCode.CONVERSATION_NOT_FOUND:
                self.seen.pop(conversation_id, None)  # deleted since the listing
                return sent
            if not isinstance(page, MessagePage):
                raise Refused(page)
            for message in page.messages:
                if message.role == Role.USER:
                    self._answer(conversation_id, message)
                    sent += 1
                self.seen[conversation_id] = message.seq
            if len(page.messages) < PAGE:
                return sent

    def _answer(self, conversation_id: UUID, message: MessageRead) -> None:
        metadata = AgentMessageCreateMetadataType0.from_dict(
            {"agent": NAME, "in_reply_to": str(message.id)}
        )
        body = AgentMessageCreate(
            role=Role.ASSISTANT,
            content=reply_to(message.content),
            client_message_id=f"reply-to-{message.id}",
            metadata=metadata,
        )
        answer = service_add_message.sync_detailed(
            self.session_id, conversation_id, client=self.client, body=body
        )
        stored = answer.parsed
        if not isinstance(stored, MessageRead):
            raise Refused(stored)
        # 201: a new reply; 200: this message had been answered (by an earlier run).
        done = "answered" if answer.status_code == HTTPStatus.CREATED else "already answered"
        print(f"{conversation_id}: #{message.seq} {done} by #{stored.seq}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Answer a session's new visitor messages.")
    parser.add_argument("--session", type=UUID, required=True, help="the session's public id")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--once", action="store_true", help="one poll, then exit")
    args = parser.parse_args(argv)
    key = os.environ.get("SERVICE_API_KEY")
    if not key:
        parser.error("set SERVICE_API_KEY to one of the service's SERVICE_API_KEYS")
    client = AuthenticatedClient(base_url=args.base_url, token=key, timeout=httpx.Timeout(10))
    agent = Agent(client, args.session)
    with client:
        while True:
            try:
                agent.round()
            except (Refused, httpx.TransportError) as error:
                print(f"poll failed: {error}", file=sys.stderr, flush=True)
                if args.once or (isinstance(error, Refused) and error.code in FATAL):
                    return 1
            if args.once:
                return 0
            time.sleep(args.interval)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
