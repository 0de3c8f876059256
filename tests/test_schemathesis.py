"""Schemathesis against a live `serve` on PostgreSQL: no server error, no undocumented status.

Every check runs and every phase (examples, coverage, fuzzing, stateful), with rate
limits off (everything reaches the routes) and on (most of it is refused first), with
real credentials (tests/schemathesis_hooks.py). The run must produce no `5xx` (ST101) and
no status the OpenAPI document does not declare (ST103); the process must have counted
no 500. The other checks' findings are reported in the test output. `SCHEMATHESIS_SEED`
replays a run; by default the seed is fixed, so CI runs the same cases each time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from session_service import migrations
from tests.conftest import PostgresFactory
from tests.processes import free_port, start_serve, stop, wait_ready

ADMIN_KEY = "adm-" + "s" * 40
SERVICE_KEY = "svc-" + "t" * 40
GATING = {"ST101": "server error", "ST103": "undocumented status code"}
MIN_CASES = 1000
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261207")
REPO = Path(__file__).resolve().parent.parent


def _schemathesis(base_url: str, report: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
        "PYTHONPATH": str(REPO),
        "ST_BASE_URL": base_url,
        "ST_ADMIN_KEY": ADMIN_KEY,
        "ST_SERVICE_KEY": SERVICE_KEY,
    }
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base_url}/openapi.json",
        "--checks=all",
        "--phases=examples,coverage,fuzzing,stateful",
        "--max-examples=40",
        f"--seed={SEED}",
        "--continue-on-failure",
        "--workers=1",
        "--request-timeout=15",
        "--report=json",
        f"--report-json-path={report}",
        "--output-truncate=true",
        # A live stream never ends by itself: a request/response tool would wait for ever.
        # tests/conversations/test_live.py covers it, its refusals included.
        "--exclude-operation-id=conversations-stream-messages",
    ]
    run = subprocess.run(
        command, env=env, cwd=report.parent, capture_output=True, text=True, timeout=600
    )
    print(run.stdout[-20_000:])  # what every check found, in the test's output
    assert report.exists(), run.stderr[-5_000:]
    result: dict[str, Any] = json.loads(report.read_text())
    return result


@pytest.mark.timeout(900)
@pytest.mark.parametrize("rate_limits", ["off", "on"])
def test_no_server_error_and_no_undocumented_status(
    rate_limits: str, postgres: PostgresFactory, tmp_path: Path
) -> None:
    database = postgres.create()
    migrations.upgrade(database)
    port = free_port()
    env = {
        "DATABASE_URL": database,
        "ADMIN_API_KEYS": json.dumps([ADMIN_KEY]),
        "SERVICE_API_KEYS": json.dumps([SERVICE_KEY]),
        "RATE_LIMIT_ENABLED": "true" if rate_limits == "on" else "false",
        "CLEANUP_ENABLED": "false",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "warning",
    }
    server = start_serve(env, tmp_path, port)
    try:
        wait_ready(port, server)
        base_url = f"http://127.0.0.1:{port}"
        report = _schemathesis(base_url, tmp_path / "schemathesis.json")
        metrics = httpx.get(f"{base_url}/metrics", timeout=5).text
    finally:
        stop(server)

    assert report["test_cases"]["generated"] >= MIN_CASES, report["test_cases"]
    assert report["phases"]["stateful"]["status"] != "skipped", report["phases"]
    found = {failure["code"]: failure for failure in report["failures"]}
    gating = {code: found[code] for code in GATING if code in found}
    assert gating == {}, json.dumps(gating, indent=1)
    served_500 = [
        line
        for line in metrics.splitlines()
        if line.startswith("session_service_http_requests_total") and 'status="500"' in line
    ]
    assert served_500 == [], served_500
