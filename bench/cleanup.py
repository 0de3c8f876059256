"""Cleanup at scale, on the local backend and PostgreSQL; one scenario per process.

`python -m bench.cleanup [backlog|sweep|idle]`, each in a process of its own so that its
peak RSS is its own; prints one JSON line (seconds, peak RSS, the report's counts):

- `backlog` (default): one run over 100,000 expired sessions (beside 10,000 live ones) and
  10,000 orphaned objects that the deletion queue names (as erasures, deletions and resets
  leave them); the full sweep is not due (it ran just before, as it would have).
- `sweep`: the same, but the orphans are objects no row knows, found by a full sweep the run
  is asked for (`cleanup --full-sweep`).
- `idle`: 200,000 live objects (20,000 sessions with 10 uploaded files each) and nothing to
  do: a run with no full sweep due (`seconds`, the median of 5 runs), then one asked to
  sweep, which lists all 200,000 (`full_sweep_seconds`).

`BENCH_CLEANUP_SESSIONS`, `BENCH_CLEANUP_ORPHANS` and `BENCH_CLEANUP_LIVE_OBJECTS` change
the sizes.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from bench.database import dsn, fresh_database
from session_service.cleanup.report import CleanupReport
from session_service.cleanup.runner import job_context
from session_service.core.clock import utc_now
from session_service.core.settings import Settings
from session_service.observability.logging import configure_logging
from session_service.resources import Resources, open_resources

DATABASE = "session_service_bench_cleanup"
SESSIONS = int(os.environ.get("BENCH_CLEANUP_SESSIONS", "100000"))
ORPHANS = int(os.environ.get("BENCH_CLEANUP_ORPHANS", "10000"))
LIVE_OBJECTS = int(os.environ.get("BENCH_CLEANUP_LIVE_OBJECTS", "200000"))
LIVE = 10_000  # live sessions the backlog run must leave alone
FILES_PER_SESSION = 10  # of the idle scenario's live sessions
SCENARIOS = ("backlog", "sweep", "idle")


def _write(path: Path, when: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.7\n")
    os.utime(path, (when, when))


async def _remember_a_recent_sweep(conn: asyncpg.Connection) -> None:
    """As after earlier runs: the full sweep and the journal's listing are not due."""
    await conn.execute(
        "INSERT INTO cleanup_marks (name, at) "
        "VALUES ('full_sweep', now()), ('erasure_journal_oldest', now())"
    )


async def prepare_backlog(storage: Path, *, queued: bool) -> None:
    """Expired and live sessions, and orphans: queued (`queued`) or known to no row."""
    conn = await asyncpg.connect(await fresh_database(DATABASE))
    try:
        await conn.execute(
            """
            INSERT INTO sessions (id, status, created_at, updated_at, last_seen_at, expires_at,
                                  consent_user_data, storage_id)
            SELECT gen_random_uuid(), 'active', now() - interval '3 days',
                   now() - interval '3 days', now() - interval '3 days',
                   CASE WHEN n <= $1::int THEN now() - interval '2 days'
                        ELSE now() + interval '1 day' END,
                   false, gen_random_uuid()
              FROM generate_series(1, $1::int + $2::int) AS n
            """,
            SESSIONS,
            LIVE,
        )
        await conn.execute("VACUUM ANALYZE sessions")
        # Orphans: objects under storage ids no session has, old enough to go.
        old = time.time() - 3600
        keys = [f"uploads/{uuid.uuid4()}/{uuid.uuid4()}/{uuid.uuid4().hex}" for _ in range(ORPHANS)]
        for key in keys:
            _write(storage / "objects" / key, old)
        if queued:
            due = datetime.now(UTC) - timedelta(hours=1)
            await conn.copy_records_to_table(
                "deletion_queue",
                records=[(key, due, due) for key in keys],
                columns=["target", "due_at", "created_at"],
            )
        await _remember_a_recent_sweep(conn)
    finally:
        await conn.close()


SESSION_COLUMNS = [
    "id",
    "status",
    "created_at",
    "updated_at",
    "last_seen_at",
    "expires_at",
    "consent_user_data",
    "storage_id",
]
FILE_COLUMNS = [
    "id",
    "session_id",
    "storage_key",
    "original_name",
    "content_type",
    "declared_size",
    "stored_size",
    "status",
    "created_at",
    "updated_at",
    "uploaded_at",
]


async def prepare_idle(storage: Path) -> None:
    """Live sessions whose uploaded files fill storage; nothing expired, abandoned or queued.

    Written 1,000 sessions at a time, so that the preparation's memory stays small.
    """
    conn = await asyncpg.connect(await fresh_database(DATABASE))
    seen = datetime.now(UTC) - timedelta(days=1)
    times = (seen, seen, seen)  # created, updated, uploaded
    try:
        for _ in range(0, LIVE_OBJECTS // FILES_PER_SESSION, 1000):
            sessions = [uuid.uuid4() for _ in range(1000)]
            files = [
                (file_id, session_id, f"uploads/{session_id}/{file_id}/{uuid.uuid4().hex}")
                for session_id in sessions
                for file_id in (uuid.uuid4() for _ in range(FILES_PER_SESSION))
            ]
            await conn.copy_records_to_table(
                "sessions",
                records=[
                    (i, "active", seen, seen, seen, seen + timedelta(days=2), False, i)
                    for i in sessions
                ],
                columns=SESSION_COLUMNS,
            )
            await conn.copy_records_to_table(
                "files",
                records=[
                    (fid, sid, key, "report.pdf", "application/pdf", 9, 9, "uploaded", *times)
                    for fid, sid, key in files
                ],
                columns=FILE_COLUMNS,
            )
            for _, _, key in files:
                _write(storage / "objects" / key, seen.timestamp())
        await conn.execute("VACUUM ANALYZE")
        await _remember_a_recent_sweep(conn)
    finally:
        await conn.close()


async def _run_once(resources: Resources, *, full_sweep: bool) -> tuple[float, CleanupReport]:
    started = time.perf_counter()
    report = await resources.cleanup.run_once(
        dry_run=False, full_sweep=full_sweep, ctx=job_context()
    )
    seconds = time.perf_counter() - started
    assert report is not None
    return seconds, report


async def run(storage: Path, scenario: str) -> dict[str, object]:
    settings = Settings(
        database_url=dsn(DATABASE).replace("postgresql://", "postgresql+asyncpg://", 1),
        local_storage_dir=storage,
        signing_key_file=storage / "signing.key",
        cleanup_enabled=False,
        audit_seal_interval=timedelta(0),
        access_log=False,
        audit_retention=timedelta(0),
    )
    configure_logging(settings.with_overrides(log_level="warning"), stream=sys.stderr)
    figures: dict[str, object] = {"scenario": scenario}
    async with open_resources(settings, utc_now) as resources:
        if scenario == "idle":
            await _run_once(resources, full_sweep=False)  # a first run: connections, caches
            idle = [(await _run_once(resources, full_sweep=False))[0] for _ in range(5)]
            swept, report = await _run_once(resources, full_sweep=True)
            figures |= {
                "live_objects": LIVE_OBJECTS,
                "seconds": round(statistics.median(idle), 3),
                "runs": [round(seconds, 3) for seconds in idle],
                "full_sweep_seconds": round(swept, 1),
            }
        else:
            seconds, report = await _run_once(resources, full_sweep=scenario == "sweep")
            figures["seconds"] = round(seconds, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        **figures,
        "peak_rss_mib": round(peak, 1),
        "full_sweep_ran": report.full_sweep.ran,
        **report.counts(),
        "errors": report.errors,
        "at": utc_now().isoformat(),
    }


def main() -> None:
    scenario = sys.argv[1] if len(sys.argv) > 1 else "backlog"
    if scenario not in SCENARIOS:
        sys.exit(f"usage: python -m bench.cleanup [{'|'.join(SCENARIOS)}]")
    storage = Path(tempfile.mkdtemp(prefix="session-service-cleanup-"))
    if scenario == "idle":
        print(f"preparing {LIVE_OBJECTS:,} live objects", file=sys.stderr, flush=True)
        asyncio.run(prepare_idle(storage))
    else:
        kind = "queued" if scenario == "backlog" else "unknown"
        print(
            f"preparing {SESSIONS:,} expired sessions and {ORPHANS:,} orphaned objects ({kind})",
            file=sys.stderr,
            flush=True,
        )
        asyncio.run(prepare_backlog(storage, queued=scenario == "backlog"))
    try:
        figures = asyncio.run(run(storage, scenario))
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
