"""Durations as people type them into an environment: `90`, `0.5`, `15m`, `1h30m`, `PT15M`.

Every time setting takes the same forms, so nobody has to remember which one wanted
seconds and which ISO 8601: a number of seconds, numbers with a unit (`s`, `m`, `h`, `d`,
case-insensitive, several in a row like `1h30m`) or ISO 8601 (`PT15M`, `P7D`). Whether
zero makes sense is the setting's business: `Duration` refuses it (an idle TTL of 0 would
expire every session at birth), `DurationOrZero` takes it where the setting documents
what `0` means (off, at once, forever). Negative values never make sense and are refused
by both. `Seconds` and `WholeSeconds` read the same forms into a number of seconds for
settings that are used as numbers (timeouts handed to libraries); their bounds are the
field's own (`Field(gt=0)`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator, TypeAdapter, ValidationError

UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WITH_UNITS = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+", re.IGNORECASE)
_ONE_UNIT = re.compile(r"(\d+(?:\.\d+)?)([smhd])", re.IGNORECASE)
_ISO_8601: TypeAdapter[timedelta] = TypeAdapter(timedelta)

FORMS: Final = "seconds (90), 30s, 15m, 1h, 7d or ISO 8601 (PT15M, P7D)"
"""The accepted forms, as refused settings name them (`settings_errors`)."""


class DurationInput:
    """Marks a field as a duration, whatever type it is read into (for docs and errors)."""


DURATION_INPUT: Final = DurationInput()


def parse_duration(value: object) -> timedelta:
    """A duration from seconds, numbers with units or ISO 8601; ValueError otherwise."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_seconds(float(value))
    if not isinstance(value, str):
        raise ValueError("not a duration")
    text = value.strip()
    try:
        return _from_seconds(float(text))
    except ValueError:
        pass
    if _WITH_UNITS.fullmatch(text):
        return _from_seconds(
            sum(
                float(number) * UNIT_SECONDS[unit.lower()]
                for number, unit in _ONE_UNIT.findall(text)
            )
        )
    try:
        # ISO 8601 (and the HH:MM:SS form pydantic has always taken)
        return _ISO_8601.validate_python(text)
    except ValidationError:
        raise ValueError("not a duration") from None


def _from_seconds(seconds: float) -> timedelta:
    if not math.isfinite(seconds):
        raise ValueError("not a duration")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError("too long a duration") from None


def to_seconds(value: object) -> float:
    """The same forms as a number of seconds (numbers pass through unchanged)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_seconds(float(value)).total_seconds()
    return parse_duration(value).total_seconds()


def to_whole_seconds(value: object) -> int:
    """The same forms as whole seconds; a fraction is refused rather than rounded away."""
    seconds = to_seconds(value)
    if seconds != int(seconds):
        raise ValueError("must be whole seconds")
    return int(seconds)


@dataclass(frozen=True, slots=True)
class Floor:
    """The lower bound of a duration setting: above zero, or zero allowed."""

    zero_allowed: bool

    def __call__(self, value: timedelta) -> timedelta:
        if value < timedelta(0) or (value == timedelta(0) and not self.zero_allowed):
            raise ValueError("must not be negative" if self.zero_allowed else "must be more than 0")
        return value


POSITIVE: Final = Floor(zero_allowed=False)
ZERO_OR_MORE: Final = Floor(zero_allowed=True)

Duration = Annotated[
    timedelta, DURATION_INPUT, BeforeValidator(parse_duration), AfterValidator(POSITIVE)
]
"""A duration that must be more than zero: what a new duration setting should use."""

DurationOrZero = Annotated[
    timedelta, DURATION_INPUT, BeforeValidator(parse_duration), AfterValidator(ZERO_OR_MORE)
]
"""A duration where `0` has a documented meaning (off, at once, forever)."""

Seconds = Annotated[float, DURATION_INPUT, BeforeValidator(to_seconds)]
"""A duration read as float seconds; bounds come from the field (`Field(gt=0)`)."""

WholeSeconds = Annotated[int, DURATION_INPUT, BeforeValidator(to_whole_seconds)]
"""A duration read as whole seconds (for values sent on as integers, like a header)."""
