"""`session-service` command line: serve, migrate, cleanup, audit, openapi.

Every command reads the settings first; what the operator must fix (a refused setting, an
unusable database, storage of another database) ends any command the same way: one
`configuration refused: ...` line per problem on stderr and exit code 2
(`command_errors.py`, applied to every command by `RefusingGroup`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from alembic.util.exc import CommandError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.core import TyperGroup

from session_service import migrations, serving
from session_service.audit.sealing import AuditSealer, VerifyReport, verify_chain
from session_service.cleanup.report import CleanupReport
from session_service.cleanup.runner import job_context
from session_service.command_errors import PREFIX, refusal_lines
from session_service.core.clock import utc_now
from session_service.core.db import make_engine, make_sessionmaker, read_scope
from session_service.core.settings import (
    ConfigurationRefused,
    Settings,
    get_settings,
    production_problems,
)
from session_service.observability.logging import configure_logging
from session_service.privacy.erasure import reapply_erasures
from session_service.resources import open_resources
from session_service.storage.ownership import ensure_storage_owner

T = TypeVar("T")


class RefusingGroup(TyperGroup):
    """Runs a command; what the operator must fix becomes one line each and exit code 2."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except Exception as error:
            lines = refusal_lines(error)
            if lines is None:
                raise
            for line in lines:
                typer.echo(f"{PREFIX}{line}", err=True)
            raise typer.Exit(2) from None


def _commands(help_text: str, cls: type[TyperGroup] | None = None) -> typer.Typer:
    """A group with plain help: options show a named value (`--port PORT`) or, for flags,
    nothing, where rich help printed type labels (`<int>`, `<bool>`)."""
    return typer.Typer(cls=cls, help=help_text, rich_markup_mode=None, no_args_is_help=True)


cli = _commands("Persistent anonymous sessions: server and operator tools.", RefusingGroup)

ADOPT_HELP = (
    "Hand LOCAL_STORAGE_DIR over to this database, which then owns (and cleans up) its "
    "objects; without it a directory of another database is refused."
)
AdoptStorage = Annotated[bool, typer.Option("--adopt-storage", help=ADOPT_HELP)]


@cli.command()
def serve(
    host: Annotated[
        str | None, typer.Option(metavar="HOST", help="Bind address (default: the HOST setting).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Port (default: the PORT setting).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(metavar="N", help="Worker processes (default: the WORKERS setting)."),
    ] = None,
    adopt_storage: AdoptStorage = False,
) -> None:
    """Serve the API; migrates first unless AUTO_MIGRATE=false.

    Exit 0 once stopped by SIGTERM or SIGINT, 2 when the configuration is refused (one
    line per problem), 3 when the server cannot start (the port is taken).
    """
    settings = get_settings()
    workers = workers or settings.workers
    refused = production_problems(settings, workers=workers)
    if refused:
        raise ConfigurationRefused(refused)
    configure_logging(settings)
    try:
        with serving.stop_signals_before_serving():
            if settings.database.auto_migrate:
                migrations.upgrade(settings.database.url)
            else:
                _require_schema(settings)
            asyncio.run(ensure_storage_owner(settings, adopt=adopt_storage))
            serving.serve(
                host=host or settings.host,
                port=settings.port if port is None else port,
                workers=workers,
                drain_seconds=settings.shutdown_drain_seconds,
                http=settings.http,
                database_connections=settings.database.pool_size + settings.database.max_overflow,
            )
    except serving.StoppedBeforeServing:
        raise typer.Exit(0) from None


def _require_schema(settings: Settings) -> None:
    """Refuse a database without this version's schema: every query would fail."""
    problem = migrations.schema_problem(settings.database.url)
    if problem:
        raise ConfigurationRefused([f"DATABASE_URL: {problem}"])


class MigrateAction(StrEnum):
    """What `migrate` does."""

    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    CURRENT = "current"


@cli.command()
def migrate(
    # Described in the docstring: typer would label them `<str>` in an Arguments section.
    action: Annotated[
        MigrateAction, typer.Argument(metavar="ACTION", hidden=True)
    ] = MigrateAction.UPGRADE,
    revision: Annotated[str | None, typer.Argument(metavar="REVISION", hidden=True)] = None,
) -> None:
    """Apply, revert or show the schema migrations of DATABASE_URL; print JSON.

    ACTION is upgrade (the default), downgrade or current; REVISION the target (upgrade:
    head unless given; downgrade: required, for example base).

    Exit 0 when done, 2 for a missing or unknown target revision or a refused
    configuration (the database cannot be reached, or refused a migration).
    """
    settings = get_settings()
    configure_logging(settings, stream=sys.stderr)  # stdout carries the JSON
    url = settings.database.url
    try:
        if action is MigrateAction.UPGRADE:
            migrations.upgrade(url, revision or "head")
        elif action is MigrateAction.DOWNGRADE:
            if revision is None:
                typer.echo("downgrade needs a target revision (for example: base)", err=True)
                raise typer.Exit(2)
            migrations.downgrade(url, revision)
    except CommandError as error:
        typer.echo(f"migrate: {error}", err=True)
        raise typer.Exit(2) from None
    current = migrations.current_revision(url)
    head = migrations.head_revision()
    typer.echo(json.dumps({"current": current, "head": head, "up_to_date": current == head}))


@cli.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the OpenAPI document (the committed openapi.json must equal it).

    Exit 0; 2 when the configuration is refused.
    """
    from session_service.app import create_app

    document = json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(document)
    else:
        output.write_text(document)


audit_cli = _commands("The audit trail's hash chain.")
cli.add_typer(audit_cli, name="audit")


async def _with_sessionmaker(job: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run `job` with the database only (no store, limiter or notifier)."""
    engine = make_engine(get_settings())
    try:
        return await job(make_sessionmaker(engine))
    finally:
        await engine.dispose()


async def _verify(maker: async_sessionmaker[AsyncSession]) -> VerifyReport:
    async with read_scope(maker) as db:
        return await verify_chain(db)


@cli.command()
def cleanup(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be deleted; delete nothing.")
    ] = False,
    adopt_storage: AdoptStorage = False,
    full_sweep: Annotated[
        bool,
        typer.Option(
            "--full-sweep",
            help="Also list all of storage for orphans now, whenever the last full sweep ran "
            "(ORPHAN_FULL_SWEEP_INTERVAL).",
        ),
    ] = False,
) -> None:
    """Run cleanup once; print a JSON report.

    Exit 0 when the run finished without errors, 1 when a step failed (the report names
    it), 2 when the configuration is refused (LOCAL_STORAGE_DIR of another database
    included), 3 when another run holds the lock.
    """
    settings = get_settings()
    refused = production_problems(settings, workers=1)
    if refused:
        raise ConfigurationRefused(refused)
    configure_logging(settings, stream=sys.stderr)  # stdout carries the report
    _require_schema(settings)
    asyncio.run(ensure_storage_owner(settings, adopt=adopt_storage, dry_run=dry_run))

    async def run() -> CleanupReport | None:
        async with open_resources(settings, utc_now) as resources:
            return await resources.cleanup.run_once(
                dry_run=dry_run, full_sweep=full_sweep, ctx=job_context()
            )

    report = asyncio.run(run())
    if report is None:
        typer.echo(json.dumps({"skipped": True, "reason": "another cleanup run is in progress"}))
        raise typer.Exit(3)
    typer.echo(json.dumps(report.as_dict()))
    raise typer.Exit(1 if report.errors else 0)


@audit_cli.command("verify")
def audit_verify() -> None:
    """Recompute the chain; print a JSON report.

    Exit 0 when the chain is intact, 1 when a batch is broken, 2 when the configuration is
    refused.
    """
    configure_logging(get_settings(), stream=sys.stderr)
    _require_schema(get_settings())
    report = asyncio.run(_with_sessionmaker(_verify))
    typer.echo(json.dumps(report.as_dict()))
    raise typer.Exit(0 if report.ok else 1)


@audit_cli.command("seal")
def audit_seal() -> None:
    """Seal every event old enough now (the server also does, in the background).

    Exit 0; 2 when the configuration is refused.
    """
    settings = get_settings()
    configure_logging(settings, stream=sys.stderr)
    _require_schema(settings)

    async def seal(maker: async_sessionmaker[AsyncSession]) -> int:
        return await AuditSealer(maker, clock=utc_now, min_age=settings.audit_seal_min_age).seal()

    typer.echo(json.dumps({"sealed_events": asyncio.run(_with_sessionmaker(seal))}))


privacy_cli = _commands("Personal data: erasures.")
cli.add_typer(privacy_cli, name="privacy")


@privacy_cli.command("reapply-erasures")
def privacy_reapply_erasures() -> None:
    """After a database restore: erase again every journaled session it brought back.

    Prints `{"journal_entries", "reapplied"}` (public ids). Exit 0; 2 when the configuration
    is refused.
    """
    settings = get_settings()
    configure_logging(settings, stream=sys.stderr)  # stdout carries the report
    _require_schema(settings)

    async def run() -> tuple[int, list[uuid.UUID]]:
        async with open_resources(settings, utc_now) as resources:
            return await reapply_erasures(
                resources.eraser, resources.sessionmaker, ctx=job_context()
            )

    entries, reapplied = asyncio.run(run())
    typer.echo(json.dumps({"journal_entries": entries, "reapplied": [str(i) for i in reapplied]}))


def main() -> None:
    """Console-script entry point."""
    cli()
