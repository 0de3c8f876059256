"""Storage keys are made of server ids only: no file name, however hostile, reaches one."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from session_service.files.names import object_ref, session_prefix, storage_key


@given(st.uuids(version=4), st.uuids(version=4))
def test_a_key_is_the_session_prefix_and_the_file_id(
    storage_id: uuid.UUID, file_id: uuid.UUID
) -> None:
    assert storage_key(storage_id, file_id) == f"uploads/{storage_id}/{file_id}"
    assert storage_key(storage_id, file_id).startswith(session_prefix(storage_id))


def test_object_refs_cut_keys_of_the_older_layout_to_their_ids() -> None:
    sid, fid = uuid.uuid4(), uuid.uuid4()
    assert object_ref(f"uploads/{sid}/{fid}/Medical_Report_Jane.pdf") == f"uploads/{sid}/{fid}"
    assert object_ref(f"uploads/{sid}/{fid}") == f"uploads/{sid}/{fid}"
    assert object_ref(f"uploads/{sid}/{fid}/a/b/c.pdf") == f"uploads/{sid}/{fid}"
