"""The cleanup_marks table: what cleanup remembers between runs, across instances and restarts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from session_service.core.sqltypes import UTCDateTime


class Mark(StrEnum):
    """The moments cleanup keeps, one row each."""

    # When the last full sweep (a listing of all of storage) ran.
    FULL_SWEEP = "full_sweep"
    # No erasure journal entry is older than this: the journal need not be listed before
    # this moment plus ERASURE_JOURNAL_RETENTION.
    JOURNAL_OLDEST = "erasure_journal_oldest"


class CleanupMark(SQLModel, table=True):
    """One remembered moment, by name; written by the run that holds the cleanup lock."""

    __tablename__ = "cleanup_marks"

    name: str = Field(sa_column=Column(String(64), primary_key=True))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
