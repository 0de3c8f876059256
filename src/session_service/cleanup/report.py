"""What a cleanup run did (or, dry, would do): counts, capped lists, errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
class CleanupReport:
    """One run's outcome, as the CLI prints it and the admin endpoint answers it."""

    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    step: str | None = None  # the step in progress; None once the run has finished
    seconds: float = 0.0
    expired_sessions: Deleted = field(default_factory=Deleted)
    abandoned_uploads: Deleted = field(default_factory=Deleted)
    orphaned_objects: Deleted = field(default_factory=Deleted)
    session_objects: Deleted = field(default_factory=Deleted)
    audit_events: Deleted = field(default_factory=Deleted)
    erasure_journal: Deleted = field(default_factory=Deleted)
    idempotency_keys: Deleted = field(default_factory=Deleted)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def deletions(self) -> int:
        """Everything deleted (or to be deleted) by this run."""
        return sum(
            kind.count
            for kind in (
                self.expired_sessions,
                self.abandoned_uploads,
                self.orphaned_objects,
                self.session_objects,
                self.audit_events,
                self.erasure_journal,
                self.idempotency_keys,
            )
        )

    def error(self, step: str, exc: BaseException) -> None:
        """Remember a failed step by its error class (messages can quote URLs or SQL)."""
        self.errors.append({"step": step, "error": type(exc).__name__})

    def counts(self) -> dict[str, int]:
        return {
            "expired_sessions": self.expired_sessions.count,
            "abandoned_uploads": self.abandoned_uploads.count,
            "orphaned_objects": self.orphaned_objects.count,
            "session_objects": self.session_objects.count,
            "audit_events": self.audit_events.count,
            "erasure_journal": self.erasure_journal.count,
            "idempotency_keys": self.idempotency_keys.count,
        }

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        data["deletions"] = self.deletions
        return data
