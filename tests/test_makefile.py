"""The two set-up commands fit their purpose: `make run` installs what serving needs and no
more; `make test` works without root or npm, naming what it could not install."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make") or "make"


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_make_run_installs_the_runtime_lock_only() -> None:
    plan = make("-n", "-B", "run", "VENV=/nonexistent/venv")
    assert plan.returncode == 0, plan.stderr
    assert "requirements/runtime.txt" in plan.stdout
    assert "requirements/dev.txt" not in plan.stdout
    assert "npm" not in plan.stdout
    assert "apt-get" not in plan.stdout


def test_missing_system_packages_are_named_with_their_command_when_not_root() -> None:
    done = make("-s", "packages", "AS_ROOT=0", "DEBIAN_PACKAGES=chromium no-such-package-x")
    assert done.returncode == 0, done.stderr
    assert "sudo apt-get install -y no-such-package-x" in done.stdout
    assert "their tests will skip" in done.stdout
    if shutil.which("chromium"):
        assert "chromium no-such" not in done.stdout  # only what is missing


def test_without_npm_the_web_packages_are_skipped_with_a_message(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with a shell but no npm
    bin_dir.mkdir()
    done = make(
        "-s", "-B", "tests/web/node_modules/.installed", env={"PATH": str(bin_dir), "HOME": "/"}
    )
    assert done.returncode == 0, done.stderr
    assert "npm not found" in done.stdout
    assert "will skip" in done.stdout
