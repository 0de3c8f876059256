"""The browser module under control, in Chromium against the real service: waits that are
announced and cancellable, retries that are safe, timeouts, truthful erase and export, a
cross-origin misconfiguration, junk in storage (issue: "cancellable, retrying, never lying").

Each test runs the module in a blank page of the service's own origin (no demo page, whose
own client would share the storage); `page.route` plays a rate limiter, a failing gateway or a
hung API in front of the real service where a scenario needs one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route

BLANK = "/module-test"
STORAGE_KEY = "session-service.session-id"
PROBLEM = "application/problem+json"


def blank(route: Route) -> None:
    route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>test</title>")


@pytest.fixture
def page(chromium: Browser, service: str) -> Iterator[Page]:
    """A blank page of the service's origin with `window.m` (the module) and `window.client`."""
    context = chromium.new_context()
    context.route(f"{service}{BLANK}", blank)
    tab = context.new_page()
    tab.goto(f"{service}{BLANK}")
    tab.evaluate(
        """async () => {
            window.m = await import("/static/session-client.js");
            window.client = new m.SessionClient({ retryBaseMs: 50 });
            window.waits = [];
            client.addEventListener("waiting", (event) => waits.push(event.detail));
        }"""
    )
    try:
        yield tab
    finally:
        context.close()


def failure(tab: Page, call: str) -> dict[str, Any]:
    """Run `call` (an expression of a promise) and answer what it rejected with."""
    result: dict[str, Any] = tab.evaluate(
        f"""async () => {{
            try {{
                await ({call});
            }} catch (error) {{
                return {{ code: error.code, message: error.message, status: error.status,
                          retryAt: error.retryAt, cause: error.cause?.code ?? null }};
            }}
            return {{ code: null }};
        }}"""
    )
    return result


def problem(status: int, code: str, retry_after: int | None = None) -> dict[str, Any]:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return {
        "status": status,
        "content_type": PROBLEM,
        "headers": headers,
        "body": json.dumps({"type": "about:blank", "status": status, "code": code}),
    }


def service_session(service: str, key: str, public_id: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{service}/api/v1/sessions/{public_id}", headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_erase_and_export_after_a_reset_elsewhere_say_so_and_touch_nothing(
    page: Page, service: str, service_key: str
) -> None:
    public_id = page.evaluate(
        """async () => {
            const id = await client.start();
            await client.submitDetails({ name: "Ada", email: "ada@example.com", consent: true });
            return id;
        }"""
    )
    token = page.evaluate(f"localStorage.getItem({STORAGE_KEY!r})")
    elsewhere = httpx.post(  # another device holding the same token resets it
        f"{service}/api/v1/session/reset",
        headers={"X-Session-ID": token},
        json={"reason": "user_requested"},
    )
    assert elsewhere.status_code == 201

    erased = failure(page, "client.erase()")
    exported = failure(page, "client.exportData()")

    assert erased["code"] == "session_replaced"
    assert "no longer holds" in erased["message"]
    assert erased["cause"] == "session_invalid"
    assert exported["code"] == "session_replaced"
    old = service_session(service, service_key, public_id)
    assert old["status"] == "reset"
    assert old["name"] == "Ada"  # nothing was erased, and nothing claimed it was
    message = page.evaluate("m.messageFor('session_replaced')")
    assert "no longer holds" in message


def test_a_cancel_during_a_rate_limit_wait_rejects_at_once_and_takes_no_slot(
    page: Page,
) -> None:
    page.evaluate("client.start()")
    slots: list[str] = []

    def limited(route: Route) -> None:
        slots.append(route.request.method)
        route.fulfill(**problem(429, "rate_limited", retry_after=20))

    page.route("**/api/v1/session/uploads", limited)
    outcome = page.evaluate(
        """async () => {
            const controller = new AbortController();
            const file = new File(["%PDF-1.7\\n%%EOF\\n"], "a.pdf", { type: "application/pdf" });
            const waiting = new Promise((resolve) => client.addEventListener(
                "waiting", (event) => resolve(event.detail), { once: true }));
            const upload = client.uploadFile(file, { signal: controller.signal });
            const detail = await waiting;
            const cancelledAt = performance.now();
            controller.abort();
            try {
                await upload;
                return { code: null };
            } catch (error) {
                return { code: error.code, elapsed: performance.now() - cancelledAt,
                         reason: detail.reason, inMs: detail.retryAt - Date.now() };
            }
        }"""
    )
    page.wait_for_timeout(300)  # nothing more goes out after the cancel
    page.unroute("**/api/v1/session/uploads")
    files = page.evaluate("client.listFiles()")

    assert outcome["code"] == "aborted"
    assert outcome["elapsed"] < 100
    assert outcome["reason"] == "rate_limited"
    assert 15_000 < outcome["inMs"] <= 20_000
    assert slots == ["POST"]
    assert files == []


def test_waiting_is_announced_with_retry_at_and_a_long_wait_is_not_sat_out(page: Page) -> None:
    page.evaluate("client.start()")
    answers = [problem(429, "rate_limited", retry_after=1)]

    def once_limited(route: Route) -> None:
        if answers:
            route.fulfill(**answers.pop())
        else:
            route.continue_()

    page.route("**/api/v1/session/files", once_limited)
    listed = page.evaluate(
        """async () => {
            const before = Date.now();
            const files = await client.listFiles();
            return { files, waits: waits.map((w) => ({ ...w, at: w.retryAt - before })),
                     took: Date.now() - before };
        }"""
    )
    page.unroute("**/api/v1/session/files")
    page.route(
        "**/api/v1/session/files", lambda route: route.fulfill(**problem(429, "rate_limited", 120))
    )
    long = page.evaluate(
        """async () => {
            const before = Date.now();
            try { await client.listFiles(); } catch (error) {
                return { code: error.code, inMs: error.retryAt - before, took: Date.now() - before,
                         waits: waits.length };
            }
        }"""
    )

    assert listed["files"] == []
    assert [w["reason"] for w in listed["waits"]] == ["rate_limited"]
    assert 900 <= listed["waits"][0]["at"] <= 1_100
    assert listed["took"] >= 950  # the Retry-After was honoured
    assert long["code"] == "rate_limited"
    assert 119_000 <= long["inMs"] <= 121_000
    assert long["took"] < 5_000  # no sleeping through two minutes
    assert long["waits"] == 1  # no new wait announced


def test_a_503_is_retried_then_succeeds_and_a_gateway_page_is_service_unavailable(
    page: Page,
) -> None:
    page.evaluate("client.start()")
    answers = [problem(503, "database_unavailable", retry_after=1)]

    def outage(route: Route) -> None:
        if answers:
            route.fulfill(**answers.pop())
        else:
            route.continue_()

    page.route("**/api/v1/session", outage)
    session = page.evaluate("client.getSession()")
    page.unroute("**/api/v1/session")
    page.route(
        "**/api/v1/session",
        lambda route: route.fulfill(
            status=502, content_type="text/html", body="<h1>Bad Gateway</h1>"
        ),
    )
    gateway = failure(page, "client.getSession()")

    assert session["status"] == "active"
    assert page.evaluate("waits.map((w) => [w.reason, w.code])")[0] == [
        "unavailable",
        "database_unavailable",
    ]
    assert gateway["code"] == "service_unavailable"
    assert gateway["status"] == 502


def test_a_hung_api_times_out_instead_of_leaving_start_pending(page: Page) -> None:
    page.route("**/api/v1/sessions", lambda route: None)  # never answered
    outcome = failure(
        page, "new m.SessionClient({ maxRetries: 1, retryBaseMs: 10 }).start({ timeout: 300 })"
    )

    assert outcome["code"] == "timeout"
    assert "300 ms" in outcome["message"]


def sessions_created(service: str) -> float:
    metrics = httpx.get(f"{service}/metrics").text
    found = re.search(
        r'^session_service_sessions_created_total\{kind="new"\} (\S+)$', metrics, re.M
    )
    return float(found.group(1)) if found else 0.0


def test_a_page_from_an_origin_not_allowed_creates_no_duplicate_sessions(
    chromium: Browser, service: str
) -> None:
    """The create carries an Idempotency-Key, so it is preflighted: the refused preflight
    stops it before anything is created (without the key: one session per retry)."""
    context = chromium.new_context()
    origin = "http://app.example"
    module = httpx.get(f"{service}/static/session-client.js").text
    context.route(f"{origin}/", blank)
    context.route(
        f"{origin}/session-client.js",
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=module),
    )
    tab = context.new_page()
    tab.goto(f"{origin}/")
    before = sessions_created(service)
    try:
        outcome = tab.evaluate(
            """async (base) => {
                const m = await import("/session-client.js");
                const client = new m.SessionClient({ baseUrl: base, retryBaseMs: 10 });
                try { await client.start(); } catch (error) {
                    return { code: error.code, message: error.message, user: error.userMessage };
                }
            }""",
            service,
        )
    finally:
        context.close()

    assert outcome["code"] == "cors_or_network"
    assert "network" in outcome["message"]
    assert "CORS_ORIGINS" in outcome["message"]
    assert "connection" in outcome["user"]
    assert sessions_created(service) == before  # the preflight refused: none at all


def test_junk_another_tab_writes_is_replaced_by_a_fresh_start(page: Page) -> None:
    first = page.evaluate("client.start()")
    other = page.context.new_page()
    other.goto(page.url)
    other.evaluate(f"localStorage.setItem({STORAGE_KEY!r}, '\\u2603-not-an-id')")
    page.wait_for_function("client.sessionId === null")  # the junk was not taken

    outcome = page.evaluate(
        """async () => {
            const resets = [];
            client.addEventListener("reset", (event) => resets.push(event.detail.reason));
            const files = await client.listFiles();
            return { files, resets, id: client.sessionId };
        }"""
    )

    assert outcome["files"] == []
    assert outcome["resets"] == ["tampered"]
    assert outcome["id"] not in (None, first)
    stored = page.evaluate(f"localStorage.getItem({STORAGE_KEY!r})")
    assert re.fullmatch(r"[0-9a-f-]{36}", stored)


def test_a_create_whose_answer_is_lost_is_repeated_and_makes_one_session(
    chromium: Browser, service: str
) -> None:
    """The first create reaches the service, its answer never reaches the page: the module's
    repeat carries the same Idempotency-Key, and the service answers it with that session."""
    context = chromium.new_context()
    context.route(f"{service}{BLANK}", blank)
    tab = context.new_page()
    tab.goto(f"{service}{BLANK}")
    keys: list[str | None] = []
    lost: list[dict[str, Any]] = []

    def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.header_value("Idempotency-Key"))
        if lost:
            route.continue_()
            return
        answer = route.fetch()  # the service creates the session...
        lost.append(answer.json())
        route.abort("connectionreset")  # ...and the page never hears of it

    tab.route("**/api/v1/sessions", lose_the_first_answer)
    before = sessions_created(service)
    try:
        public_id = tab.evaluate(
            """async () => {
                const m = await import("/static/session-client.js");
                return new m.SessionClient({ retryBaseMs: 10 }).start();
            }"""
        )
    finally:
        context.close()

    assert len(keys) == 2
    assert keys[0] is not None
    assert keys[0] == keys[1]
    assert public_id == lost[0]["id"]  # the session the lost answer carried
    assert sessions_created(service) - before == 1
