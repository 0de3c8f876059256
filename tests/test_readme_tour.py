"""The README's shell tour, run as it stands against a zero-configuration `serve`: what a new
user copies must work (only the port differs), and it ends with the erasure's 204."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.processes import free_port, start_serve, stop, wait_ready

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def tour() -> str:
    section = README.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    for tool in ("curl", "jq", "bash"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (the tour uses it)")
    script = tour()
    assert "127.0.0.1:8000" in script
    home, work = tmp_path / "service", tmp_path / "user"
    home.mkdir()
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    port = free_port()
    process = start_serve({}, home, port)  # zero configuration: SQLite and files in `home`
    try:
        wait_ready(port, process)
        done = subprocess.run(
            [
                "bash",
                "-euo",
                "pipefail",
                "-c",
                script.replace("127.0.0.1:8000", f"127.0.0.1:{port}"),
            ],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        stop(process)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("204")
    exported = json.loads((work / "export.json").read_text())
    assert [file["name"] for file in exported["files"]] == ["sample.pdf"]
    messages = [m for c in exported["conversations"] for m in c["messages"]]
    assert [m["content"] for m in messages] == ["Summarise it"]  # sent twice, stored once
    assert exported["files"][0]["status"] == "uploaded"
