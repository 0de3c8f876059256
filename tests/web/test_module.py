"""The browser module (web/client/session-client.js): its unit tests, its declarations, and its
tables checked against the error table (docs/errors.md) and the server.

- the Node unit tests pass (`node --test tests/web/unit/`);
- the TypeScript declarations type-check a realistic use (`tsc --noEmit -p tests/web`);
- MESSAGES maps exactly the codes of the Errors table (docs/errors.md), so a new code cannot be
  forgotten;
- every reason the module sends is one the server accepts, and the message roles it
  declares are the server's;
- `npm pack` packs the module, the React bindings, their declarations and the README, and
  nothing else; the manifest's version and license are the Python project's.

Without Node these are skipped, unless REQUIRE_BROWSER=1 (CI), which makes it a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from session_service.conversations.models import Role
from session_service.sessions.errors import InvalidReason
from session_service.sessions.schemas import ResetReason

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "tests" / "web"
STATIC = ROOT / "src" / "session_service" / "web" / "client"
MODULE = STATIC / "session-client.js"
DECLARATIONS = STATIC / "session-client.d.ts"
ERRORS = ROOT / "docs" / "errors.md"
PYPROJECT = ROOT / "pyproject.toml"
# What `npm pack` puts in @session-service/client: no tests, no sources of anything else.
PACKAGE_FILES = {
    "package.json",
    "README.md",
    "session-client.js",
    "session-client.d.ts",
    "react.js",
    "react.d.ts",
}
TSC = WEB / "node_modules" / ".bin" / "tsc"
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"`{name}` is not installed (Node.js 20+ runs the browser module's tests)"
        if REQUIRE_BROWSER:
            pytest.fail(f"{reason} and REQUIRE_BROWSER=1")
        pytest.skip(reason)
    return path


def _run(command: list[str], timeout: float, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _object_literal(source: str, name: str) -> str:
    """The `{...}` or `[...]` of `const <name> = Object.freeze(...);` in the module."""
    match = re.search(rf"const {name} = Object\.freeze\(([\[{{].*?[\]}}])\);\n", source, re.DOTALL)
    assert match is not None, f"{name} not found in {MODULE.name}"
    return match.group(1)


def _union(name: str) -> set[str]:
    """The string literals of `export type <name> = "a" | "b" ...;` in the declarations."""
    match = re.search(rf"export type {name} =([^;]*);", DECLARATIONS.read_text())
    assert match is not None, f"type {name} not declared in {DECLARATIONS.name}"
    return set(re.findall(r'"([^"]+)"', match.group(1)))


def _documented_codes() -> dict[str, int]:
    """`code -> status` from the rows of the Errors table."""
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| (\d{3}) \|", ERRORS.read_text(), re.MULTILINE)
    assert rows, "no rows found in the Errors table"
    return {code: int(status) for code, status in rows}


def _message_codes() -> set[str]:
    table = _object_literal(MODULE.read_text(), "MESSAGES")
    return set(re.findall(r"^\s+([a-z0-9_]+):", table, re.MULTILINE))


def test_node_unit_tests_pass() -> None:
    node = _tool("node")
    result = _run([node, "--test", "tests/web/unit/"], timeout=120)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert re.search(r"^# pass [1-9]", result.stdout, re.MULTILINE), result.stdout[-2000:]


def test_declarations_type_check_a_realistic_use() -> None:
    _tool("node")
    if not TSC.exists():
        npm = _tool("npm")
        install = _run([npm, "ci", "--prefix", str(WEB), "--no-audit", "--no-fund"], timeout=300)
        assert install.returncode == 0, install.stdout[-4000:] + install.stderr[-4000:]
    result = _run([str(TSC), "--noEmit", "-p", str(WEB)], timeout=300)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]


def test_messages_map_exactly_the_documented_error_codes() -> None:
    documented = set(_documented_codes())
    messages = _message_codes()
    assert messages == documented, (
        f"in the error table but without a message: {sorted(documented - messages)}; "
        f"with a message but not in the error table: {sorted(messages - documented)}"
    )
    assert _union("ServerErrorCode") == documented


def test_client_only_codes_stay_out_of_messages() -> None:
    table = _object_literal(MODULE.read_text(), "CLIENT_MESSAGES")
    client = set(re.findall(r"^\s+([a-z0-9_]+):", table, re.MULTILINE))
    assert client == _union("ClientErrorCode")
    assert {"cors_or_network", "timeout", "aborted", "session_replaced"} <= client
    assert not client & set(_documented_codes())


def test_every_reason_the_module_uses_is_one_the_server_accepts() -> None:
    source = MODULE.read_text()
    accepted = {reason.value for reason in ResetReason}
    invalid = {reason.value for reason in InvalidReason}

    # Validate's reasons are passed through to reset: the module must know exactly these.
    known_invalid = set(re.findall(r'"([a-z_]+)"', _object_literal(source, "INVALID_REASONS")))
    assert known_invalid == invalid
    assert invalid <= accepted

    # The reasons the module sends itself.
    table = dict(
        re.findall(
            r'^\s+([A-Z_]+): "([a-z_]+)",', _object_literal(source, "RESET_REASONS"), re.MULTILINE
        )
    )
    assert table, "RESET_REASONS is empty"
    assert set(table.values()) <= accepted, set(table.values()) - accepted
    # A misspelt RESET_REASONS.X would silently send `undefined`.
    used = set(re.findall(r"RESET_REASONS\.([A-Z_]+)", source))
    assert used <= set(table), used - set(table)
    assert "TAMPERED" in used

    # No reason is written out anywhere else (e.g. `reset("expird")`).
    literal_reasons = re.findall(r'reason: "([a-z_]+)"|reset\("([a-z_]+)"\)', source)
    assert {value for pair in literal_reasons for value in pair if value} <= accepted

    # The declarations offer the page exactly what the server accepts.
    assert _union("ResetReason") == accepted
    assert _union("InvalidReason") == invalid


def test_declared_message_roles_are_the_servers() -> None:
    assert _union("Role") == {role.value for role in Role}


def test_readme_rows_parse_as_expected() -> None:
    """Guard the parser: a few rows the table is known to have."""
    codes = _documented_codes()
    assert codes["session_invalid"] == 401
    assert codes["rate_limited"] == 429
    assert codes["upload_rejected"] == 422
    assert len(codes) >= 30


def test_npm_pack_packs_the_module_the_react_bindings_their_types_and_nothing_else() -> None:
    npm = _tool("npm")
    result = _run([npm, "pack", "--dry-run", "--json", "--ignore-scripts"], 120, cwd=STATIC)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (packed,) = json.loads(result.stdout)
    assert packed["name"] == "@session-service/client"
    assert {entry["path"] for entry in packed["files"]} == PACKAGE_FILES


def test_the_package_manifest_matches_the_project_and_its_files() -> None:
    manifest = json.loads((STATIC / "package.json").read_text())
    project = tomllib.loads(PYPROJECT.read_text())
    assert manifest["version"] == project["project"]["version"]
    assert manifest["license"] == project["project"]["license"]
    assert manifest["type"] == "module"
    assert manifest["sideEffects"] is False
    assert manifest["exports"]["."] == {
        "types": "./session-client.d.ts",
        "default": "./session-client.js",
    }
    assert manifest["exports"]["./react"] == {"types": "./react.d.ts", "default": "./react.js"}
    assert manifest["types"] == "./session-client.d.ts"
    # The core module needs no React: an optional peer.
    assert manifest["peerDependencies"] == {"react": ">=18"}
    assert manifest["peerDependenciesMeta"] == {"react": {"optional": True}}
    assert "dependencies" not in manifest
    assert set(manifest["files"]) | {"package.json"} == PACKAGE_FILES
    for name in PACKAGE_FILES:
        assert (STATIC / name).is_file(), name
    # The Python package ships the same folder (package data).
    patterns = project["tool"]["setuptools"]["package-data"]["session_service"]
    for name in PACKAGE_FILES:
        assert any(fnmatch(f"web/client/{name}", pattern) for pattern in patterns), name


def test_the_react_bindings_are_plain_javascript_importing_react_and_the_module() -> None:
    """No build step: no JSX (Node parses the file as is); imports "react" and the module."""
    node = _tool("node")
    result = _run([node, "--check", str(STATIC / "react.js")], timeout=60)
    assert result.returncode == 0, result.stderr[-4000:]
    source = (STATIC / "react.js").read_text()
    imported = set(re.findall(r'^(?:import|export)\b[^;]*?from "([^"]+)";', source, re.M))
    assert imported == {"react", "./session-client.js"}
