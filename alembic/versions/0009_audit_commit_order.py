"""Audit chain in commit order: each event records its transaction; batches cover key ranges.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

On PostgreSQL an event's id is drawn when it is inserted, not when it commits, so a
transaction that commits late leaves an id below events already sealed, and id ranges
skipped it for good. Each event now records its transaction id (`txid`, the server's
`pg_current_xact_id()`), and the sealer covers whole ranges of transaction ids below the
oldest transaction still running, which no event can join later. Existing events get
negative txids in id order (`id - 2**62`), below every real one, so the batches sealed
before keep covering exactly their events.

A batch (and an anchor) now records `covers_below`: the chain covers every event whose key
is below it, the key being `txid` on PostgreSQL and `id` on SQLite, where transactions are
serialised and ids are drawn in commit order.

Downgrade drops the columns; batches sealed since the upgrade cover transaction ranges,
which the older code reads as id ranges, so `audit verify` may then report them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_OFFSET = 2**62
"""Existing events' txid is `id - LEGACY_OFFSET`: negative, below any real transaction id."""

TXID_DEFAULT = "(pg_current_xact_id()::text::bigint)"
BATCHES_COVER = "UPDATE audit_batches SET covers_below = last_event_id + 1 - :offset"
ANCHORS_COVER = "UPDATE audit_anchors SET covers_below = last_event_id + 1 - :offset"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    offset = LEGACY_OFFSET if postgres else 0
    op.add_column("audit_events", sa.Column("txid", sa.BigInteger(), nullable=True))
    op.add_column("audit_batches", sa.Column("covers_below", sa.BigInteger(), nullable=True))
    op.add_column("audit_anchors", sa.Column("covers_below", sa.BigInteger(), nullable=True))
    guarded = ("audit_events", "audit_batches", "audit_anchors")
    if postgres:
        for table in guarded:
            op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        op.execute(sa.text("UPDATE audit_events SET txid = id - :offset").bindparams(offset=offset))
    for statement in (BATCHES_COVER, ANCHORS_COVER):
        op.execute(sa.text(statement).bindparams(offset=offset))
    if postgres:
        for table in guarded:
            op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
        op.alter_column("audit_events", "txid", server_default=sa.text(TXID_DEFAULT))
    op.create_index("ix_audit_events_txid_id", "audit_events", ["txid", "id"])
    with op.batch_alter_table("audit_batches") as batch:
        batch.alter_column("covers_below", nullable=False)
    with op.batch_alter_table("audit_anchors") as batch:
        batch.alter_column("covers_below", nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_anchors") as batch:
        batch.drop_column("covers_below")
    with op.batch_alter_table("audit_batches") as batch:
        batch.drop_column("covers_below")
    op.drop_index("ix_audit_events_txid_id", table_name="audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("txid")
