"""Refused settings as one line each: the variable, what is wrong, and what it accepts.

pydantic's `ValidationError` and pydantic-settings' `SettingsError` describe a refused
value for a programmer (a location in the nested groups, a traceback); an operator wants
the environment variable and the form to write. `settings_problems` gives one line per
variable, never the value itself (it may be a secret). `accepted_form` is the short form
(`integer ≥ 1024`, `duration > 0`) that the README's settings table shows for every
variable: both come from the fields' own types and bounds, so the table and the errors
cannot drift from the code.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import AfterValidator, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import SettingsError

from session_service.core import durations, env_lists
from session_service.core.settings import FLAT_NAMES, UnreadableSetting, field_at, setting_name

_SHORT_PROBLEMS = {
    "int_parsing": "not an integer",
    "int_from_float": "not an integer",
    "float_parsing": "not a number",
    "bool_parsing": "not true or false",
    "literal_error": "not one of the accepted values",
    "enum": "not one of the accepted values",
    "greater_than": "too small",
    "greater_than_equal": "too small",
    "less_than": "too large",
    "less_than_equal": "too large",
    "string_too_long": "too long",
}
_FIELD_IN_MESSAGE = re.compile(r'field "(\w+)"')


def settings_problems(error: ValidationError | SettingsError) -> list[str]:
    """One line per refused variable: `NAME: problem (expected form)`."""
    if isinstance(error, UnreadableSetting):
        return [_line(error.variable, [error.problem])]
    if isinstance(error, SettingsError):
        found = _FIELD_IN_MESSAGE.search(str(error))
        name = found.group(1).upper() if found else None
        return [_line(name, ["cannot be read"])] if name else [str(error)]
    by_variable: dict[str, list[str]] = {}
    for problem in error.errors():
        loc = tuple(problem.get("loc", ()))
        variable = setting_name(loc).split(".", 1)[0] if loc else ""
        by_variable.setdefault(variable, []).append(_problem(problem, loc))
    return [_line(variable or None, problems) for variable, problems in by_variable.items()]


def _problem(problem: Any, loc: tuple[str | int, ...]) -> str:
    kind = str(problem.get("type", ""))
    message = _SHORT_PROBLEMS.get(kind) or str(problem.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    item = next((part for part in reversed(loc) if isinstance(part, int)), None)
    return f"item {item + 1}: {message}" if item is not None else message


def _line(variable: str | None, problems: list[str]) -> str:
    text = "; ".join(dict.fromkeys(problems))
    if variable is None:
        return text
    name = variable.lower()
    # A validator that says what to write needs no more; neither do a list's bad items.
    said = any("write " in problem for problem in problems)
    if name in FLAT_NAMES and not said:
        field = field_at(FLAT_NAMES[name])
        items_only = all(problem.startswith("item ") for problem in problems)
        expected = None if items_only and _kind(field) == "list" else _expected(field)
        if expected:
            text = f"{text} (expected {expected})"
    return f"{variable}: {text}"


def accepted_form(name: str) -> str:
    """What a variable accepts, briefly (`integer ≥ 1024`): the README table's column."""
    field = field_at(FLAT_NAMES[name.lower()])
    kind, bounds = _kind(field), _bounds(field)
    return f"{kind} {bounds}" if bounds else kind


def _expected(field: FieldInfo) -> str | None:
    """The accepted form in a sentence, with the forms of durations and lists spelt out."""
    kind, bounds = _kind(field), _bounds(field)
    if kind == "text":
        return None  # a text's own validator says what it wants
    if kind == "duration":
        return f"a duration{' ' + bounds if bounds else ''}: {durations.FORMS}"
    if kind == "list":
        return env_lists.FORMS
    article = {"integer": "an integer", "number": "a number", "path": "a path"}.get(kind, kind)
    return f"{article} {bounds}" if bounds else article


def _kind(field: FieldInfo) -> str:
    annotation = _without_none(field.annotation)
    if durations.DURATION_INPUT in field.metadata or annotation is timedelta:
        return "duration"
    if get_origin(annotation) is list:
        return "list"
    if get_origin(annotation) is Literal:
        return _choices(str(value) for value in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _choices(str(member.value) for member in annotation)
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "integer"
    if annotation is float:
        return "number"
    if annotation is Path:
        return "path"
    return "text"


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        rest = [arg for arg in get_args(annotation) if arg is not NoneType]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _choices(values: Iterable[str]) -> str:
    *first, last = list(values)
    return f"{', '.join(first)} or {last}" if first else last


def _bounds(field: FieldInfo) -> str:
    """`≥ 1`, `1 to 200`, `> 0, ≤ 1h`: the field's constraints, durations in their units."""
    duration = _kind(field) == "duration"
    low: tuple[str, object] | None = None
    high: tuple[str, object] | None = None
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = ("≥", item.ge)
        elif isinstance(item, annotated_types.Gt):
            low = (">", item.gt)
        elif isinstance(item, annotated_types.Le):
            high = ("≤", item.le)
        elif isinstance(item, annotated_types.Lt):
            high = ("<", item.lt)
        elif isinstance(item, annotated_types.MaxLen):
            return f"of at most {item.max_length} characters"
        elif isinstance(item, AfterValidator) and isinstance(item.func, durations.Floor):
            low = ("≥", 0) if item.func.zero_allowed else (">", 0)
    show = _duration_text if duration else str
    if low and high and low[0] == "≥" and high[0] == "≤":
        return f"{show(low[1])} to {show(high[1])}"
    return ", ".join(f"{sign} {show(value)}" for sign, value in filter(None, (low, high)))


def _duration_text(seconds: object) -> str:
    """Seconds in the largest unit that divides them (`3600` → `1h`); 0 stays `0`."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if not isinstance(seconds, int | float) or seconds == 0:
        return str(seconds)
    for unit, size in sorted(durations.UNIT_SECONDS.items(), key=lambda kv: -kv[1]):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds}s"
