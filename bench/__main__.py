"""Run the benchmark: 100,000 sessions in PostgreSQL, one worker, wrk -t1 -c32.

Prints requests/s, p50 and p99 latency and the worker's RSS per run, and validate's
throughput as a ratio to a minimal Starlette + asyncpg endpoint on the same data.
Validate is measured on three instances, alternating: the default configuration (rate
limits counted in memory, metrics on), the same with limits counted in Redis, and with
the protection layers off (no limits, no metrics, no proxy header), so their cost shows.
Requests come from many clients behind a trusted proxy (`clients.lua`), each within its
limits.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

from bench import conversations
from bench.audit_chain import AUDIT_EVENTS, bench_audit_chain
from bench.database import dsn as _dsn
from bench.database import fresh_database
from session_service.core.ids import token_digest

DATABASE = "session_service_bench"
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "100000"))
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


@dataclass
class Run:
    """One wrk run's figures."""

    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    rss_mib: float
    non_2xx: int


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it from Debian's packages", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or sys.exit("wrk could not be installed")


async def prepare_database() -> tuple[list[str], list[str]]:
    """A fresh database at head with SESSIONS active sessions, half seen long ago.

    Returns the sessions' tokens (fresh half, stale half): validate is called with tokens,
    and the database holds only their digests, as the service writes them.
    """
    conn = await asyncpg.connect(await fresh_database(DATABASE))
    tokens: dict[str, list[str]] = {"fresh": [], "stale": []}
    now = datetime.now(UTC)
    records = []
    for n in range(SESSIONS):
        half = "fresh" if n % 2 == 0 else "stale"
        token, session_id = uuid.uuid4(), uuid.uuid4()
        tokens[half].append(str(token))
        records.append(
            (
                session_id,
                token_digest(token),
                "active",
                now,
                now,
                now,
                now + timedelta(days=1),
                False,
                "127.0.0.1",
                "bench",
                half,
                session_id,
            )
        )
    try:
        await conn.copy_records_to_table(
            "sessions",
            records=records,
            columns=[
                "id",
                "token_digest",
                "status",
                "created_at",
                "updated_at",
                "last_seen_at",
                "expires_at",
                "consent_user_data",
                "client_ip",
                "user_agent",
                "name",
                "storage_id",
            ],
        )
        # Settle the bulk load so autovacuum and checkpoints do not run during the runs.
        await conn.execute("VACUUM ANALYZE sessions")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return tokens["fresh"], tokens["stale"]


async def _mark(half: str, last_seen: str) -> None:
    conn = await asyncpg.connect(_dsn(DATABASE))
    try:
        await conn.execute(
            f"UPDATE sessions SET last_seen_at = {last_seen} WHERE name = $1",
            half,
        )
    finally:
        await conn.close()


def seen_just_now(half: str) -> None:
    """Within the throttle: every validate of this half is a pure read."""
    asyncio.run(_mark(half, "now()"))


def seen_long_ago(half: str) -> None:
    """Past the throttle: the first validate of each session slides its expiry (a write)."""
    asyncio.run(_mark(half, "now() - interval '1 hour'"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start(
    command: list[str], env: dict[str, str], log: Path, ready_url: str
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{command[0]} exited early; see {log}")
        try:
            httpx.post(
                ready_url,
                timeout=1,
                headers={"X-Session-ID": "00000000-0000-4000-8000-000000000000"},
            )
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    sys.exit(f"{command[0]} did not start; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _to_ms(value: str) -> float:
    """wrk prints latencies as 812.00us, 9.41ms, 1.20s, 1.01m or 1.00h."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def _wrk_command(
    binary: str, url: str, script: str, seconds: int, connections: int = CONNECTIONS
) -> list[str]:
    return [
        binary,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(ROOT / script),
        url,
    ]


def wrk(
    binary: str,
    name: str,
    url: str,
    script: str,
    pid: int,
    env: dict[str, str],
    seconds: int = DURATION,
) -> Run:
    result = subprocess.run(
        _wrk_command(binary, url, script, seconds),
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_DIR": str(ROOT), **env},
        check=True,
    )
    return _report(name, result.stdout, result.stderr, pid, env)


def wrk_pair(
    binary: str, name: str, targets: list[tuple[str, int]], script: str, env: dict[str, str]
) -> list[Run]:
    """Two wrk processes at once, one per instance, half the connections each."""
    processes = [
        subprocess.Popen(
            _wrk_command(binary, url, script, DURATION, connections=CONNECTIONS // 2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "BENCH_DIR": str(ROOT), **env},
        )
        for url, _ in targets
    ]
    outputs = [process.communicate() for process in processes]
    return [
        _report(f"{name} #{index}", out, err, pid, env)
        for index, ((out, err), (_, pid)) in enumerate(zip(outputs, targets, strict=True), 1)
    ]


def _report(name: str, out: str, err: str, pid: int, env: dict[str, str]) -> Run:
    if "Requests/sec:" not in out:
        sys.exit(f"wrk gave no figures for {name}:\n{out}\n{err}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _to_ms(re.search(r"^\s+50%\s+(\S+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _to_ms(re.search(r"^\s+99%\s+(\S+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    non_2xx_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    run = Run(
        name, rps, p50, p99, rss_mib(pid), int(non_2xx_match.group(1)) if non_2xx_match else 0
    )
    if env.get("BENCH_QUIET"):
        return run
    print(
        f"{name:<28} {run.requests_per_second:>9.0f} req/s   p50 {run.p50_ms:>7.2f} ms   "
        f"p99 {run.p99_ms:>7.2f} ms   RSS {run.rss_mib:>6.1f} MiB   non-2xx {run.non_2xx}",
        flush=True,
    )
    return run


def bench_cleanup() -> dict[str, dict[str, Any]]:
    """Cleanup at scale (bench/cleanup.py): each scenario in a process of its own (so its peak
    RSS is its own): the backlog through the queue, the same with a full sweep, and a run with
    nothing to do beside 200,000 live objects."""
    figures: dict[str, dict[str, Any]] = {}
    for scenario in ("backlog", "sweep", "idle"):
        result = subprocess.run(
            [sys.executable, "-m", "bench.cleanup", scenario],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT.parent,
        )
        figures[scenario] = json.loads(result.stdout.strip().splitlines()[-1])
    backlog, sweep, idle = (figures[name] for name in ("backlog", "sweep", "idle"))
    print(
        f"cleanup: {backlog['expired_sessions']} expired sessions and "
        f"{backlog['queued_deletions']} queued deletions in {backlog['seconds']} s "
        f"(peak RSS {backlog['peak_rss_mib']} MiB); with a full sweep finding "
        f"{sweep['orphaned_objects']} orphans instead, {sweep['seconds']} s; nothing to do "
        f"beside {idle['live_objects']} live objects: {idle['seconds']} s (a full sweep of "
        f"them: {idle['full_sweep_seconds']} s)",
        flush=True,
    )
    return figures


def start_baseline(dsn: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.baseline:app", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning"]
    url = f"http://127.0.0.1:{port}/validate"
    return start(command, {"BASELINE_DSN": dsn}, work / "baseline.log", url), url


# The protection layers per instance: the default (limits in memory, metrics on), limits
# shared through Redis, and everything off.
PROTECTION = {
    "default": {"TRUSTED_PROXIES": '["127.0.0.1"]'},
    "redis": {"TRUSTED_PROXIES": '["127.0.0.1"]', "RATE_LIMIT_STORAGE_URI": REDIS_URL},
    "off": {"RATE_LIMIT_ENABLED": "false", "METRICS_ENABLED": "false"},
}


def redis_reachable() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.flushdb()
    except redis.ConnectionError:
        return False
    finally:
        client.close()
    return True


def start_service(
    dsn: str, work: Path, name: str, extra: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        "DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
        "PORT": str(port),
        "WORKERS": "1",
        "LOG_FORMAT": "json",
        "ACCESS_LOG": "true",
        "AUTO_MIGRATE": "false",
        "LOCAL_STORAGE_DIR": str(work / "storage"),
        "SIGNING_KEY_FILE": str(work / "signing.key"),
        **extra,
    }
    base = f"http://127.0.0.1:{port}/api/v1"
    command = [sys.executable, "-m", "session_service", "serve"]
    return start(command, env, work / f"service-{name}.log", f"{base}/session/validate"), base


CHAT_SESSIONS = int(os.environ.get("BENCH_CHAT_SESSIONS", "2000"))


def bench_conversations(
    binary: str, dsn: str, work: Path, tokens: list[str], pid: int, base: str
) -> dict[str, Run]:
    """Append a message, and read the newest 50, against the service and the yardstick."""
    lines = asyncio.run(conversations.prepare(dsn, tokens))
    pairs = work / "conversations.txt"
    pairs.write_text("\n".join(lines) + "\n")
    floor, floor_url = start_baseline(dsn, work)
    root = floor_url.removesuffix("/validate")
    service_root = base.removesuffix("/api/v1")
    env = {"CONVERSATIONS": str(pairs)}
    floor_env = {**env, "BENCH_TARGET": "floor"}
    runs: dict[str, Run] = {}
    try:
        for script, name in (("append.lua", "append"), ("history.lua", "read last 50")):
            wrk(binary, "warm-up", root, script, floor.pid, {**floor_env, "BENCH_QUIET": "1"}, 2)
            wrk(binary, "warm-up", service_root, script, pid, {**env, "BENCH_QUIET": "1"}, 2)
            runs[f"{name} floor"] = wrk(binary, f"{name} floor", root, script, floor.pid, floor_env)
            runs[name] = wrk(binary, name, service_root, script, pid, env)
    finally:
        stop(floor)
    for name in ("append", "read last 50"):
        ratio = runs[name].requests_per_second / runs[f"{name} floor"].requests_per_second
        print(f"{name}: {ratio:.2f} of the floor", flush=True)
    return runs


def median(runs: list[Run]) -> float:
    return statistics.median(run.requests_per_second for run in runs)


def main() -> None:
    binary = ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="session-service-bench-"))
    fresh_ids, stale_ids = work / "fresh-ids.txt", work / "stale-ids.txt"
    print(f"preparing {SESSIONS:,} sessions in {DATABASE}", flush=True)
    fresh, stale = asyncio.run(prepare_database())
    fresh_ids.write_text("\n".join(fresh) + "\n")
    stale_ids.write_text("\n".join(stale) + "\n")
    dsn = _dsn(DATABASE)
    fresh_env = {"SESSION_IDS": str(fresh_ids)}

    variants = dict(PROTECTION)
    if not redis_reachable():
        print(f"Redis not reachable at {REDIS_URL}: skipping the Redis variant", flush=True)
        del variants["redis"]
    baseline, baseline_url = start_baseline(dsn, work)
    instances = {name: start_service(dsn, work, name, extra) for name, extra in variants.items()}
    service, base = instances["default"]
    validate_url = f"{base}/session/validate"
    baselines: list[Run] = []
    validates: dict[str, list[Run]] = {name: [] for name in instances}
    try:
        # Warm all up, then alternate so that machine noise hits each alike.
        seen_just_now("fresh")
        quiet = {**fresh_env, "BENCH_QUIET": "1"}
        wrk(binary, "warm-up", baseline_url, "validate.lua", baseline.pid, quiet, seconds=2)
        for process, url in instances.values():
            wrk(binary, "warm-up", f"{url}/session/validate", "validate.lua", process.pid, quiet, 2)
        for round_ in range(1, ROUNDS + 1):
            seen_just_now("fresh")
            baselines.append(
                wrk(
                    binary,
                    f"baseline select #{round_}",
                    baseline_url,
                    "validate.lua",
                    baseline.pid,
                    fresh_env,
                )
            )
            for name, (process, url) in instances.items():
                seen_just_now("fresh")
                validates[name].append(
                    wrk(
                        binary,
                        f"validate {name} #{round_}",
                        f"{url}/session/validate",
                        "validate.lua",
                        process.pid,
                        fresh_env,
                    )
                )
        stop(baseline)
        for name, (process, _) in instances.items():
            if name != "default":
                stop(process)
        # Scaling out: a second default instance on the same database, both loaded at once.
        second, second_base = start_service(dsn, work, "default-2", PROTECTION["default"])
        instances["default-2"] = (second, second_base)
        seen_just_now("fresh")
        wrk(
            binary,
            "warm-up",
            f"{second_base}/session/validate",
            "validate.lua",
            second.pid,
            quiet,
            seconds=2,
        )
        seen_just_now("fresh")
        pair = wrk_pair(
            binary,
            "validate, two instances",
            [(validate_url, service.pid), (f"{second_base}/session/validate", second.pid)],
            "validate.lua",
            fresh_env,
        )
        stop(second)
        seen_long_ago("stale")
        slide = wrk(
            binary,
            "validate (expiry slide due)",
            validate_url,
            "validate.lua",
            service.pid,
            {"SESSION_IDS": str(stale_ids)},
        )
        create = wrk(binary, "create", f"{base}/sessions", "create.lua", service.pid, {})
        seen_just_now("fresh")
        slot = wrk(
            binary, "upload slot", f"{base}/session/uploads", "slot.lua", service.pid, fresh_env
        )
        chat = bench_conversations(binary, dsn, work, fresh[:CHAT_SESSIONS], service.pid, base)
    finally:
        stop(baseline)
        for process, _ in instances.values():
            stop(process)

    print(f"preparing {AUDIT_EVENTS:,} audit events", flush=True)
    chain = asyncio.run(bench_audit_chain(dsn))
    cleanup = bench_cleanup()
    ratio = median(validates["default"]) / median(baselines)
    print(
        f"median baseline {median(baselines):.0f} req/s, median validate "
        f"{median(validates['default']):.0f} req/s: validate / baseline ratio {ratio:.2f}",
        flush=True,
    )
    protection = {name: round(median(runs)) for name, runs in validates.items()}
    together = sum(run.requests_per_second for run in pair)
    scaling = together / median(validates["default"])
    print(
        f"two instances: {together:.0f} req/s together, {scaling:.2f}x one instance",
        flush=True,
    )
    print(
        "validate medians by protection: "
        + ", ".join(f"{name} {rps} req/s" for name, rps in protection.items()),
        flush=True,
    )
    RESULTS.mkdir(exist_ok=True)
    report = {
        "sessions": SESSIONS,
        "duration_s": DURATION,
        "connections": CONNECTIONS,
        "runs": [
            asdict(run)
            for run in [
                *baselines,
                *(item for runs in validates.values() for item in runs),
                *pair,
                slide,
                create,
                slot,
                *chat.values(),
            ]
        ],
        "validate_to_baseline": round(ratio, 3),
        "validate_by_protection": protection,
        "two_instances": {"requests_per_second": round(together), "scaling": round(scaling, 2)},
        "conversations": {
            "append_to_floor": round(
                chat["append"].requests_per_second / chat["append floor"].requests_per_second, 3
            ),
            "history_to_floor": round(
                chat["read last 50"].requests_per_second
                / chat["read last 50 floor"].requests_per_second,
                3,
            ),
        },
        "audit_chain": chain,
        "cleanup": cleanup,
    }
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"logs in {work}; figures in {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
