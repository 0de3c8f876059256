"""The React bindings (web/client/react.js) in real React, in headless Chromium, against the
real service (zero config).

`react_app/app.jsx` imports `@session-service/client` and `@session-service/client/react`,
resolved through the package's own package.json (a node_modules link to web/client/), and
renders under StrictMode. esbuild bundles it once per module; Playwright serves the bundle on
the service's origin (`/react-test/`), so the module's API calls are same-origin as in a
page the service would sit behind.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.web.conftest import missing

pytest.importorskip("playwright", reason="make test installs playwright")
from playwright.sync_api import Browser, Locator, Page, Request, Route, expect

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "tests" / "web"
PACKAGE = ROOT / "src" / "session_service" / "web" / "client"
APP = WEB / "react_app" / "app.jsx"
ESBUILD = WEB / "node_modules" / ".bin" / "esbuild"
AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"

KEY = "session-service.session-id"  # the token: a secret the page must never show
PUBLIC_KEY = "session-service.session-public-id"
CONVERSATION_KEY = "react-test.conversation"  # the app's conversation
NOTICE = "Your session has been reset due to a technical issue. Please start again."
PDF = b"%PDF-1.7\n" + b"0" * (256 * 1024) + b"\n%%EOF\n"
LIVE = 10_000  # ms for a message to appear live
INDEX = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>React bindings</title></head>
<body><div id="root"></div><script type="module" src="/react-test/app.js"></script></body>
</html>
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, str]]:
    """The app bundled by esbuild: what `/react-test/...` answers (body, content type)."""
    if not ESBUILD.exists():
        missing("esbuild", "tests/web/node_modules: make test runs npm ci when npm is present")
    out = tmp_path_factory.mktemp("react-app")
    # The package as a page installs it: node_modules/@session-service/client.
    scope = out / "node_modules" / "@session-service"
    scope.mkdir(parents=True)
    (scope / "client").symlink_to(PACKAGE, target_is_directory=True)
    # "react" in the package's react.js resolves to the one React the tests installed.
    env = {
        **os.environ,
        "NODE_PATH": os.pathsep.join([str(out / "node_modules"), str(WEB / "node_modules")]),
    }
    result = subprocess.run(
        [
            str(ESBUILD),
            str(APP),
            "--bundle",
            "--format=esm",
            "--jsx=automatic",
            '--define:process.env.NODE_ENV="development"',  # React's warnings on
            f"--outfile={out / 'app.js'}",
            "--log-level=warning",
        ],
        cwd=WEB,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert result.stderr == "", result.stderr  # no warning either
    return {
        "/react-test/": (INDEX, "text/html; charset=utf-8"),
        "/react-test/app.js": ((out / "app.js").read_bytes(), "text/javascript; charset=utf-8"),
    }


@pytest.fixture
def page(chromium: Browser, service: str, bundle: dict[str, tuple[bytes, str]]) -> Iterator[Page]:
    context = chromium.new_context(base_url=service)

    def serve(route: Route) -> None:
        path = "/" + route.request.url.split("/", 3)[3].split("?")[0]
        if path not in bundle:
            route.fulfill(status=404)
            return
        body, content_type = bundle[path]
        route.fulfill(status=200, body=body, headers={"Content-Type": content_type})

    context.route(f"{service}/react-test/**", serve)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(f"{message.type}: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.problems = problems  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def problems(page: Page) -> list[str]:
    """Console errors and warnings (React's included) and uncaught errors so far."""
    seen: list[str] = page.problems  # type: ignore[attr-defined]
    return seen


def open_app(page: Page) -> str:
    """Load the app and wait for its session; the public id shown."""
    page.goto("/react-test/")
    return ready(page)


def ready(page: Page) -> str:
    """Wait for the session; the public id shown."""
    expect(page.locator("#status")).to_have_text("ready")
    shown = page.locator("#session-id").inner_text()
    assert shown == stored(page, PUBLIC_KEY)
    return shown


def stored(page: Page, key: str) -> Any:
    return page.evaluate("(key) => localStorage.getItem(key)", key)


def listeners(page: Page) -> dict[str, int]:
    counts: dict[str, int] = page.evaluate("window.reactTest.listeners()")
    return {kind: count for kind, count in counts.items() if count}


def api_calls(page: Page) -> list[str]:
    """`METHOD /api/v1/...` of every API request the page makes from now on."""
    calls: list[str] = []

    def record(request: Request) -> None:
        path = "/" + request.url.split("/", 3)[3].split("?")[0]
        if path.startswith("/api/v1/"):
            calls.append(f"{request.method} {path}")

    page.on("request", record)
    return calls


def hold(page: Page, url: str, button: Locator) -> Route:
    """Click `button` and hold the request to `url` it makes (unanswered): its route."""
    held: list[Route] = []

    def keep(route: Route) -> None:
        held.append(route)

    page.route(url, keep)
    with page.expect_request(url):
        button.click()
    for _ in range(50):  # the route's handler runs right after the request event
        if held:
            break
        page.wait_for_timeout(100)
    (route,) = held
    return route


def test_the_service_serves_the_module_but_not_the_react_bindings(service: str) -> None:
    module = httpx.get(f"{service}/static/session-client.js")
    assert module.status_code == 200
    assert module.headers["content-type"] == "text/javascript; charset=utf-8"
    assert module.text == (PACKAGE / "session-client.js").read_text()
    # The bindings import "react": they need a bundler, so the service does not serve them.
    for name in ("react.js", "react.d.ts", "package.json", "README.md"):
        assert httpx.get(f"{service}/static/{name}").status_code == 404, name


def test_the_session_starts_once_under_strict_mode_and_only_its_public_id_is_shown(
    page: Page,
) -> None:
    calls = api_calls(page)
    session_id = open_app(page)
    token = stored(page, KEY)
    assert len(token) == 36
    assert token != session_id
    # StrictMode mounts twice: one session created all the same.
    assert calls == ["POST /api/v1/sessions"]
    assert token not in page.evaluate("document.body.innerText")
    assert token not in page.evaluate("document.documentElement.outerHTML")
    # One set of listeners, however many hooks use the store.
    assert listeners(page) == {"session": 1, "reset": 1, "waiting": 1}

    calls.clear()
    page.reload()
    assert ready(page) == session_id
    assert stored(page, KEY) == token
    assert calls == ["POST /api/v1/session/validate"]  # one check, not one per mount
    expect(page.get_by_role("status")).to_have_count(0)
    assert token not in page.evaluate("document.body.innerText")
    assert problems(page) == []


def test_a_reset_shows_the_notice_until_it_is_dismissed(page: Page) -> None:
    before = open_app(page)
    # A token that looks right but names no session: the next check resets.
    planted = str(uuid.uuid4())
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [KEY, planted])
    page.get_by_role("button", name="Check session").click()
    notice = page.get_by_role("status")
    expect(notice).to_have_text(NOTICE)
    after = stored(page, PUBLIC_KEY)
    assert after != before
    expect(page.locator("#session-id")).to_have_text(after)
    token = stored(page, KEY)
    assert token not in (planted, after)
    assert token not in page.evaluate("document.body.innerText")
    # The notice's markup passes axe's rules.
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async () => (await axe.run(document.querySelector('.notice'))).violations"
        ".map((v) => `${v.id}: ${v.help}`)"
    )
    assert found == []
    page.get_by_role("button", name="Dismiss").click()
    expect(notice).to_have_count(0)
    expect(page.get_by_role("button", name="Dismiss")).to_have_count(0)
    expect(page.locator("#session-id")).to_have_text(after)

    # A reset the visitor asks for is no technical issue: a new session, no notice.
    page.get_by_role("button", name="Start over").click()
    expect(page.locator("#session-id")).not_to_have_text(after)
    assert page.locator("#session-id").inner_text() == stored(page, PUBLIC_KEY)
    expect(notice).to_have_count(0)
    assert problems(page) == []


def test_waiting_shows_until_the_call_it_belongs_to_settles(page: Page, service: str) -> None:
    open_app(page)
    waiting = page.locator("#waiting")
    wait = """(ms) => window.reactTest.client.dispatchEvent(new CustomEvent("waiting", {detail: {
        reason: "rate_limited", retryAt: Date.now() + ms, delayMs: ms, code: "rate_limited"}}))"""
    # A call of the bindings in flight (start, its validate held): the wait is its own.
    validate = f"{service}/api/v1/session/validate"
    held = hold(page, validate, page.get_by_role("button", name="Check session"))
    page.evaluate(wait, 50)
    expect(waiting).to_have_text("Waiting: rate_limited")
    page.wait_for_timeout(300)  # past retryAt: still waiting, the call has not settled
    expect(waiting).to_be_visible()
    held.continue_()
    expect(waiting).to_have_count(0)
    expect(page.locator("#status")).to_have_text("ready")
    page.unroute(validate)
    # Nothing of the bindings in flight (the page's own call): until the retry is due.
    page.evaluate(wait, 400)
    expect(waiting).to_be_visible()
    expect(waiting).to_have_count(0)
    # The client's own event: a 429 on the check, waited out, then the check succeeds.
    limited = [True]

    def once_limited(route: Route) -> None:
        if limited and limited.pop():
            route.fulfill(
                status=429,
                headers={"Retry-After": "1"},
                content_type="application/problem+json",
                body='{"status": 429, "code": "rate_limited"}',
            )
        else:
            route.continue_()

    page.route(validate, once_limited)
    page.get_by_role("button", name="Check session").click()
    expect(waiting).to_have_text("Waiting: rate_limited")
    expect(waiting).to_have_count(0)
    expect(page.locator("#status")).to_have_text("ready")
    page.unroute(validate)
    # The browser logs the 429 it was answered; nothing else may show up.
    assert [p for p in problems(page) if "status of 429" not in p] == []


def test_an_upload_reports_progress_to_the_total_and_a_cancelled_one_no_error(
    page: Page, service: str, tmp_path: Path
) -> None:
    open_app(page)
    report = tmp_path / "report.pdf"
    report.write_bytes(PDF)
    page.get_by_label("PDF").set_input_files(str(report))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-result")).to_have_text("report.pdf uploaded")
    expect(page.locator("#uploading")).to_have_text("no")
    seen: list[dict[str, int]] = page.evaluate("window.progressSeen")
    last = seen[-1]
    assert last["loaded"] == last["total"] >= len(PDF), seen  # the form around the file too
    expect(page.get_by_role("alert")).to_have_count(0)

    # The post to storage never answers: cancelling ends it, and no error is shown.
    form_post = f"{service}/api/v1/storage/uploads"
    hold(page, form_post, page.get_by_role("button", name="Upload", exact=True))
    expect(page.locator("#uploading")).to_have_text("yes")
    page.get_by_role("button", name="Cancel upload").click()
    expect(page.locator("#uploading")).to_have_text("no")
    expect(page.locator("#upload-result")).to_have_text("none")
    expect(page.locator("#progress")).to_have_text("none")
    expect(page.get_by_role("alert")).to_have_count(0)
    page.unroute(form_post)

    # The same file again goes through.
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-result")).to_have_text("report.pdf uploaded")
    files = page.evaluate("window.reactTest.client.listFiles()")
    assert [(file["name"], file["status"]) for file in files].count(("report.pdf", "uploaded")) == 2
    assert problems(page) == []


def test_a_conversation_comes_back_after_a_reload_and_replies_appear_live(
    page: Page, service: str, service_key: str
) -> None:
    session_id = open_app(page)
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#live")).to_have_text("live")
    page.get_by_label("Message").fill("Hello from React")
    page.get_by_role("button", name="Send").click()
    items = page.locator("#messages li")
    expect(items).to_have_count(1)
    expect(items.first).to_have_text("Hello from React")
    expect(page.get_by_label("Message")).to_have_value("")

    page.reload()
    assert ready(page) == session_id
    expect(page.locator("#live")).to_have_text("live")
    expect(items).to_have_count(1)  # the history, and the stream repeats none of it
    expect(items.first).to_have_text("Hello from React")

    conversation = stored(page, CONVERSATION_KEY)
    answer = httpx.post(
        f"{service}/api/v1/sessions/{session_id}/conversations/{conversation}/messages",
        headers={"Authorization": f"Bearer {service_key}"},
        json={"role": "assistant", "content": "Hello, human", "client_message_id": "r-1"},
    )
    assert answer.status_code == 201, answer.text
    expect(page.locator("#messages li.assistant")).to_have_text("Hello, human", timeout=LIVE)
    page.get_by_label("Message").fill("Thanks")
    page.get_by_role("button", name="Send").click()
    expect(items).to_have_count(3)
    seqs = page.evaluate(
        "[...document.querySelectorAll('#messages li')].map((li) => li.dataset.seq)"
    )
    assert seqs == ["1", "2", "3"]
    assert problems(page) == []


def test_unmounting_removes_the_listeners(page: Page) -> None:
    before = open_app(page)
    assert listeners(page) == {"session": 1, "reset": 1, "waiting": 1}
    page.evaluate("window.reactTest.unmount()")
    assert listeners(page) == {}
    # The client goes on: a reset fires "session" and "reset" with nobody listening.
    after = page.evaluate("window.reactTest.client.reset('tampered')")
    assert after not in (before, None)
    assert page.evaluate("document.getElementById('root').childElementCount") == 0
    page.wait_for_timeout(200)  # anything React would complain about has been logged
    assert problems(page) == []
    assert listeners(page) == {}
