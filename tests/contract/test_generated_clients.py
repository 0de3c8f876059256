"""The committed openapi.json against the client generators frontends and backends use.

From openapi.json, each test generates a client into a temporary directory and type-checks a
short flow (tests/contract/flows/) that reads a success body and an error's `code` and
`reason` with no cast, no Any and no suppression:

- Python: openapi-python-client (its own virtualenv, .venv-codegen, made by `make install`)
  generates the package `session_service_client`; the project's mypy (--strict) checks the
  flow together with the whole generated package.
- TypeScript: openapi-typescript generates `paths`; `tsc --strict` checks the flow, which
  calls the service through openapi-fetch (both from tests/web/node_modules).

A generator that prints a warning fails the test, and so does a flow that stops
type-checking (a success body or an error member that lost its type, an operation that
moved or was renamed, the generated code itself). The lines that read an error body carry
the marker `contract: error-body`: each flow must have some.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from tests.processes import require

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OPENAPI = ROOT / "openapi.json"
FLOWS = HERE / "flows"
PYTHON_FLOW = FLOWS / "flow_python.py"
TS_FLOW = FLOWS / "flow.ts"
PYTHON_CONFIG = HERE / "openapi-python-client.yaml"
REDOCLY_CONFIG = HERE / "redocly.yaml"
CODEGEN_BIN = ROOT / ".venv-codegen" / "bin"
OPENAPI_PYTHON_CLIENT = CODEGEN_BIN / "openapi-python-client"
NODE_MODULES = ROOT / "tests" / "web" / "node_modules"
OPENAPI_TYPESCRIPT = NODE_MODULES / ".bin" / "openapi-typescript"
TSC = NODE_MODULES / ".bin" / "tsc"
PACKAGE = "session_service_client"
MARKER = "contract: error-body"
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"


def _run(
    command: list[str | Path], cwd: Path, *, env: dict[str, str] | None = None, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _marked_lines(flow: Path) -> set[int]:
    """The lines of `flow` that end in the marker comment."""
    lines = flow.read_text().splitlines()
    marked = re.compile(rf"\S.*(#|//) {MARKER}$")
    return {number for number, line in enumerate(lines, start=1) if marked.search(line)}


def _judge(flow: Path, errors: list[tuple[int, str]], output: str) -> None:
    """No type error anywhere: in the flow, or in the generated code it imports."""
    assert not errors, (
        f"{flow.name} does not type-check:\n"
        + "\n".join(message for _, message in errors)
        + f"\n\nfull output:\n{output}"
    )


def _need_node() -> None:
    missing = [
        what
        for what, present in (
            ("node", shutil.which("node") is not None),
            (str(OPENAPI_TYPESCRIPT.relative_to(ROOT)), OPENAPI_TYPESCRIPT.exists()),
            (str(TSC.relative_to(ROOT)), TSC.exists()),
        )
        if not present
    ]
    if not missing:
        return
    reason = f"{', '.join(missing)} missing (make test installs them when npm is present)"
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} and REQUIRE_BROWSER=1")
    pytest.skip(reason)


def test_flows_read_without_casts() -> None:
    """The flows prove something only if they take no shortcut past the generated types."""
    python = PYTHON_FLOW.read_text()
    code_tokens: list[str] = []
    for token in tokenize.generate_tokens(io.StringIO(python).readline):
        if token.type == tokenize.COMMENT:
            assert not re.search(r"type:\s*ignore", token.string), token.string
        elif token.type == tokenize.NAME:
            code_tokens.append(token.string)
    assert not {"cast", "Any", "TYPE_CHECKING", "getattr"} & set(code_tokens)

    typescript = TS_FLOW.read_text()
    assert "@ts-" not in typescript
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", typescript, flags=re.DOTALL)
    code = re.sub(r'"[^"\n]*"', '""', code)
    assert not re.search(r"\bas\b|\bany\b|\bunknown\b|!(?!=)", code), "a cast in flow.ts"

    assert _marked_lines(PYTHON_FLOW), "flow_python.py marks no error-body line"
    assert _marked_lines(TS_FLOW), "flow.ts marks no error-body line"


def test_python_client(tmp_path: Path) -> None:
    require(
        OPENAPI_PYTHON_CLIENT.exists(),
        f"{OPENAPI_PYTHON_CLIENT.relative_to(ROOT)} is missing (make install creates it)",
    )
    # Its post-generation hooks run ruff, which lives in the same virtualenv.
    env = {**os.environ, "PATH": f"{CODEGEN_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    generated = _run(
        [
            OPENAPI_PYTHON_CLIENT,
            "generate",
            "--path",
            OPENAPI,
            "--config",
            PYTHON_CONFIG,
            "--meta",
            "none",
            "--output-path",
            tmp_path / PACKAGE,
        ],
        tmp_path,
        env=env,
        timeout=120,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "warning" not in output.lower(), f"openapi-python-client warned:\n{output}"
    assert not generated.stderr.strip(), f"openapi-python-client complained:\n{output}"
    assert (tmp_path / PACKAGE / "__init__.py").exists(), output

    shutil.copy(PYTHON_FLOW, tmp_path / PYTHON_FLOW.name)
    (tmp_path / "mypy.ini").write_text(
        "[mypy]\n"
        "strict = True\n"
        "python_version = 3.11\n"
        "warn_unreachable = True\n"
        "\n"
        # The flow must not touch an Any at all, not even one the generated code hands out.
        "[mypy-flow_python]\n"
        "disallow_any_expr = True\n"
        "disallow_any_explicit = True\n"
        "\n"
        # openapi-python-client 0.29's client.py (a fixed template, the same for any
        # document) forwards `*args: object` to httpx's typed __exit__ and __aexit__.
        f"[mypy-{PACKAGE}.client]\n"
        "disable_error_code = arg-type\n"
    )
    checked = _run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "mypy.ini",
            "--cache-dir",
            tmp_path / ".mypy_cache",
            "--no-pretty",
            "--no-error-summary",
            "--hide-error-context",
            "--no-color-output",
            PYTHON_FLOW.name,
        ],
        tmp_path,
        timeout=300,
    )
    output = checked.stdout + checked.stderr
    errors: list[tuple[int, str]] = []
    for line in output.splitlines():
        match = re.match(r"(?P<file>[^:]+):(?P<line>\d+): (?P<kind>error|note): ", line)
        if match is None:
            assert not line.strip(), f"unexpected mypy output:\n{output}"
            continue
        if match["kind"] == "note":
            continue
        # An error inside the generated package counts as an unmarked line.
        number = int(match["line"]) if match["file"] == PYTHON_FLOW.name else 0
        errors.append((number, line))
    assert checked.returncode in (0, 1), output
    assert (checked.returncode == 1) == bool(errors), output
    _judge(PYTHON_FLOW, errors, output)


def test_typescript_client(tmp_path: Path) -> None:
    _need_node()
    generated = _run(
        [
            OPENAPI_TYPESCRIPT,
            OPENAPI,
            "--redocly",
            REDOCLY_CONFIG,
            "--output",
            tmp_path / "schema.ts",
        ],
        tmp_path,
        timeout=120,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    # Warnings (⚠, lint findings included) and errors (✘) go to stderr.
    assert not generated.stderr.strip(), f"openapi-typescript warned:\n{output}"
    assert (tmp_path / "schema.ts").exists(), output

    shutil.copy(TS_FLOW, tmp_path / TS_FLOW.name)
    tsconfig = {
        "compilerOptions": {
            "target": "ES2022",
            "module": "ESNext",
            "moduleResolution": "Bundler",
            "lib": ["ES2022", "DOM", "DOM.Iterable"],
            "types": [],
            "strict": True,
            "exactOptionalPropertyTypes": True,
            "noUncheckedIndexedAccess": True,
            "noUnusedLocals": True,
            "noUnusedParameters": True,
            "skipLibCheck": False,
            "noEmit": True,
            "paths": {"openapi-fetch": [str(NODE_MODULES / "openapi-fetch")]},
        },
        "files": [TS_FLOW.name],
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(tsconfig, indent=2))
    checked = _run(
        [TSC, "--strict", "--noEmit", "--pretty", "false", "-p", tmp_path / "tsconfig.json"],
        tmp_path,
        timeout=300,
    )
    output = checked.stdout + checked.stderr
    errors: list[tuple[int, str]] = []
    for line in output.splitlines():
        match = re.match(r"(?P<file>[^(]+)\((?P<line>\d+),\d+\): error ", line)
        if match is None:
            # tsc continues a message on indented lines.
            assert not line.strip() or line.startswith(" "), f"unexpected tsc output:\n{output}"
            continue
        number = int(match["line"]) if match["file"] == TS_FLOW.name else 0
        errors.append((number, line))
    assert (checked.returncode != 0) == bool(errors), output
    _judge(TS_FLOW, errors, output)
