"""The committed openapi.json is exactly what the app serves (regenerate: make openapi)."""

from __future__ import annotations

import json
from pathlib import Path

from session_service.app import create_app

COMMITTED = Path(__file__).resolve().parents[1] / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.is_file(), "openapi.json is missing: run `make openapi`"
    committed = json.loads(COMMITTED.read_text())
    assert committed == create_app().openapi(), "openapi.json is stale: run `make openapi`"


def test_session_id_travels_in_a_header_never_in_a_browser_url() -> None:
    document = create_app().openapi()
    for path, operations in document["paths"].items():
        assert "{id}" not in path or "/sessions/{id}" in path, path
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"].lower() in {"x-session-id", "session_id"}:
                    assert parameter["in"] == "header", (path, parameter)
