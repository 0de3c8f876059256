"""Cleanup indexes: expiring and superseded sessions, pending files by age.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_sessions_status_expires_at", "sessions", ["status", "expires_at"])
    op.create_index("ix_sessions_status_updated_at", "sessions", ["status", "updated_at"])
    op.create_index("ix_files_status_created_at", "files", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_files_status_created_at", table_name="files")
    op.drop_index("ix_sessions_status_updated_at", table_name="sessions")
    op.drop_index("ix_sessions_status_expires_at", table_name="sessions")
