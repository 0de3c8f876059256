"""The whole browser flow in headless Chromium against the real service (zero config)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright", reason="make test installs playwright")
from playwright.sync_api import ConsoleMessage, Page, ViewportSize, expect

KEY = "session-service.session-id"  # the token: a secret the page must never show
PUBLIC_KEY = "session-service.session-public-id"  # the public id: the support reference
NOTICE = "Your session has been reset due to a technical issue. Please start again."
PDF = b"%PDF-1.7\n" + b"0" * (1536 * 1024) + b"\n%%EOF\n"  # 1.5 MiB: progress has steps
CHAT_KEY = "session-service.demo.conversation"  # the demo's conversation, beside the session
LIVE = 10_000  # ms for a message to appear live: the demo polls every 3 s without the stream
PHONE: ViewportSize = {"width": 390, "height": 844}


def ready(page: Page) -> str:
    """Wait until the page has its session; the stored token."""
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return stored_token(page)


def stored_token(page: Page) -> str:
    token: str = page.evaluate(f"localStorage.getItem({KEY!r})")
    return token


def public_id(page: Page) -> str:
    session_id: str = page.evaluate(f"localStorage.getItem({PUBLIC_KEY!r})")
    return session_id


def open_demo(page: Page) -> str:
    page.goto("/")
    return ready(page)


def assert_token_not_shown(page: Page, token: str) -> None:
    """Neither the document (text, attributes) nor the URL carries the token."""
    html: str = page.evaluate("document.documentElement.outerHTML")
    assert token not in html
    assert token not in page.url


def validate(service: str, token: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.post(
        f"{service}/api/v1/session/validate", headers={"X-Session-ID": token}
    ).json()
    return answer


def message_for(page: Page, code: str) -> str:
    script = "async (code) => (await import('/static/session-client.js')).messageFor(code)"
    message: str = page.evaluate(script, code)
    return message


def test_first_visit_stores_a_token_shows_only_the_public_id_and_reload_keeps_both(
    page: Page, service: str
) -> None:
    token = open_demo(page)
    session_id = public_id(page)
    assert len(token) == 36
    assert len(session_id) == 36
    assert token != session_id
    expect(page.locator("#session-id")).to_have_text(session_id)
    expect(page.locator("#session-status")).to_have_text("active")
    assert_token_not_shown(page, token)
    assert validate(service, token)["session"]["id"] == session_id
    page.reload()
    assert ready(page) == token
    assert public_id(page) == session_id
    expect(page.locator("#session-id")).to_have_text(session_id)
    expect(page.locator("#notice")).to_be_hidden()
    assert_token_not_shown(page, token)
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_a_tampered_token_leads_to_a_reset_and_the_notice(page: Page) -> None:
    original = open_demo(page)
    original_id = public_id(page)
    page.evaluate(f"localStorage.setItem({KEY!r}, 'tampered-' + {original!r})")
    page.reload()
    replaced = ready(page)
    assert replaced not in (original, f"tampered-{original}")
    expect(page.locator("#notice")).to_be_visible()
    expect(page.locator("#notice")).to_have_text(NOTICE)
    replaced_id = public_id(page)
    assert replaced_id not in (original_id, replaced)
    expect(page.locator("#session-id")).to_have_text(replaced_id)
    assert_token_not_shown(page, replaced)


def submit_details(page: Page, name: str) -> None:
    page.fill("#name", name)
    page.fill("#email", "ada@example.com")
    page.check("#consent")
    page.get_by_role("button", name="Save details").click()
    expect(page.locator("#details-status")).to_contain_text("Saved.")


def test_details_rotate_the_stored_token_and_the_page_follows(page: Page, service: str) -> None:
    before = open_demo(page)
    session_id = public_id(page)
    submit_details(page, "Ada Lovelace")
    after = stored_token(page)
    assert after != before
    assert public_id(page) == session_id
    expect(page.locator("#session-id")).to_have_text(session_id)
    expect(page.locator("#session-status")).to_have_text("pending verification")
    expect(page.locator("#notice")).to_be_hidden()
    assert validate(service, before) == {"valid": False, "reason": "rotated", "action": "reset"}
    assert validate(service, after)["session"]["id"] == session_id
    assert_token_not_shown(page, before)
    assert_token_not_shown(page, after)
    page.reload()
    assert ready(page) == after
    expect(page.locator("#session-id")).to_have_text(session_id)
    expect(page.locator("#notice")).to_be_hidden()
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_a_second_tab_follows_the_token_the_first_one_rotated(page: Page) -> None:
    open_demo(page)
    session_id = public_id(page)
    other = page.context.new_page()  # the same browser: the same localStorage
    other.goto("/")
    assert ready(other) == stored_token(page)
    submit_details(page, "Ada Lovelace")
    rotated = stored_token(page)
    # The other tab still shows the session; its next action uses the new token.
    submit_details(other, "Ada King")
    assert stored_token(other) not in (rotated, "")
    assert public_id(other) == session_id
    expect(other.locator("#session-id")).to_have_text(session_id)
    for tab in (page, other):
        expect(tab.locator("#notice")).to_be_hidden()
        assert_token_not_shown(tab, stored_token(tab))


def test_a_pdf_upload_shows_progress_and_lands_in_the_list(
    page: Page, tmp_path: Path, artifacts: Path
) -> None:
    open_demo(page)
    report = tmp_path / "report.pdf"
    report.write_bytes(PDF)
    # Every value the progress bar takes, as the page sets it.
    page.evaluate(
        """() => {
            window.progressSeen = [];
            const bar = document.getElementById('upload-progress');
            new MutationObserver(() => window.progressSeen.push(bar.value))
                .observe(bar, {attributes: true, attributeFilter: ['value']});
        }"""
    )
    # Loopback uploads 1.5 MiB at once; at 1 MiB/s the browser reports progress on the way.
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 1 << 20},
    )
    page.set_input_files("#file-input", str(report))
    page.get_by_role("button", name="Upload", exact=True).click()
    item = page.locator("#file-list li", has_text="report.pdf")
    expect(item).to_contain_text("uploaded", timeout=15_000)
    expect(page.locator("#upload-status")).to_have_text("report.pdf uploaded.")
    seen: list[float] = page.evaluate("window.progressSeen")
    assert seen[-1] == 100
    assert any(0 < value < 100 for value in seen), seen
    expect(page.get_by_role("button", name="Download report.pdf")).to_be_visible()
    page.screenshot(path=str(artifacts / "demo.png"), full_page=True)
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_a_renamed_non_pdf_is_rejected_with_the_mapped_message(page: Page, tmp_path: Path) -> None:
    open_demo(page)
    fake = tmp_path / "invoice.pdf"
    fake.write_bytes(b"PK\x03\x04 this is a zip archive, not a PDF" * 10)
    page.set_input_files("#file-input", str(fake))
    page.get_by_role("button", name="Upload", exact=True).click()
    expected = message_for(page, "upload_rejected")
    expect(page.locator("#error-message")).to_have_text(expected)
    expect(page.locator("#upload-status")).to_have_text(expected)
    expect(page.locator("#error-reference")).to_have_text(re.compile(r"^[0-9a-f]{32}$"))
    expect(page.locator("#file-list li", has_text="invoice.pdf")).to_contain_text("rejected")


def test_erase_clears_the_page_and_the_stored_token(page: Page, service: str) -> None:
    token = open_demo(page)
    page.get_by_role("button", name="Erase my data").click()
    page.get_by_role("button", name="Yes, erase everything").click()
    expect(page.locator("#data-status")).to_contain_text("Everything was erased")
    expect(page.locator("#session-id")).to_have_text("—")
    assert page.evaluate(f"localStorage.getItem({KEY!r})") is None
    assert page.evaluate(f"localStorage.getItem({PUBLIC_KEY!r})") is None
    answer = validate(service, token)
    assert answer == {"valid": False, "reason": "not_found", "action": "reset"}


def test_the_page_is_served_with_a_strict_policy(service: str) -> None:
    page = httpx.get(f"{service}/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in page.text  # no inline script: only <script src=...>
    module = httpx.get(f"{service}/static/session-client.js")
    assert module.status_code == 200
    assert module.headers["content-type"] == "text/javascript; charset=utf-8"
    types = httpx.get(f"{service}/static/session-client.d.ts")
    assert types.status_code == 200
    assert types.headers["content-type"] == "application/typescript; charset=utf-8"
    assert "export declare class SessionClient" in types.text
    assert httpx.get(f"{service}/static/demo.js").status_code == 200  # the mount still serves


def console_errors(tab: Page) -> list[str]:
    """Console errors from now on, but the events route's 404: the service has no stream
    yet, and the chat then polls for new messages."""
    errors: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if message.type == "error" and "/events" not in message.location.get("url", ""):
            errors.append(message.text)

    tab.on("console", record)
    return errors


def agent_reply(service: str, key: str, tab: Page, text: str) -> None:
    """The agent backend answers in the tab's conversation (service route, service key)."""
    stored = json.loads(tab.evaluate(f"localStorage.getItem({CHAT_KEY!r})"))
    answer = httpx.post(
        f"{service}/api/v1/sessions/{stored['session']}/conversations/"
        f"{stored['conversation']}/messages",
        headers={"Authorization": f"Bearer {key}"},
        json={"role": "assistant", "content": text, "client_message_id": f"r-{uuid.uuid4()}"},
    )
    assert answer.status_code == 201, answer.text


def chat_seqs(tab: Page) -> list[int]:
    seqs: list[str] = tab.evaluate(
        "[...document.querySelectorAll('#chat-log li')].map((item) => item.dataset.seq)"
    )
    return [int(seq) for seq in seqs]


def fits(tab: Page) -> bool:
    """No horizontal scrolling at the viewport's width."""
    fitting: bool = tab.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    return fitting


def test_chat_history_comes_back_after_a_reload_replies_appear_live_and_tabs_follow(
    page: Page, service: str, service_key: str, tmp_path: Path, artifacts: Path
) -> None:
    page.set_viewport_size(PHONE)
    errors = console_errors(page)
    open_demo(page)
    brief = tmp_path / "brief.pdf"
    brief.write_bytes(b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n")
    page.set_input_files("#file-input", str(brief))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#file-list li", has_text="brief.pdf")).to_contain_text("uploaded")

    # Send, with the uploaded PDF attached (Enter sends).
    log = page.get_by_role("log", name="Chat")
    page.get_by_label("Attach an uploaded PDF").select_option(label="brief.pdf")
    message = page.get_by_label("Message", exact=True)
    message.fill("Can you summarise the brief?")
    message.press("Enter")
    expect(page.locator("#chat-status")).to_have_text("Sent.")
    expect(log.locator("li")).to_have_count(1)
    expect(log.locator("li.user")).to_contain_text("Can you summarise the brief?")
    expect(log.locator("li.user")).to_contain_text("Attached: brief.pdf")
    expect(message).to_have_value("")
    expect(message).to_be_focused()

    # Reload: the history comes back.
    page.reload()
    ready(page)
    expect(log.locator("li")).to_have_count(1)
    expect(log.locator("li.user")).to_contain_text("Attached: brief.pdf")

    # The agent's reply appears live.
    agent_reply(service, service_key, page, "It asks for a summary by Friday.")
    expect(log.locator("li.assistant")).to_contain_text("It asks for a summary", timeout=LIVE)
    expect(log.locator("li.assistant .who")).to_have_text("Assistant")

    # A second tab shows the same conversation and follows what the first one sends.
    other = page.context.new_page()
    other.set_viewport_size(PHONE)
    other_errors = console_errors(other)
    other.goto("/")
    ready(other)
    other_log = other.get_by_role("log", name="Chat")
    expect(other_log.locator("li")).to_have_count(2)
    page.get_by_label("Message", exact=True).fill("Thanks! Which Friday?")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(other_log.locator("li").last).to_contain_text("Which Friday?", timeout=LIVE)
    agent_reply(service, service_key, page, "This Friday, 17:00.")
    for tab in (page, other):
        expect(tab.locator("#chat-log li").last).to_contain_text("This Friday", timeout=LIVE)
        assert chat_seqs(tab) == [1, 2, 3, 4]  # each once, in order
        assert fits(tab)
    page.screenshot(path=str(artifacts / "chat.png"), full_page=True)
    assert errors == []
    assert other_errors == []
