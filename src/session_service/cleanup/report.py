"""What a cleanup run did (or, dry, would do): counts, capped lists, errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass
class Deleted:
    """Deletions of one kind: the count, and the first ids or keys up to the report limit."""

    count: int = 0
    items: list[str] = field(default_factory=list)
    truncated: bool = False

    def add(self, items: list[str], *, limit: int) -> None:
        self.count += len(items)
        room = max(0, limit - len(self.items))
        self.items.extend(items[:room])
        self.truncated = self.truncated or len(items) > room


@dataclass
class FullSweep:
    """Whether this run listed all of storage, and when the sweeps before and after are."""

    ran: bool = False
    forced: bool = False
    previous_at: datetime | None = None  # the last full sweep before this run, if any
    next_due_at: datetime | None = None  # None: only when asked for (interval 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ran": self.ran,
            "forced": self.forced,
            "previous_at": self.previous_at.isoformat() if self.previous_at else None,
            "next_due_at": self.next_due_at.isoformat() if self.next_due_at else None,
        }


@dataclass
class CleanupReport:
    """One run's outcome, as the CLI prints it and the admin endpoint answers it."""

    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    step: str | None = None  # the step in progress; None once the run has finished
    seconds: float = 0.0
    expired_sessions: Deleted = field(default_factory=Deleted)
    abandoned_uploads: Deleted = field(default_factory=Deleted)
    session_objects: Deleted = field(default_factory=Deleted)
    stale_quarantine: Deleted = field(default_factory=Deleted)
    queued_deletions: Deleted = field(default_factory=Deleted)
    orphaned_objects: Deleted = field(default_factory=Deleted)
    full_sweep: FullSweep = field(default_factory=FullSweep)
    audit_events: Deleted = field(default_factory=Deleted)
    erasure_journal: Deleted = field(default_factory=Deleted)
    idempotency_keys: Deleted = field(default_factory=Deleted)
    errors: list[dict[str, str]] = field(default_factory=list)

    def _kinds(self) -> dict[str, Deleted]:
        return {
            item.name: value
            for item in fields(self)
            if isinstance(value := getattr(self, item.name), Deleted)
        }

    @property
    def deletions(self) -> int:
        """Everything deleted (or to be deleted) by this run."""
        return sum(kind.count for kind in self._kinds().values())

    def error(self, step: str, exc: BaseException) -> None:
        """Remember a failed step by its error class (messages can quote URLs or SQL)."""
        self.errors.append({"step": step, "error": type(exc).__name__})

    def counts(self) -> dict[str, int]:
        return {name: kind.count for name, kind in self._kinds().items()}

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        data["full_sweep"] = self.full_sweep.as_dict()
        data["deletions"] = self.deletions
        return data
