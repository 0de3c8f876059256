"""Alembic upgrade and downgrade on both databases, and the schema they produce."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from session_service import migrations
from tests.conftest import PostgresFactory


def _indexes_by_table(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {
        table: {index["name"] for index in inspector.get_indexes(table) if index["name"]}
        for table in inspector.get_table_names()
    }


def _model_drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, migrations.target_metadata))


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    factory: PostgresFactory = request.getfixturevalue("postgres")
    return factory.create()


class TestMigrations:
    def test_upgrade_creates_tables_and_indexes(self, fresh_url: str) -> None:
        assert migrations.current_revision(fresh_url) is None
        migrations.upgrade(fresh_url)
        assert migrations.current_revision(fresh_url) == migrations.head_revision()
        schema = migrations.inspect_database(fresh_url, _indexes_by_table)
        assert {"sessions", "audit_events", "alembic_version"} <= set(schema)
        assert "ix_audit_events_session_id_id" in schema["audit_events"]

    def test_downgrade_to_base_removes_everything_and_upgrade_again_works(
        self, fresh_url: str
    ) -> None:
        migrations.upgrade(fresh_url)
        migrations.downgrade(fresh_url, "base")
        assert migrations.current_revision(fresh_url) is None
        assert set(migrations.inspect_database(fresh_url, _indexes_by_table)) <= {"alembic_version"}
        migrations.upgrade(fresh_url)
        assert migrations.current_revision(fresh_url) == migrations.head_revision()

    def test_upgrade_is_idempotent(self, fresh_url: str) -> None:
        migrations.upgrade(fresh_url)
        migrations.upgrade(fresh_url)
        assert migrations.current_revision(fresh_url) == migrations.head_revision()

    def test_models_match_the_migrations(self, fresh_url: str) -> None:
        """Autogenerate finds nothing to do: the models and the migrations agree."""
        migrations.upgrade(fresh_url)
        assert migrations.inspect_database(fresh_url, _model_drift) == []
