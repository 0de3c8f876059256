"""The reference stays true: every error code and every setting is documented, in the
pages the README links to (docs/errors.md, docs/configuration.md)."""

from __future__ import annotations

import re
from pathlib import Path

from session_service.app import create_app
from session_service.core.errors import ServiceError
from session_service.core.settings import FLAT_NAMES
from session_service.core.settings_errors import accepted_form
from session_service.http.codes import STATUS, ProblemCode
from session_service.http.problems import _HTTP_CODES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
ERRORS = (ROOT / "docs" / "errors.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def _service_error_codes() -> set[str]:
    create_app()  # imports every domain, so every ServiceError subclass is defined
    pending, codes = [ServiceError], set()
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return codes


def _documented() -> set[tuple[str, int]]:
    section = ERRORS
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", section, flags=re.MULTILINE)
    return {(code, int(status)) for code, status in rows}


def _documented_codes() -> set[str]:
    return {code for code, _ in _documented()}


def test_the_readme_table_is_the_code_enumeration() -> None:
    """The errors table, `ProblemCode` (the OpenAPI enum) and their statuses agree."""
    assert _documented() == {(code.value, STATUS[code]) for code in ProblemCode}


def test_every_error_code_is_in_the_readme() -> None:
    answered = (
        _service_error_codes()
        | set(_HTTP_CODES.values())
        | {"validation_error", "rate_limited", "cors_rejected"}
    )
    # Base classes that are never answered themselves.
    assert answered - {"conflict", "upload_refused"} <= _documented_codes()


def test_every_setting_is_in_the_readme() -> None:
    for name in FLAT_NAMES:
        assert f"| `{name.upper()}` |" in CONFIGURATION, name


def _settings_rows() -> dict[str, tuple[str, str, str]]:
    """Each setting's row of the Configuration table: (default, accepts, meaning)."""
    section = CONFIGURATION
    rows = re.findall(
        r"^\| `([A-Z0-9_]+)` \| (.*?) \| (.*?) \| (.*) \|$", section, flags=re.MULTILINE
    )
    return {name: (default, accepts, meaning) for name, default, accepts, meaning in rows}


def test_every_setting_says_what_it_accepts_as_the_code_does() -> None:
    """Types and bounds (`integer ≥ 1024`, `duration > 0`) come from the fields themselves."""
    rows = _settings_rows()
    assert set(rows) == {name.upper() for name in FLAT_NAMES}
    wrong = {
        name: (rows[name][1], accepted_form(name))
        for name in rows
        if rows[name][1] != accepted_form(name)
    }
    assert not wrong, wrong


def test_a_duration_that_may_be_zero_says_what_zero_does() -> None:
    for name, (_, accepts, meaning) in _settings_rows().items():
        if accepts.startswith("duration") and (
            "≥ 0" in accepts or accepts.startswith("duration 0 ")
        ):
            assert "`0`" in meaning, name
