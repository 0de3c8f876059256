"""Real failures injected into the database with triggers, for both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from tests.helpers import Running

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION test_injected_failure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'injected failure'; END $$
"""


async def _run(app: Running, *statements: str) -> None:
    async with app.resources.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


@asynccontextmanager
async def failing_insert(app: Running, table: str) -> AsyncIterator[None]:
    """Every INSERT into `table` fails at once (statement time)."""
    name = f"test_fail_insert_{table}"
    if app.resources.engine.dialect.name == "postgresql":
        create = [
            _PG_FUNCTION,
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION test_injected_failure()",
        ]
        drop = [f"DROP TRIGGER {name} ON {table}"]
    else:
        create = [
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ]
        drop = [f"DROP TRIGGER {name}"]
    await _run(app, *create)
    try:
        yield
    finally:
        await _run(app, *drop)


@asynccontextmanager
async def failing_commit(app: Running, table: str) -> AsyncIterator[None]:
    """A transaction that inserted into `table` fails at COMMIT, after every statement ran."""
    name = f"test_fail_commit_{table}"
    if app.resources.engine.dialect.name == "postgresql":
        create = [
            _PG_FUNCTION,
            f"CREATE CONSTRAINT TRIGGER {name} AFTER INSERT ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_injected_failure()",
        ]
        drop = [f"DROP TRIGGER {name} ON {table}"]
    else:
        # A deferred foreign key to an empty table is only checked at COMMIT.
        create = [
            "CREATE TABLE test_parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE test_child (parent_id INTEGER "
            "REFERENCES test_parent(id) DEFERRABLE INITIALLY DEFERRED)",
            f"CREATE TRIGGER {name} AFTER INSERT ON {table} "
            "BEGIN INSERT INTO test_child VALUES (1); END",
        ]
        drop = [f"DROP TRIGGER {name}", "DROP TABLE test_child", "DROP TABLE test_parent"]
    await _run(app, *create)
    try:
        yield
    finally:
        await _run(app, *drop)
