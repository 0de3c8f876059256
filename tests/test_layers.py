"""The house's layers hold: the core imports no layer above it, no domain the assembly."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "session_service"
ASSEMBLY = (
    "session_service.app",
    "session_service.api",
    "session_service.cli",
    "session_service.migrations",
)
DOMAINS = (
    "audit",
    "cleanup",
    "deletions",
    "files",
    "idempotency",
    "notify",
    "privacy",
    "ratelimit",
    "sessions",
    "storage",
    "web",
)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("core"), ids=lambda path: path.name)
def test_the_core_imports_nothing_above_it(path: Path) -> None:
    ours = {name for name in _imports(path) if name.startswith("session_service.")}
    assert all(name.startswith("session_service.core") for name in ours), ours


@pytest.mark.parametrize(
    "path",
    [path for domain in DOMAINS for path in _modules(domain)],
    ids=lambda path: str(path.relative_to(PACKAGE)),
)
def test_no_domain_imports_the_assembly(path: Path) -> None:
    assert not {name for name in _imports(path) if name.startswith(ASSEMBLY)}


def test_the_error_tree_uses_the_standard_library_only() -> None:
    tops = {name.split(".")[0] for name in _imports(PACKAGE / "core" / "errors.py")}
    assert tops <= set(sys.stdlib_module_names)


def test_the_storage_interface_loads_no_framework_or_driver() -> None:
    """Importing the interface alone loads the error tree and nothing heavy."""
    probe = (
        "import sys, session_service.storage.base as _;"
        "print(','.join(sorted(m for m in sys.modules"
        " if m.split('.')[0] in {'fastapi', 'starlette', 'sqlalchemy', 'asyncpg'}"
        " or m.startswith('session_service.'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded.split(",") == [
        "session_service.core",
        "session_service.core.errors",
        "session_service.storage",
        "session_service.storage.base",
    ]
