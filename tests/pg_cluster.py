"""A throwaway PostgreSQL cluster (Debian's binaries) with settings a test chooses.

For what the shared test server cannot be made to do, such as running out of connection
slots. initdb and postgres refuse to run as root: as root they run as `postgres`, in a
directory of their own under the system's temporary directory. Ended by its PID.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from tests.processes import free_port, stop, wait_for_port


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def available() -> bool:
    return _binaries() is not None


def _as_postgres() -> Callable[[], None] | None:
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam("postgres")

    def demote() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return demote


class Cluster:
    """A running throwaway cluster: its admin URL, and a restart as an operator does one."""

    def __init__(self, command: list[str], port: int, demote: Callable[[], None] | None) -> None:
        self.command, self.port, self.demote = command, port, demote
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.server = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        server = subprocess.Popen(
            self.command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=self.demote,
        )
        if not wait_for_port(self.port, server):
            raise RuntimeError("the throwaway PostgreSQL did not start")
        return server

    def restart(self, *, down_for: float = 0.0) -> None:
        """Fast shutdown (sessions end with "terminating connection due to administrator
        command"), `down_for` seconds with nothing listening, then start again; returns
        while the server may still be starting up."""
        self.server.send_signal(signal.SIGINT)
        self.server.wait(timeout=30)
        time.sleep(down_for)
        self.server = self._start()

    def wait_ready(self) -> None:
        """Until the server accepts connections (listening comes first)."""
        while not _ready(self.port):
            time.sleep(0.1)

    def stop(self) -> None:
        stop(self.server, timeout=15)  # smart shutdown; then immediate


@contextmanager
def restartable(**settings: str | int) -> Iterator[Cluster]:
    """A running cluster with `settings` (postgresql.conf names), to restart at will."""
    binaries = _binaries()
    assert binaries is not None, "PostgreSQL's server binaries are not installed"
    directory = Path(tempfile.mkdtemp(prefix="pg-cluster-"))
    demote = _as_postgres()
    if demote is not None:
        user = pwd.getpwnam("postgres")
        os.chown(directory, user.pw_uid, user.pw_gid)
    data = directory / "data"
    subprocess.run(
        [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
        preexec_fn=demote,
    )
    port = free_port()
    options = {"listen_addresses": "127.0.0.1", "port": port, "fsync": "off", **settings}
    command = [str(binaries / "postgres"), "-D", str(data), "-k", str(directory)]
    for name, value in options.items():
        command += ["-c", f"{name}={value}"]
    running: Cluster | None = None
    try:
        running = Cluster(command, port, demote)
        running.wait_ready()
        yield running
    finally:
        if running is not None:
            running.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def cluster(**settings: str | int) -> Iterator[str]:
    """A running cluster with `settings` (postgresql.conf names); yields its admin URL."""
    with restartable(**settings) as running:
        yield running.url


def _ready(port: int) -> bool:
    done = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)], check=False)
    return done.returncode == 0


async def create_database(admin_url: str, name: str) -> str:
    """Create `name` on the cluster; its asyncpg URL for the service."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"
