"""`canonical_lines` writes exactly the recipe's lines (`canonical`), whatever the values.

The sealer and verify build lines by hand from rows as the database hands them over; the
README's recipe (`canonical`) is the definition. Generated events cover every shape of
value: any text (control characters, quotes, non-ASCII, astral characters), large and
negative integers, floats, nesting, null columns, `details` in either stored form.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from session_service.audit.chain import (
    batch_digest,
    canonical,
    canonical_lines,
    lines_digest,
)

TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
EVENTS = st.fixed_dictionaries(
    {
        "id": st.integers(min_value=1, max_value=2**63 - 1),
        "occurred_at": st.datetimes(),
        "type": TEXT,
        "session_id": st.none() | st.uuids(),
        "request_id": st.none() | TEXT,
        "client_ip": st.none() | TEXT,
        "user_agent": st.none() | TEXT,
        "outcome": TEXT,
        # Objects, as the service writes; a top-level string the recipe would read as JSON
        # text once more (`canonical` takes text for details), so none is generated.
        "details": JSON.filter(lambda value: not isinstance(value, str)),
    }
)
# How `details` comes back: SQLite's JSON text (as SQLAlchemy wrote it), PostgreSQL's
# jsonb text, or surrounded by whitespace (only `json.loads` takes that).
STORED = st.sampled_from(
    [
        json.dumps,
        lambda value: json.dumps(value, separators=(", ", ": "), ensure_ascii=False),
        lambda value: " \n" + json.dumps(value) + "\t ",
    ]
)


def _row(event: dict[str, Any], stored: Any, postgres: bool) -> tuple[Any, ...]:
    """The event as `chain_rows` returns it on either backend."""
    moment = event["occurred_at"].replace(tzinfo=UTC)
    session_id = event["session_id"]
    return (
        event["id"],
        event["id"],
        # PostgreSQL's to_char: always four digits for the year
        event["occurred_at"].isoformat(timespec="microseconds") + "Z" if postgres else moment,
        event["type"],
        str(session_id) if postgres and session_id else session_id,
        event["request_id"],
        event["client_ip"],
        event["user_agent"],
        event["outcome"],
        stored(event["details"]),
    )


@settings(max_examples=300, deadline=None)
@given(events=st.lists(EVENTS, min_size=1, max_size=5), stored=STORED, postgres=st.booleans())
def test_lines_are_the_recipes(events: list[dict[str, Any]], stored: Any, postgres: bool) -> None:
    lines = canonical_lines([_row(event, stored, postgres) for event in events])
    recipe = [canonical({**event, "occurred_at": event["occurred_at"]}) for event in events]
    assert [line.encode() for line in lines] == recipe
    assert lines_digest("a" * 64, lines) == batch_digest("a" * 64, events)


def test_null_details_and_a_naive_time_are_read_as_the_recipe_reads_them() -> None:
    event = {
        "id": 7,
        "occurred_at": datetime(2026, 1, 15, 9, 30),
        "type": "session.created",
        "session_id": uuid.UUID(int=1),
        "request_id": None,
        "client_ip": None,
        "user_agent": None,
        "outcome": "success",
        "details": None,
    }
    row = (7, *event.values())
    [line] = canonical_lines([row])
    assert line.encode() == canonical(event)
    assert lines_digest("0" * 64, []) == batch_digest("0" * 64, [])
