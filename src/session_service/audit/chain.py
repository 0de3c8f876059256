"""The tamper-evident hash chain over audit events.

Canonical form of an event (one line): JSON, UTF-8, keys sorted, no whitespace, with
`id` (integer), `occurred_at` (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC), `type`, `session_id`
(lower-case UUID or null), `request_id`, `client_ip`, `user_agent`, `outcome` and
`details` (keys sorted at every depth). A batch's digest is the lower-case hex SHA-256 of

    previous_digest + "\\n" + canonical(event_1) + "\\n" + ... + canonical(event_n)

where `previous_digest` is the preceding batch's digest, or 64 zeros for the first batch,
and the events are the batch's, in chain order (`chain_repository.chain_key`, then id).
Anyone with a database dump can recompute it (see README).

`canonical` and `batch_digest` are that recipe as written, for any mapping of an event's
values. The sealer and `verify_chain` read a million events at a time, so they use
`canonical_lines` and `lines_digest` instead: the same bytes (tests/audit/test_chain_fixture.py
holds a chain sealed by the recipe, and tests/audit/test_canonical_lines.py compares the two
on generated events), built without a document dict, a re-sorted top level, a new JSON
encoder per event or a hash update per line.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from json import encoder as _json_encoder
from typing import Any

GENESIS = "0" * 64
FIELDS = (
    "id",
    "occurred_at",
    "type",
    "session_id",
    "request_id",
    "client_ip",
    "user_agent",
    "outcome",
    "details",
)


def _timestamp(value: datetime | str) -> str:
    # A dump read without type conversion (SQLite) holds ISO text; naive values are UTC.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(event: Mapping[Any, Any]) -> bytes:
    """The canonical JSON line of one event."""
    details = event["details"]
    if isinstance(details, str):  # SQLite returns JSON text when read raw
        details = json.loads(details)
    session_id = event["session_id"]
    document = {
        "id": int(event["id"]),
        "occurred_at": _timestamp(event["occurred_at"]),
        "type": event["type"],
        "session_id": None if session_id is None else str(uuid.UUID(str(session_id))),
        "request_id": event["request_id"],
        "client_ip": event["client_ip"],
        "user_agent": event["user_agent"],
        "outcome": event["outcome"],
        "details": details,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def batch_digest(previous: str, events: Iterable[Mapping[Any, Any]]) -> str:
    """The digest of a batch of events, chained to the previous batch's digest."""
    hasher = hashlib.sha256(previous.encode())
    for event in events:
        hasher.update(b"\n")
        hasher.update(canonical(event))
    return hasher.hexdigest()


# What `json.dumps(..., ensure_ascii=False)` quotes a string with (C when available).
_quote: Callable[[str], str] = _json_encoder.encode_basestring
# `json.loads`'s own scanner, called without its wrapper: the same values.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_DETAILS = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# The C encoder that `_DETAILS.encode` builds on every call, built once (no circular check:
# the values come from parsed JSON; the output is the same). Called as (value, 0), it
# returns the text in chunks.
_c_encoder = getattr(_json_encoder, "c_make_encoder", None)
_encode: Callable[[Any, int], Sequence[str]] = (
    (lambda value, _: [_DETAILS.encode(value)])
    if _c_encoder is None
    else _c_encoder(None, _DETAILS.default, _quote, None, ":", ",", True, False, True)
)


def _stamp(moment: datetime | str) -> str:
    """`_timestamp` of a datetime, or of PostgreSQL's text of one with a year below 1000
    (four digits there; `strftime` writes the platform's way, as the recipe does)."""
    return _timestamp(datetime.fromisoformat(moment) if isinstance(moment, str) else moment)


def _parse(text: str | None) -> Any:
    """`details` as `json.loads` reads it (None for SQL NULL), when the scanner alone can't."""
    return None if text is None else json.loads(text)


def canonical_lines(rows: Iterable[Sequence[Any]]) -> list[str]:
    """The canonical lines (as text) of events read as the chain reads them.

    Each row is (chain key, id, occurred_at, type, session_id, request_id, client_ip,
    user_agent, outcome, details), as `chain_repository.AuditChainRepository.chain_rows`
    returns them: `occurred_at` a datetime or already its canonical text (PostgreSQL
    formats it), `session_id` a UUID or its lower-case text, `details` its JSON text. The
    top-level keys are written in their sorted order by hand, strings quoted as `json.dumps`
    quotes them, `details` parsed and written by `json`'s own scanner and encoder.
    """
    quote, scan, encode, join = _quote, _scan, _encode, "".join
    lines: list[str] = []
    append = lines.append
    for (
        _,
        event_id,
        moment,
        kind,
        session_id,
        request_id,
        client_ip,
        agent,
        outcome,
        details,
    ) in rows:
        if moment.__class__ is not str or moment[0] == "0":  # a datetime, or a year < 1000
            moment = _stamp(moment)
        try:
            value, end = scan(details, 0)
            if end != len(details):  # trailing whitespace: json.loads skips it
                value = _parse(details)
        except (StopIteration, TypeError):  # leading whitespace, not JSON, or NULL
            value = _parse(details)
        session = "null" if session_id is None else f'"{session_id}"'
        append(
            f'{{"client_ip":{"null" if client_ip is None else quote(client_ip)},'
            f'"details":{join(encode(value, 0))},"id":{event_id},"occurred_at":"{moment}",'
            f'"outcome":{"null" if outcome is None else quote(outcome)},'
            f'"request_id":{"null" if request_id is None else quote(request_id)},'
            f'"session_id":{session},'
            f'"type":{"null" if kind is None else quote(kind)},'
            f'"user_agent":{"null" if agent is None else quote(agent)}}}'
        )
    return lines


def lines_digest(previous: str, lines: list[str]) -> str:
    """`batch_digest` over canonical lines already made: one hash update for the batch."""
    return hashlib.sha256("\n".join([previous, *lines]).encode()).hexdigest()
