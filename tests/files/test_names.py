"""No name, however hostile, yields a key outside its session's prefix."""

from __future__ import annotations

import unicodedata
import uuid

from hypothesis import given
from hypothesis import strategies as st

from session_service.files.names import MAX_NAME_LENGTH, safe_name, session_prefix, storage_key

HOSTILE = st.one_of(
    st.text(max_size=6000),
    st.lists(st.sampled_from([*"./\\:%\x00\n\r\t *?<>|\"'~$", "..", "\u202e"])).map("".join),
    st.builds(lambda a, b: f"{a}/../../{b}", st.text(max_size=50), st.text(max_size=50)),
)


@given(st.uuids(version=4), st.uuids(version=4), HOSTILE)
def test_keys_never_leave_the_session_prefix(
    storage_id: uuid.UUID, file_id: uuid.UUID, name: str
) -> None:
    key = storage_key(storage_id, file_id, name)
    prefix = f"{session_prefix(storage_id)}{file_id}/"
    assert key.startswith(prefix)
    last = key[len(prefix) :]
    assert "/" not in last
    assert "\\" not in last
    assert last not in {"", ".", ".."}
    assert not last.startswith(".")
    assert 1 <= len(last) <= MAX_NAME_LENGTH
    assert all(unicodedata.category(char)[0] != "C" for char in last)
    assert last == unicodedata.normalize("NFKC", last)


@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=40))
def test_ordinary_names_keep_their_extension(stem: str) -> None:
    assert safe_name(f"{stem}.PDF").endswith(".pdf")


def test_examples() -> None:
    assert safe_name("../../etc/passwd.pdf") == "etc_passwd.pdf"
    assert safe_name("Quarterly report (final).pdf") == "Quarterly_report_(final).pdf"
    assert safe_name("résumé.pdf") == "résumé.pdf"
    assert safe_name("...") == "file"
    assert safe_name("x" * 5000 + ".pdf") == "x" * (MAX_NAME_LENGTH - 4) + ".pdf"
    assert safe_name("ﬁle.pdf") == "file.pdf"  # NFKC folds the ligature
