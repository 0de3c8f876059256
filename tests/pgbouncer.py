"""Debian's PgBouncer in transaction pooling mode, in front of the test PostgreSQL.

Started on a free port with a configuration of its own (trust auth, a pool smaller than
the clients' so server connections are shared), ended by its PID. PgBouncer refuses to
run as root: as root it is started with `-u postgres`, in a directory of its own under the
system's temporary directory (pytest's are its owner's alone), which that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import free_port, stop, wait_for_port

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def available() -> bool:
    return Path(BINARY).exists()


@contextmanager
def transaction_pooler(*, upstream_port: int = 5432, pool_size: int = 2) -> Iterator[int]:
    """PgBouncer listening on 127.0.0.1:<port> (yielded), pooling per transaction."""
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    (directory / "users.txt").write_text('"postgres" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
* = host=127.0.0.1 port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "users.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
ignore_startup_parameters = extra_float_digits,application_name,statement_timeout
logfile = {directory / "pgbouncer.log"}
"""
    )
    command = [BINARY, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        for path in (directory, *directory.iterdir()):
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_for_port(port, process, timeout=15):
            log = directory / "pgbouncer.log"
            raise RuntimeError(
                f"PgBouncer did not start: {log.read_text() if log.exists() else ''}"
            )
        yield port
    finally:
        stop(process)
        shutil.rmtree(directory, ignore_errors=True)
