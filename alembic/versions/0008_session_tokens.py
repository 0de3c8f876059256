"""Session tokens apart from ids: sessions keep the digest of a secret token; ids are public.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Before this revision the session id was also the browser's bearer credential, and it is
written in the append-only audit trail, the logs and alerts. So no existing id may ever
work as a token: every existing session keeps its id as its public id, gets no token
(`token_digest` NULL), and the digest of its old id becomes a tombstone with the reason
`upgraded`. A browser that presents an old id is told `upgraded` and resets, as for any
invalid session. Rows, files and storage keys are untouched, so services and support
still reach every session and file by its id.

Downgrade: tokens issued since the upgrade mean nothing to the older code, and the ids of
those sessions were logged as public names, so the older code must not accept them as
bearer values: those sessions are ended (`expired`). Sessions from before the upgrade
work again by their old id, as they did then.
"""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000

sessions = sa.table(
    "sessions",
    sa.column("id", sa.Uuid()),
    sa.column("token_digest", sa.String()),
    sa.column("status", sa.String()),
    sa.column("expires_at", sa.DateTime(timezone=True)),
)
tombstones = sa.table(
    "session_tombstones",
    sa.column("digest", sa.String()),
    sa.column("ended_at", sa.DateTime(timezone=True)),
    sa.column("reason", sa.String()),
)


def _digest(session_id: object) -> str:
    return hashlib.sha256(str(session_id).encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("token_digest", sa.String(64), nullable=True))
        batch.create_index("uq_sessions_token_digest", ["token_digest"], unique=True)
    with op.batch_alter_table("session_tombstones") as batch:
        batch.add_column(sa.Column("reason", sa.String(16), nullable=False, server_default="ended"))
    # Every existing id was a bearer value: bury it, so it never works as a token.
    bind = op.get_bind()
    now = datetime.now(UTC)
    after = None
    while True:
        query = sa.select(sessions.c.id).order_by(sessions.c.id).limit(BATCH)
        if after is not None:
            query = query.where(sessions.c.id > after)
        ids = list(bind.execute(query).scalars())
        if not ids:
            break
        known = set(
            bind.execute(
                sa.select(tombstones.c.digest).where(
                    tombstones.c.digest.in_([_digest(i) for i in ids])
                )
            ).scalars()
        )
        rows = [
            {"digest": _digest(i), "ended_at": now, "reason": "upgraded"}
            for i in ids
            if _digest(i) not in known
        ]
        if rows:
            bind.execute(tombstones.insert(), rows)
        after = ids[-1]


def downgrade() -> None:
    op.get_bind().execute(
        sessions.update()
        .where(sessions.c.token_digest.is_not(None))
        .values(status="expired", expires_at=datetime.now(UTC))
    )
    with op.batch_alter_table("session_tombstones") as batch:
        batch.drop_column("reason")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("uq_sessions_token_digest")
        batch.drop_column("token_digest")
