"""What stops a command before it can do its work, as one line per problem (exit code 2).

A refused setting, a database that is missing, unreachable or refuses the login or a
migration, a local storage directory of another database: each is the operator's to fix,
and each has one cause. Every command reports them the same way, `configuration refused:
VARIABLE: what is wrong (and what to do)`, instead of a traceback; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

from alembic.util.exc import CommandError
from pydantic import ValidationError
from pydantic_settings import SettingsError

from session_service.core.db_failures import database_failure
from session_service.core.settings import ConfigurationRefused, Settings, get_settings
from session_service.core.settings_errors import settings_problems
from session_service.migrations import MigrationRefused
from session_service.storage.ownership import StorageOfAnotherDatabase

PREFIX = "configuration refused: "


def refusal_lines(error: BaseException) -> list[str] | None:
    """The lines explaining `error` to an operator, or None when it is not theirs to fix."""
    if isinstance(error, SettingsError) or (
        isinstance(error, ValidationError) and error.title == Settings.__name__
    ):
        return settings_problems(error)
    if isinstance(error, ConfigurationRefused):
        return error.problems
    if isinstance(error, StorageOfAnotherDatabase):
        return [str(error)]
    if isinstance(error, MigrationRefused):
        return [f"DATABASE_URL: the database refused a migration: {error}"]
    if isinstance(error, CommandError):  # the database's revision is unknown to this code
        hint = " (was it migrated by a newer version?)" if "locate revision" in str(error) else ""
        return [f"DATABASE_URL: migrations cannot run: {error}{hint}"]
    try:
        url = get_settings().database.url
    except (ValidationError, SettingsError):
        return None
    failure = database_failure(error, url)
    return [f"DATABASE_URL: {failure}"] if failure else None
