"""The committed openapi.json is exactly what the app serves (regenerate: make openapi)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from session_service.app import create_app
from session_service.core.settings import Settings
from session_service.http.codes import ProblemCode
from session_service.http.openapi import OPERATIONS

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


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_operation_ids_are_stable_tag_and_name() -> None:
    """Generated clients name their methods after these: renaming one breaks callers."""
    document = create_app().openapi()
    ids = {(method, path): op["operationId"] for method, path, op in _operations(document)}
    assert ids == {key: operation.id for key, operation in OPERATIONS.items()}
    assert len(set(ids.values())) == len(ids)
    for _, _, operation in _operations(document):
        tag, name = operation["operationId"].split("-", 1)
        assert tag == operation["tags"][0], operation["operationId"]
        assert name == name.lower()
        assert operation["summary"], operation["operationId"]
        assert operation["description"], operation["operationId"]


def test_tags_are_described_and_servers_follow_the_public_url() -> None:
    document = create_app().openapi()
    described = {tag["name"] for tag in document["tags"] if tag["description"]}
    used = {op["tags"][0] for _, _, op in _operations(document)}
    assert used <= described
    assert "servers" not in document
    public = create_app(Settings(public_base_url="https://sessions.example.com")).openapi()
    assert public["servers"] == [{"url": "https://sessions.example.com"}]


def test_every_error_is_problem_json_with_the_problem_schema() -> None:
    document = create_app().openapi()
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)
            assert "X-Request-ID" in response["headers"], (method, path, status)
            if int(status) == 429:
                assert {"Retry-After", "X-RateLimit-Reset"} <= set(response["headers"])
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


def test_problem_codes_are_an_enum_of_every_documented_code() -> None:
    schemas = create_app().openapi()["components"]["schemas"]
    assert schemas["Problem"]["properties"]["code"] == {"$ref": "#/components/schemas/ProblemCode"}
    assert set(schemas["ProblemCode"]["enum"]) == {code.value for code in ProblemCode}
    # Members sent with some codes only are optional and never null.
    reason = schemas["Problem"]["properties"]["reason"]
    assert reason["type"] == "string"
    assert "reason" not in schemas["Problem"]["required"]


def test_session_header_is_required_where_its_absence_is_a_401() -> None:
    document = create_app().openapi()
    for method, path, operation in _operations(document):
        headers = [
            parameter
            for parameter in operation.get("parameters", [])
            if parameter["name"] == "X-Session-ID"
        ]
        for parameter in headers:
            assert parameter["schema"] == {"type": "string"}, (method, path)
            assert parameter["required"] is ("401" in operation["responses"]), (method, path)


def test_an_optional_body_is_not_a_union_with_null() -> None:
    body = create_app().openapi()["paths"]["/api/v1/sessions"]["post"]["requestBody"]
    assert body["required"] is False
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SessionCreate"
    }


def test_request_bodies_and_main_answers_have_examples() -> None:
    document = create_app().openapi()
    schemas = document["components"]["schemas"]
    for method, path, operation in _operations(document):
        refs = [
            media["schema"].get("$ref", "")
            for media in operation.get("requestBody", {}).get("content", {}).values()
        ]
        for status, response in operation["responses"].items():
            if int(status) < 300:
                refs += [
                    media.get("schema", {}).get("$ref", "")
                    for media in response.get("content", {}).values()
                ]
        for ref in filter(None, refs):
            name = ref.rsplit("/", 1)[1]
            assert schemas[name].get("examples"), (method, path, name)


def _models_with_examples() -> list[type[BaseModel]]:
    create_app()  # imports every domain's schemas
    pending: list[type[BaseModel]] = [BaseModel]
    found = []
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        extra = model.model_config.get("json_schema_extra")
        mine = model.__module__.startswith("session_service.")
        if mine and isinstance(extra, dict) and "examples" in extra:
            found.append(model)
    return found


def test_every_example_is_valid_for_its_own_model() -> None:
    """An example is what the API would really answer (or accept), not prose."""
    models = _models_with_examples()
    assert len(models) >= 20
    for model in models:
        extra = model.model_config.get("json_schema_extra")
        assert isinstance(extra, dict)
        examples = extra["examples"]
        assert isinstance(examples, list)
        for example in examples:
            model.model_validate_json(json.dumps(example))
