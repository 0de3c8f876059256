"""Helpers for the real servers tests start (moto, PgBouncer, PostgreSQL clusters)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def install_hint(package: str) -> str:
    """How to get a system package the suite drives (what `make test` does as root)."""
    return f"sudo apt-get install -y {package} (or `make packages` as root)"


def require(available: bool, message: str) -> None:
    """Skip without a tool the test drives; fail instead in CI, where it must be there."""
    if available:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(message)
    pytest.skip(message)


def wait_for_port(port: int, process: subprocess.Popen[bytes], *, timeout: float = 30) -> bool:
    """Wait until 127.0.0.1:`port` accepts; False if `process` died or time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes], *, timeout: float = 10) -> None:
    """End a process this test started, by its PID: politely, then for good."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_serve(env: dict[str, str], home: Path, port: int) -> subprocess.Popen[bytes]:
    """`session-service serve` on `port` with `env` over this environment, run in `home`;
    its output goes to `home/serve-{port}.log`."""
    log = (home / f"serve-{port}.log").open("a")
    return subprocess.Popen(
        [sys.executable, "-m", "session_service", "serve"],
        env={**os.environ, **env, "PORT": str(port)},
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_ready(port: int, process: subprocess.Popen[bytes], *, timeout: float = 45) -> None:
    """Wait until the server on `port` answers `/readyz` with 200; fail the test if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"serve on port {port} did not become ready")
