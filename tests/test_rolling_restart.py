"""A rolling restart behind a real load balancer loses no request.

Debian's HAProxy, without retries, balances two `serve` processes on one PostgreSQL and
checks `/readyz` every 200 ms. Under steady load one instance gets SIGTERM and is started
again: its readiness turns 503 at once, HAProxy stops sending to it while it still serves,
then it finishes what is in flight and exits 0.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from session_service import migrations
from tests.conftest import PostgresFactory
from tests.processes import (
    free_port,
    install_hint,
    require,
    start_serve,
    stop,
    wait_for_port,
    wait_ready,
)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@pytest.fixture
def balancer(tmp_path: Path) -> Iterator[tuple[int, list[int]]]:
    """HAProxy on a free port (yielded) in front of two backend ports, no retries."""
    require(Path(HAPROXY).exists(), f"haproxy is not installed: {install_hint('haproxy')}")
    port, backends = free_port(), [free_port(), free_port()]
    directory = Path(tempfile.mkdtemp(prefix="haproxy-"))
    servers = "\n".join(
        f"    server s{n} 127.0.0.1:{backend} check" for n, backend in enumerate(backends)
    )
    (directory / "haproxy.cfg").write_text(
        f"""global
    maxconn 512

defaults
    mode http
    retries 0
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend api
    bind 127.0.0.1:{port}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fall 1 rise 2
{servers}
"""
    )
    proxy = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(directory / "haproxy.cfg")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for_port(port, proxy), "haproxy did not start"
        yield port, backends
    finally:
        stop(proxy)
        shutil.rmtree(directory, ignore_errors=True)


class Load:
    """Steady traffic through the balancer from a thread: creates and validates."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.done = threading.Event()
        self.answered = 0
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            while not self.done.is_set():
                try:
                    token = http.post("/api/v1/sessions").raise_for_status().json()["token"]
                    answer = http.post(
                        "/api/v1/session/validate", headers={"X-Session-ID": token}
                    ).raise_for_status()
                    assert answer.json()["valid"] is True
                    self.answered += 2
                except (httpx.HTTPError, AssertionError, KeyError) as error:
                    self.failures.append(f"{type(error).__name__}: {error}")

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join(30)


def test_restarting_one_of_two_instances_fails_no_request(
    balancer: tuple[int, list[int]], postgres: PostgresFactory, tmp_path: Path
) -> None:
    port, backends = balancer
    database = postgres.create()
    migrations.upgrade(database)
    env = {
        "DATABASE_URL": database,
        "AUTO_MIGRATE": "false",
        "RATE_LIMIT_ENABLED": "false",
        "SHUTDOWN_DRAIN_SECONDS": "2",
        "CLEANUP_ENABLED": "false",
        "LOG_FORMAT": "json",
    }
    homes = [tmp_path / "a", tmp_path / "b"]
    for home in homes:
        home.mkdir()
    processes = [
        start_serve(env, home, backend) for home, backend in zip(homes, backends, strict=True)
    ]
    try:
        for backend, process in zip(backends, processes, strict=True):
            wait_ready(backend, process)
        time.sleep(0.6)  # both up in HAProxy's eyes (rise 2 at 200 ms)
        with Load(f"http://127.0.0.1:{port}") as load:
            time.sleep(1.0)
            processes[0].send_signal(signal.SIGTERM)
            assert processes[0].wait(timeout=30) == 0
            processes[0] = start_serve(env, homes[0], backends[0])
            wait_ready(backends[0], processes[0])
            time.sleep(1.0)  # back in rotation and serving
        assert load.failures == []
        assert load.answered > 50
        log = (homes[0] / f"serve-{backends[0]}.log").read_text()
        assert "shutdown_draining" in log
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
