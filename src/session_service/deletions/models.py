"""The deletion_queue table: what storage still has to delete, and from when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from session_service.core.sqltypes import BigIntIdentity, UTCDateTime


class QueuedDeletion(SQLModel, table=True):
    """One object key, or one prefix (ending in `/`), that storage must delete.

    Written in the same transaction as the change that let go of it (a file deleted, a
    session erased, expired or reset, an upload completed), so that a commit without its
    deletion, or a deletion that failed, is never lost track of. A row names server-made ids
    only (`uploads/{storage_id}/{file_id}/...`), never anything personal. It goes once a
    deletion made at or after `due_at` succeeded: a quarantine key is due when the last form
    that could write to it has expired, so a form posted again after the change is deleted
    too.
    """

    __tablename__ = "deletion_queue"

    # In order of queueing: cleanup works through the due rows by this (keyset).
    id: int | None = Field(
        default=None, sa_column=Column(BigIntIdentity, primary_key=True, autoincrement=True)
    )
    target: str = Field(sa_column=Column(String(1024), nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
