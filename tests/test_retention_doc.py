"""docs/retention.md states the defaults the code has: a changed default changes the table."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import Enum
from pathlib import Path

import pytest

from session_service.core.settings import FLAT_NAMES, Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "retention.md"
ROW = re.compile(r"^\| .* \| `(?P<setting>[A-Z_]+)` \| `(?P<default>[^`]+)` \|$")


def _rows() -> list[tuple[str, str]]:
    rows = [
        (match["setting"], match["default"])
        for line in DOC.read_text().splitlines()
        if (match := ROW.match(line))
    ]
    assert len(rows) >= 10, "the table was not found"
    return rows


def _default(setting: str) -> object:
    value: object = Settings()
    for part in FLAT_NAMES[setting.lower()]:
        value = getattr(value, part)
    return value


def _as_written(value: object) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    assert isinstance(value, timedelta)
    days, rest = divmod(int(value.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


@pytest.mark.parametrize(("setting", "default"), _rows())
def test_each_stated_default_is_the_codes(setting: str, default: str) -> None:
    assert _as_written(_default(setting)) == default


def test_every_personal_data_setting_is_in_the_table() -> None:
    named = {setting for setting, _ in _rows()}
    assert {
        "SESSION_IDLE_TTL",
        "PENDING_TTL",
        "SESSION_MAX_AGE",
        "UPLOAD_GRACE",
        "ORPHAN_MIN_AGE",
        "AUDIT_RETENTION",
        "AUDIT_CLIENT_DETAIL",
        "ERASURE_JOURNAL_RETENTION",
    } <= named
