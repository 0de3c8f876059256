"""The README stays true: every error code and every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

from session_service.app import create_app
from session_service.core.errors import ServiceError
from session_service.core.settings import FLAT_NAMES
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


def _documented_codes() -> set[str]:
    section = README.split("## Errors", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \| \d{3} \|", section, flags=re.MULTILINE))


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
