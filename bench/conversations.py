"""Conversation data for the benchmark: one conversation of 50 messages per session used.

The append and read-last-50 runs pick one of these at random per request, as a visitor
writing in (or reloading) their chat would.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from session_service.core.ids import token_digest

MESSAGES = 50


async def prepare(dsn: str, tokens: list[str]) -> list[str]:
    """A conversation of MESSAGES messages for each token's session; "token cid" lines."""
    conn = await asyncpg.connect(dsn)
    try:
        digests = {token_digest(uuid.UUID(token)): token for token in tokens}
        rows = await conn.fetch(
            "SELECT id, token_digest FROM sessions WHERE token_digest = any($1::text[])",
            list(digests),
        )
        now = datetime.now(UTC)
        conversations, messages, lines = [], [], []
        for row in rows:
            cid = uuid.uuid4()
            text = "Can you summarise the report I attached? " * 3
            conversations.append(
                (cid, row["id"], "bench", MESSAGES, MESSAGES, MESSAGES * len(text), now, now)
            )
            for seq in range(1, MESSAGES + 1):
                role = "user" if seq % 2 else "assistant"
                messages.append(
                    (uuid.uuid4(), cid, row["id"], seq, role, text, len(text), "[]", now)
                )
            lines.append(f"{digests[row['token_digest']]} {cid}")
        await conn.copy_records_to_table(
            "conversations",
            records=conversations,
            columns=[
                "id",
                "session_id",
                "title",
                "last_seq",
                "message_count",
                "message_bytes",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "messages",
            records=messages,
            columns=[
                "id",
                "conversation_id",
                "session_id",
                "seq",
                "role",
                "content",
                "content_bytes",
                "attachments",
                "created_at",
            ],
        )
        await conn.execute("VACUUM ANALYZE conversations")
        await conn.execute("VACUUM ANALYZE messages")
    finally:
        await conn.close()
    return lines
