"""Both stores keep the same contract (the S3 store's own edge cases: tests/storage)."""

from __future__ import annotations

from contextlib import aclosing

import pytest

from session_service.storage.base import READ_CHUNK, ObjectMissing, ObjectStore
from tests.files.helpers import PDF, put_directly
from tests.helpers import Running


async def _keys(store: ObjectStore, prefix: str) -> list[str]:
    return sorted([info.key async for info in store.list_prefix(prefix)])


class TestStoreContract:
    async def test_list_prefix_inspect_and_delete_many(self, app: Running) -> None:
        store: ObjectStore = app.resources.store
        keys = [f"uploads/s1/f{n}/a.pdf" for n in range(5)] + ["uploads/s2/f0/b.pdf"]
        for key in keys:
            await put_directly(app, key, PDF, "application/pdf")

        assert await _keys(store, "uploads/s1/") == keys[:5]
        listed = [info async for info in store.list_prefix("uploads/s2/")]
        assert [(info.key, info.size) for info in listed] == [(keys[5], len(PDF))]
        assert listed[0].last_modified.tzinfo is not None

        info = await store.inspect(keys[0], first_bytes=5)
        assert info is not None
        assert (info.size, info.content_type, info.first_bytes) == (
            len(PDF),
            "application/pdf",
            b"%PDF-",
        )
        assert await store.inspect("uploads/s1/none/x.pdf", first_bytes=5) is None

        await store.delete_many([*keys[:5], "uploads/absent/x.pdf"])
        assert await _keys(store, "uploads/s1/") == []
        assert await _keys(store, "uploads/") == [keys[5]]
        await store.delete_many([])
        await store.check()

    async def test_purge_prefix_removes_everything_under_it_and_counts(self, app: Running) -> None:
        store: ObjectStore = app.resources.store
        keys = [f"uploads/p1/f{n}" for n in range(3)] + ["uploads/p2/f0"]
        for key in keys:
            await put_directly(app, key, PDF, "application/pdf")
        assert await store.purge_prefix("uploads/p1/") == 3
        assert await _keys(store, "uploads/p1/") == []
        assert await _keys(store, "uploads/") == ["uploads/p2/f0"]
        assert await store.purge_prefix("uploads/p1/") == 0

    async def test_read_streams_an_object_in_chunks(self, app: Running) -> None:
        store: ObjectStore = app.resources.store
        content = bytes(range(256)) * (READ_CHUNK // 256 * 2 + 3)  # two chunks and a bit
        await store.put_object("uploads/r1/f0", content, content_type="application/octet-stream")
        chunks = [chunk async for chunk in store.read("uploads/r1/f0")]
        assert b"".join(chunks) == content
        assert max(len(chunk) for chunk in chunks) <= READ_CHUNK
        with pytest.raises(ObjectMissing):
            await anext(store.read("uploads/r1/absent"))

    async def test_a_reader_that_stops_early_closes_the_object(self, app: Running) -> None:
        store: ObjectStore = app.resources.store
        await store.put_object("uploads/r2/f0", b"x" * (3 * READ_CHUNK), content_type="x/y")
        async with aclosing(store.read("uploads/r2/f0")) as chunks:
            assert len(await anext(chunks)) > 0
        # Closed mid-object, the store is still usable and the object is intact.
        assert sum([len(chunk) async for chunk in store.read("uploads/r2/f0")]) == 3 * READ_CHUNK
