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


@contextmanager
def cluster(**settings: str | int) -> Iterator[str]:
    """A running cluster with `settings` (postgresql.conf names); yields its admin URL."""
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
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=demote,
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        if not wait_for_port(port, server):
            raise RuntimeError("the throwaway PostgreSQL did not start")
        while not _ready(port):  # listening comes before accepting connections
            time.sleep(0.1)
        yield url
    finally:
        stop(server, timeout=15)  # smart shutdown; then immediate
        shutil.rmtree(directory, ignore_errors=True)


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
