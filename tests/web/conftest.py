"""The browser flow's fixtures: the real service on a free port and Debian's Chromium."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.processes import free_port, install_hint

# REQUIRE_BROWSER=1 (set by CI) turns "no Chromium or Node here" from a skip into a failure.
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# As the machine's own probe starts it: no GPU, no sandbox as root, nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The agent backend's key on the test service: tests add replies through the service routes.
SERVICE_KEY = secrets.token_urlsafe(32)


def missing(what: str, hint: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{what} is missing and REQUIRE_BROWSER=1 ({hint})")
    pytest.skip(f"{what} is missing: {hint}")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`session-service serve` with zero configuration, in a directory of its own."""
    home = tmp_path_factory.mktemp("service")
    port = free_port()
    log = home / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "STORAGE_"))}
    env.update(
        {"PORT": str(port), "LOG_FORMAT": "json", "SERVICE_API_KEYS": json.dumps([SERVICE_KEY])}
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "session_service", "serve"],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the service did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


@pytest.fixture(scope="session")
def service_key() -> str:
    """`Authorization: Bearer` key of the service role on the `service` fixture's server."""
    return SERVICE_KEY


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (no `playwright install`)."""
    if not Path(CHROMIUM).exists():
        missing("Chromium (/usr/bin/chromium)", install_hint("chromium"))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Python playwright", "make test installs it (the dev extra)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any, service: str) -> Iterator[Any]:
    """A page of its own browser context (storage) on the service; `page.console_errors` lists
    the console's errors."""
    context = chromium.new_context(base_url=service)
    page = context.new_page()
    page.console_errors = []

    def record(message: Any) -> None:
        if message.type == "error":
            page.console_errors.append(message.text)

    page.on("console", record)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
