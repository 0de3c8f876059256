"""The session id and token format, checked over generated inputs."""

from __future__ import annotations

import hashlib
import uuid

from hypothesis import given
from hypothesis import strategies as st

from session_service.core.ids import (
    new_session_id,
    new_token,
    parse_session_id,
    parse_token,
    token_digest,
)


@given(st.uuids(version=4))
def test_every_uuid4_is_accepted_in_either_case(value: uuid.UUID) -> None:
    assert parse_session_id(str(value)) == value
    assert parse_session_id(str(value).upper()) == value


@given(st.uuids().filter(lambda value: value.version != 4))
def test_other_versions_are_refused(value: uuid.UUID) -> None:
    assert parse_session_id(str(value)) is None


@given(st.text(max_size=80))
def test_arbitrary_text_never_raises_and_only_canonical_forms_pass(raw: str) -> None:
    parsed = parse_session_id(raw)
    if parsed is not None:
        assert str(parsed) == raw.lower()
        assert parsed.version == 4


@given(st.uuids(version=4), st.sampled_from([" ", "\t", "{", "}", "urn:uuid:"]))
def test_decorated_forms_are_refused(value: uuid.UUID, extra: str) -> None:
    assert parse_session_id(extra + str(value)) is None
    assert parse_session_id(str(value) + extra) is None
    assert parse_session_id(str(value).replace("-", "")) is None


def test_generated_ids_are_uuid4_and_parse() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(parse_session_id(str(value)) == value for value in ids)


def test_generated_tokens_are_uuid4_and_parse() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(value.version == 4 and parse_token(str(value)) == value for value in tokens)


@given(st.uuids(version=4))
def test_a_token_digest_is_the_sha256_of_its_canonical_form(value: uuid.UUID) -> None:
    digest = token_digest(value)
    assert digest == hashlib.sha256(str(value).lower().encode()).hexdigest()
    # Either letter case names the same token, hence the same digest.
    parsed = parse_token(str(value).upper())
    assert parsed is not None
    assert token_digest(parsed) == digest
    assert str(value) not in digest
