"""Cleanup at scale: one run over 100,000 expired sessions and 10,000 orphaned objects.

Run as its own process (`python -m bench.cleanup`) so its peak RSS is the run's own.
Local backend, PostgreSQL. Prints one JSON line: seconds, peak RSS and the counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg

from bench.database import dsn, fresh_database
from session_service.cleanup.runner import job_context
from session_service.core.clock import utc_now
from session_service.core.settings import Settings
from session_service.observability.logging import configure_logging
from session_service.resources import open_resources

DATABASE = "session_service_bench_cleanup"
SESSIONS = int(os.environ.get("BENCH_CLEANUP_SESSIONS", "100000"))
ORPHANS = int(os.environ.get("BENCH_CLEANUP_ORPHANS", "10000"))
LIVE = 10_000  # live sessions the run must leave alone


async def prepare(storage: Path) -> None:
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
    finally:
        await conn.close()
    # Orphans: objects under storage ids no session has, old enough to go.
    objects = storage / "objects"
    old = time.time() - 3600
    for _ in range(ORPHANS):
        path = objects / "uploads" / str(uuid.uuid4()) / str(uuid.uuid4()) / "report.pdf"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"%PDF-1.7\n")
        os.utime(path, (old, old))


async def run(storage: Path) -> dict[str, object]:
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
    async with open_resources(settings, utc_now) as resources:
        started = time.perf_counter()
        report = await resources.cleanup.run_once(dry_run=False, ctx=job_context())
        seconds = time.perf_counter() - started
    assert report is not None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak, 1),
        **report.counts(),
        "errors": report.errors,
        "at": utc_now().isoformat(),
    }


def main() -> None:
    storage = Path(tempfile.mkdtemp(prefix="session-service-cleanup-"))
    print(
        f"preparing {SESSIONS:,} expired sessions and {ORPHANS:,} orphaned objects",
        file=sys.stderr,
        flush=True,
    )
    asyncio.run(prepare(storage))
    try:
        figures = asyncio.run(run(storage))
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
