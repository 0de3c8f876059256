"""Both stores keep the same contract (the S3 store's own edge cases: tests/storage)."""

from __future__ import annotations

from session_service.storage.base import ObjectStore
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
