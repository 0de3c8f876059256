"""`session-service` command line: serve, migrate, cleanup, audit, openapi."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from alembic.util.exc import CommandError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service import migrations, serving
from session_service.audit.sealing import AuditSealer, VerifyReport, verify_chain
from session_service.cleanup.report import CleanupReport
from session_service.cleanup.runner import job_context
from session_service.core.clock import utc_now
from session_service.core.db import make_engine, make_sessionmaker, read_scope
from session_service.core.settings import (
    Settings,
    get_settings,
    production_problems,
    setting_name,
)
from session_service.observability.logging import configure_logging
from session_service.privacy.erasure import reapply_erasures
from session_service.resources import open_resources

T = TypeVar("T")

cli = typer.Typer(
    help="Persistent anonymous sessions: server and operator tools.", no_args_is_help=True
)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [WORKERS].")] = None,
) -> None:
    """Serve the API (applies pending migrations first unless AUTO_MIGRATE=false).

    Exit 2 when the configuration is refused (in production: see ENVIRONMENT).
    """
    settings = _settings_or_exit()
    refused = production_problems(settings, workers=workers or settings.workers)
    if refused:
        _refuse(refused)
    configure_logging(settings)
    if settings.database.auto_migrate:
        migrations.upgrade(settings.database.url)
    serving.serve(
        host=host or settings.host,
        port=settings.port if port is None else port,
        workers=workers or settings.workers,
        drain_seconds=settings.shutdown_drain_seconds,
        http=settings.http,
        database_connections=settings.database.pool_size + settings.database.max_overflow,
    )


def _settings_or_exit() -> Settings:
    """The settings, or a clear message per refused setting and exit code 2."""
    try:
        return get_settings()
    except ValidationError as error:
        _refuse([_describe(problem) for problem in error.errors()])
        raise  # unreachable: _refuse exits


def _describe(problem: Any) -> str:
    loc = problem.get("loc", ())
    message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{setting_name(loc)}: {message}" if loc else message


def _refuse(problems: list[str]) -> NoReturn:
    for problem in problems:
        typer.echo(f"configuration refused: {problem}", err=True)
    raise typer.Exit(2)


class MigrateAction(StrEnum):
    """What `migrate` does."""

    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    CURRENT = "current"


@cli.command()
def migrate(
    action: Annotated[MigrateAction, typer.Argument()] = MigrateAction.UPGRADE,
    revision: Annotated[
        str | None,
        typer.Argument(help="Target revision (upgrade: default head; downgrade: required)."),
    ] = None,
) -> None:
    """Apply, revert or show schema migrations on DATABASE_URL; print JSON.

    Exit 0 when done, 2 for a missing or unknown target revision.
    """
    settings = _settings_or_exit()
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
        Path | None, typer.Option(help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the OpenAPI document (the committed openapi.json must equal it)."""
    from session_service.app import create_app

    document = json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(document)
    else:
        output.write_text(document)


audit_cli = typer.Typer(help="The audit trail's hash chain.", no_args_is_help=True)
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
    it), 2 when the configuration is refused, 3 when another run holds the lock.
    """
    settings = _settings_or_exit()
    refused = production_problems(settings, workers=1)
    if refused:
        _refuse(refused)
    configure_logging(settings, stream=sys.stderr)  # stdout carries the report

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
    """Recompute the chain; print a JSON report; exit 1 if any batch is broken."""
    configure_logging(_settings_or_exit(), stream=sys.stderr)
    report = asyncio.run(_with_sessionmaker(_verify))
    typer.echo(json.dumps(report.as_dict()))
    raise typer.Exit(0 if report.ok else 1)


@audit_cli.command("seal")
def audit_seal() -> None:
    """Seal every event old enough now (the server also does this in the background)."""
    settings = _settings_or_exit()
    configure_logging(settings, stream=sys.stderr)

    async def seal(maker: async_sessionmaker[AsyncSession]) -> int:
        return await AuditSealer(maker, clock=utc_now, min_age=settings.audit_seal_min_age).seal()

    typer.echo(json.dumps({"sealed_events": asyncio.run(_with_sessionmaker(seal))}))


privacy_cli = typer.Typer(help="Personal data: erasures.", no_args_is_help=True)
cli.add_typer(privacy_cli, name="privacy")


@privacy_cli.command("reapply-erasures")
def privacy_reapply_erasures() -> None:
    """After a database restore: erase again every journaled session it brought back.

    Prints `{"journal_entries", "reapplied"}` (public ids). Exit 0; 2 when the configuration
    is refused.
    """
    settings = _settings_or_exit()
    configure_logging(settings, stream=sys.stderr)  # stdout carries the report

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
