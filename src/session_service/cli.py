"""`session-service` command line: serve, migrate, openapi."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from session_service import migrations
from session_service.logging import configure_logging
from session_service.settings import get_settings

cli = typer.Typer(
    help="Persistent anonymous sessions: server and operator tools.", no_args_is_help=True
)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [WORKERS].")] = None,
) -> None:
    """Serve the API (applies pending migrations first unless AUTO_MIGRATE=false)."""
    settings = get_settings()
    configure_logging(settings)
    if settings.auto_migrate:
        migrations.upgrade(settings.database_url)
    uvicorn.run(
        "session_service.app:create_app_from_env",
        factory=True,
        host=host or settings.host,
        port=settings.port if port is None else port,
        workers=workers or settings.workers,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


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
    """Apply, revert or show schema migrations on DATABASE_URL."""
    settings = get_settings()
    configure_logging(settings)
    url = settings.database_url
    if action is MigrateAction.UPGRADE:
        migrations.upgrade(url, revision or "head")
    elif action is MigrateAction.DOWNGRADE:
        if revision is None:
            typer.echo("downgrade needs a target revision (for example: base)", err=True)
            raise typer.Exit(2)
        migrations.downgrade(url, revision)
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


def main() -> None:
    """Console-script entry point."""
    cli()
