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
    """Browser routes take the id from X-Session-ID; only key-holding callers put it in a URL."""
    document = create_app().openapi()
    for path, operations in document["paths"].items():
        for operation in operations.values():
            privileged = bool(operation.get("security"))
            for parameter in operation.get("parameters", []):
                name = parameter["name"].lower()
                if name in {"x-session-id", "session_id"} and parameter["in"] != "header":
                    # §10: services name a session in the path, admins filter by it.
                    assert privileged, (path, parameter)


def test_privileged_routes_show_their_security_scheme() -> None:
    document = create_app().openapi()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path in ("/api/v1/sessions/{session_id}", "/api/v1/sessions/{session_id}/complete"):
        for operation in document["paths"][path].values():
            assert operation["security"] == [{"HTTPBearer": []}], path
