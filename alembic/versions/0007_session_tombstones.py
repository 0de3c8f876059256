"""Session tombstones: digests of ended bearer values, so none can start a session again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "session_tombstones",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_session_tombstones_ended_at", "session_tombstones", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_session_tombstones_ended_at", table_name="session_tombstones")
    op.drop_table("session_tombstones")
