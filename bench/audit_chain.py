"""Sealing and verifying the audit hash chain at scale: BENCH_AUDIT_EVENTS events (1,000,000).

`make bench` runs it last on its own database; alone, on a fresh scratch database
(`session_service_bench_audit`), it is

    python -m bench.audit_chain

PostgreSQL on 127.0.0.1:5432 (`BENCH_POSTGRES_ADMIN_URL`). Inserts the events in SQL,
`EVENTS_PER_TRANSACTION` per transaction (250,000 commits for the default; the chain keeps
one transaction's events in one batch), settles the table (`VACUUM ANALYZE`), then times
one `AuditSealer.seal()` over all of them and one `verify_chain` over the whole chain, and
prints events per second of each (and one JSON line of the figures).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import timedelta

import asyncpg

from bench.database import fresh_database
from session_service.audit.sealing import AuditSealer, verify_chain
from session_service.core.clock import utc_now
from session_service.core.db import job_scope, make_engine, make_sessionmaker
from session_service.core.settings import Settings

DATABASE = "session_service_bench_audit"
AUDIT_EVENTS = int(os.environ.get("BENCH_AUDIT_EVENTS", "1000000"))
EVENTS_PER_TRANSACTION = 4


async def bench_audit_chain(dsn: str) -> dict[str, float]:
    """Seal and verify AUDIT_EVENTS events: time and events per second of each."""
    conn = await asyncpg.connect(dsn)
    try:
        # Many transactions, as requests write them: the chain orders events by their
        # writing transaction and keeps one transaction's events in one batch, so events
        # written by a single INSERT would all be one batch.
        await conn.execute("SET synchronous_commit = off")
        await conn.execute(
            f"""
            DO $$
            BEGIN
              FOR t IN 0 .. {-(-AUDIT_EVENTS // EVENTS_PER_TRANSACTION) - 1} LOOP
                INSERT INTO audit_events (occurred_at, type, session_id, request_id,
                                          client_ip, user_agent, outcome, details)
                SELECT now() - interval '1 hour', 'session.validated', gen_random_uuid(),
                       md5(n::text), '127.0.0.1', 'bench', 'success',
                       jsonb_build_object('n', n, 'reason', 'bench')
                  FROM generate_series(t * {EVENTS_PER_TRANSACTION} + 1,
                                       LEAST((t + 1) * {EVENTS_PER_TRANSACTION},
                                             {AUDIT_EVENTS})) AS n;
                COMMIT;
              END LOOP;
            END $$
            """
        )
        await conn.execute("VACUUM ANALYZE audit_events")
    finally:
        await conn.close()
    settings = Settings(database_url=dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    engine = make_engine(settings)
    try:
        maker = make_sessionmaker(engine)
        sealer = AuditSealer(maker, clock=utc_now, min_age=timedelta(0))
        started = time.perf_counter()
        sealed = await sealer.seal()
        seal_seconds = time.perf_counter() - started
        async with job_scope(maker) as db:
            report = await verify_chain(db)
    finally:
        await engine.dispose()
    assert report.ok, report.problems
    figures = {
        "sealed_events": sealed,
        "seal_seconds": round(seal_seconds, 1),
        "seal_events_per_second": round(sealed / seal_seconds),
        "verified_events": report.events,
        "verify_seconds": report.seconds,
        "verify_events_per_second": round(report.events / report.seconds),
    }
    print(
        f"audit chain: sealed {sealed:,} events in {seal_seconds:.1f} s "
        f"({figures['seal_events_per_second']:,}/s); verified {report.events:,} in "
        f"{report.seconds:.1f} s ({figures['verify_events_per_second']:,}/s)",
        flush=True,
    )
    return figures


async def _alone() -> dict[str, float]:
    return await bench_audit_chain(await fresh_database(DATABASE))


if __name__ == "__main__":
    print(f"preparing {AUDIT_EVENTS:,} audit events in {DATABASE}", flush=True)
    print(json.dumps(asyncio.run(_alone())), flush=True)
