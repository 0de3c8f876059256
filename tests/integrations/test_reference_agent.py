"""The reference agent (examples/reference_agent/) against a live service, with the client
`make agent-client` generates from the committed openapi.json."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integrations.conftest import Live, Visitor
from tests.processes import require, stop

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "reference_agent" / "agent.py"
GENERATOR = ROOT / ".venv-codegen" / "bin" / "openapi-python-client"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """agent.py beside a client generated for this run (not the one a developer may have
    generated in examples/, which could be stale)."""
    require(GENERATOR.exists(), f"{GENERATOR.relative_to(ROOT)} is missing (make install)")
    home = tmp_path_factory.mktemp("agent")
    generated = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "agent-client",
            f"AGENT_CLIENT={home}/session_service_client",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "warning" not in (generated.stdout + generated.stderr).lower(), generated.stdout
    shutil.copy(AGENT, home / AGENT.name)
    return home / AGENT.name


def _env(key: str) -> dict[str, str]:
    return {**os.environ, "SERVICE_API_KEY": key}


def _once(
    agent: Path, live: Live, session_id: str, *, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, agent, "--base-url", live.base_url, "--session", session_id, "--once"],
        env=_env(key or live.key),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_agent_type_checks_against_the_generated_client(agent: Path) -> None:
    """mypy --strict over agent.py and the client generated from openapi.json: an
    operation renamed or a field changed in the API shows here."""
    # As in tests/contract/: openapi-python-client 0.29's client.py (a fixed template)
    # forwards `*args: object` to httpx's typed __exit__ and __aexit__.
    config = agent.parent / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\npython_version = 3.11\nwarn_unreachable = True\n\n"
        "[mypy-session_service_client.client]\ndisable_error_code = arg-type\n"
    )
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), agent.name],
        cwd=agent.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_one_round_answers_each_visitor_message_once(agent: Path, visitor: Visitor) -> None:
    live = visitor.live
    asked = visitor.send("What is 2+2?")
    greeted = visitor.send("hello")
    ran = _once(agent, live, visitor.session_id)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.count(" answered by ") == 2, ran.stdout
    history = visitor.history()
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "What is 2+2?"),
        ("user", "hello"),
        ("assistant", "2 + 2 = 4"),
        ("assistant", "Hello! Ask me a sum like 2+2, or the time; anything else I repeat."),
    ]
    assert [m["client_message_id"] for m in history[2:]] == [
        f"reply-to-{asked['id']}",
        f"reply-to-{greeted['id']}",
    ]
    assert history[2]["metadata"] == {"agent": "reference-agent", "in_reply_to": asked["id"]}

    # A restarted agent reads from the start again and adds no second reply.
    again = _once(agent, live, visitor.session_id)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count(" already answered by ") == 2, again.stdout
    assert len(visitor.history()) == 4


def test_the_polling_agent_answers_a_new_message(agent: Path, visitor: Visitor) -> None:
    live = visitor.live
    output = agent.parent / f"agent-{visitor.session_id}.log"
    log = output.open("w")
    running = subprocess.Popen(
        [
            *(sys.executable, str(agent), "--base-url", live.base_url),
            *("--session", visitor.session_id, "--interval", "0.2"),
        ],
        env=_env(live.key),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(0.5)  # a poll or two of an empty conversation
        visitor.send("Repeat after me")
        deadline = time.monotonic() + 20
        while len(visitor.history()) < 2 and time.monotonic() < deadline:
            assert running.poll() is None, output.read_text()
            time.sleep(0.1)
        time.sleep(0.5)  # more polls: still one reply
    finally:
        stop(running)
        log.close()
    assert [(m["role"], m["content"]) for m in visitor.history()] == [
        ("user", "Repeat after me"),
        ("assistant", "You said: Repeat after me"),
    ]


def test_the_agent_stops_on_a_refused_key_or_an_unknown_session(
    agent: Path, visitor: Visitor
) -> None:
    live = visitor.live
    refused = _once(agent, live, visitor.session_id, key="svc-" + "w" * 40)
    assert refused.returncode == 1
    assert "unauthorized" in refused.stderr
    unknown = _once(agent, live, "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == 1
    assert "session_not_found" in unknown.stderr
