"""The deletion queue, and the moments cleanup remembers between runs.

`deletion_queue`: object keys and prefixes storage must delete, written in the transaction
of the change that let go of them; cleanup works through the due rows instead of listing
all of storage every run. `cleanup_marks`: when the last full sweep ran (so that every
instance and restart keeps to ORPHAN_FULL_SWEEP_INTERVAL), and how old the oldest erasure
journal entry can be. New tables only; nothing existing changes (SQLite needs no batch).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deletion_queue",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        # A key, or a prefix ending in `/`: server-made ids only, nothing personal.
        sa.Column("target", sa.String(1024), nullable=False),
        sa.Column("due_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
    )
    op.create_table(
        "cleanup_marks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cleanup_marks")
    op.drop_table("deletion_queue")
