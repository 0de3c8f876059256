"""Why a command could not use its database, in one line an operator can act on.

A missing database, nothing listening on the port or a refused login surfaces from
SQLAlchemy, Alembic and asyncpg as hundreds of lines of nested tracebacks; each has one
cause and one remedy (`createdb`, start the server, fix the user). `database_failure`
finds the driver's error behind the wrappers and names both, with where it connected
(host, port, database, user: never the password).
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and what is behind it: SQLAlchemy's `.orig`, then causes and contexts."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = current.orig if isinstance(current, sa_exc.DBAPIError) else None
        if isinstance(orig, BaseException):
            current = orig
        else:
            current = current.__cause__ or current.__context__


def database_failure(error: BaseException, url: str) -> str | None:
    """What kept `url`'s database from being used, with the remedy; None if not that."""
    target = make_url(url)
    if target.get_backend_name() == "sqlite":
        return _sqlite_failure(error, target.database or "")
    host = target.host or "localhost"
    port = target.port or 5432
    where = f"{host}:{port}"
    name = target.database or target.username or "postgres"
    for cause in causes(error):
        if isinstance(cause, asyncpg.InvalidCatalogNameError):
            user = f" -U {target.username}" if target.username else ""
            return (
                f'database "{name}" does not exist on {where}; create it: '
                f"createdb -h {host} -p {port}{user} {name}"
            )
        if isinstance(
            cause, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
        ):
            return f"{_server_message(cause)} on {where}; check the user and password"
        if isinstance(cause, asyncpg.CannotConnectNowError):
            return f"the database server on {where} is starting or stopping; try again shortly"
        if isinstance(cause, asyncpg.TooManyConnectionsError):
            return f"the database server on {where} has no connection slot left"
        if isinstance(cause, socket.gaierror):
            return f"the database host {host} is not known (name resolution failed)"
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return (
                f"nothing listens on {where} (connection refused); start PostgreSQL there "
                "or correct the host and port"
            )
        if isinstance(cause, TimeoutError) and _while_connecting(error):
            return (
                f"{where} did not answer within DATABASE_CONNECT_TIMEOUT; check the host, "
                "port and firewall"
            )
    return None


def _while_connecting(error: BaseException) -> bool:
    """Whether a timeout happened opening the connection (not a slow statement)."""
    return any(
        frame.tb_frame.f_code.co_name in {"connect", "_connect", "do_connect"}
        for cause in causes(error)
        for frame in _frames(cause)
    )


def _frames(error: BaseException) -> Iterator[TracebackType]:
    tb = error.__traceback__
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _sqlite_failure(error: BaseException, path: str) -> str | None:
    file = Path(path).expanduser().resolve()
    for cause in causes(error):
        if isinstance(cause, sqlite3.OperationalError) and "unable to open" in str(cause):
            return f"the SQLite file {file} cannot be opened; check it and its directory"
        if isinstance(cause, OSError) and cause.filename is not None:
            failed = Path(os.fsdecode(cause.filename)).resolve()
            if failed == file or failed in file.parents:
                return f"the SQLite file {file} cannot be created: {failed}: {cause.strerror}"
    return None


def _server_message(error: BaseException) -> str:
    """The server's own sentence (`role "x" does not exist`), its first line only."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
