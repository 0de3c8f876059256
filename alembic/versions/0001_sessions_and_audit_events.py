"""Sessions and audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("completed_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("consent_user_data", sa.Boolean(), nullable=False),
        sa.Column("consent_given_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("client_ip", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("previous_session_id", sa.Uuid(), nullable=True),
        sa.Column("storage_id", sa.Uuid(), nullable=False, unique=True),
        sa.CheckConstraint(
            "status IN ('active', 'pending_verification', 'completed', 'reset', 'expired')",
            name="ck_sessions_status",
        ),
    )
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("occurred_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("client_ip", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.CheckConstraint("outcome IN ('success', 'failure')", name="ck_audit_events_outcome"),
    )
    op.create_index("ix_audit_events_session_id_id", "audit_events", ["session_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_session_id_id", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("sessions")
