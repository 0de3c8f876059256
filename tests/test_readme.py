"""The README stays true: every error code and every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

from session_service.app import create_app
from session_service.core.errors import ServiceError
from session_service.core.settings import FLAT_NAMES
from session_service.http.codes import STATUS, ProblemCode
from session_service.http.problems import _HTTP_CODES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _service_error_codes() -> set[str]:
    create_app()  # imports every domain, so every ServiceError subclass is defined
    pending, codes = [ServiceError], set()
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return codes


def _documented() -> set[tuple[str, int]]:
    section = README.split("## Errors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", section, flags=re.MULTILINE)
    return {(code, int(status)) for code, status in rows}


def _documented_codes() -> set[str]:
    return {code for code, _ in _documented()}


def test_the_readme_table_is_the_code_enumeration() -> None:
    """The README's table, `ProblemCode` (the OpenAPI enum) and their statuses agree."""
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
        assert f"| `{name.upper()}` |" in README, name
