"""Idempotency keys: the first answer to a request sent with an `Idempotency-Key`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        # SHA-256 of (operation, X-Session-ID as presented, key): never the key or a token.
        sa.Column("lookup", sa.String(64), primary_key=True),
        sa.Column("request_digest", sa.String(64), nullable=False),
        # The session the answer belongs to: its keys go with it (erasure, expiry).
        sa.Column(
            "session_id",
            sa.Uuid(),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=True,
        ),
        # AES-GCM ciphertext; NULL only in the claiming request's own transaction.
        sa.Column("answer", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "answer IS NULL OR session_id IS NOT NULL", name="ck_idempotency_keys_answer_session"
        ),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.create_index("ix_idempotency_keys_session_id", "idempotency_keys", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_session_id", table_name="idempotency_keys")
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
