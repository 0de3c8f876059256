"""The demo page's details in headless Chromium against the real service (zero config): field
messages, no token in the document, stale failures cleared, long names at phone width, focus,
the erase confirmation, truthful copy, details after a reload, and axe's rules.

Few pages and few uploads: the module's service counts 5 uploads a minute per client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright", reason="make test installs playwright")
from playwright.sync_api import Browser, Page, Route, expect
from tests.web.test_e2e import (
    PHONE,
    message_for,
    open_demo,
    public_id,
    stored_token,
    submit_details,
    validate,
)

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
SMALL_PDF = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n"
AWAITING = "Details received, awaiting verification."


def pdf(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(SMALL_PDF)
    return path


def upload(tab: Page, path: Path) -> None:
    tab.set_input_files("#file-input", str(path))
    tab.get_by_role("button", name="Upload", exact=True).click()
    expect(tab.locator("#upload-status")).to_have_text(f"{path.name} uploaded.")


def test_refused_details_are_marked_field_by_field_and_a_success_clears_them(page: Page) -> None:
    open_demo(page)
    name, email = page.get_by_label("Name", exact=True), page.get_by_label("Email", exact=True)
    page.fill("#name", "   ")  # passes the browser's `required`; the service trims it to nothing
    page.fill("#email", "ada@example")  # the browser's email syntax, no domain for the service
    page.check("#consent")
    page.get_by_role("button", name="Save details").click()

    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_have_accessible_description(
        "Enter your name: 1 to 100 characters, no control characters."
    )
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description(
        "Enter a valid email address: The part after the @-sign is not valid. "
        "It should have a period."
    )
    expect(page.locator("#consent")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#consent-error")).to_be_hidden()
    expect(page.locator("#details-status")).to_have_text("Please correct the marked fields.")
    expect(page.locator("#error")).to_be_hidden()  # no generic banner: the fields say it
    expect(name).to_be_focused()  # the first field to correct

    submit_details(page, "Ada Lovelace")
    for field in (name, email):
        expect(field).not_to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description("")
    expect(page.locator(".field-error:visible")).to_have_count(0)


def test_details_say_what_happens_to_them_and_are_shown_again_after_a_reload(
    page: Page,
) -> None:
    open_demo(page)
    submit_details(page, "Ada Lovelace")
    expect(page.locator("#details-status")).to_have_text(f"Saved. {AWAITING}")
    expect(page.locator("#details-heading + p")).to_contain_text("awaits verification")
    # Nothing sends the visitor mail: the page must not say so.
    expect(page.locator("body")).not_to_contain_text("inbox")

    page.reload()
    open_demo(page)
    expect(page.locator("#session-status")).to_have_text("pending verification")
    expect(page.locator("#details-status")).to_have_text(AWAITING)
    expect(page.locator("#name")).to_have_value("Ada Lovelace")
    expect(page.locator("#email")).to_have_value("ada@example.com")


def test_no_token_ever_reaches_the_document(page: Page, service: str, tmp_path: Path) -> None:
    tokens = [open_demo(page)]
    submit_details(page, "Ada Lovelace")  # rotates the token
    tokens.append(stored_token(page))
    upload(page, pdf(tmp_path, "notes.pdf"))
    # The session is replaced elsewhere: the page's next action resets it, with the notice.
    replaced = httpx.post(
        f"{service}/api/v1/session/reset",
        headers={"X-Session-ID": tokens[-1]},
        json={"reason": "user_requested"},
    )
    assert replaced.status_code == 201, replaced.text
    tokens.append(replaced.json()["session"]["token"])
    submit_details(page, "Ada King")
    expect(page.locator("#notice")).to_be_visible()
    tokens.append(stored_token(page))
    assert len(set(tokens)) == 4
    expect(page.locator("#session-id")).to_have_text(public_id(page))  # the support reference
    html: str = page.evaluate("document.documentElement.outerHTML")
    for token in tokens:
        assert token not in html


def test_a_later_success_clears_the_failures_banner_progress_and_reference(
    page: Page, tmp_path: Path
) -> None:
    open_demo(page)
    request_id = "5e1ec7ed0f0e4c9a8b7a6f5e4d3c2b1a"

    def unavailable(route: Route) -> None:
        problem = {
            "type": "urn:session-service:problem:storage_unavailable",
            "title": "Storage unavailable",
            "status": 503,
            "detail": "The file storage did not answer.",
            "code": "storage_unavailable",
            "request_id": request_id,
        }
        route.fulfill(
            status=503,
            headers={"Content-Type": "application/problem+json", "X-Request-ID": request_id},
            body=json.dumps(problem),
        )

    slots = "**/api/v1/session/uploads"
    page.route(slots, unavailable)
    page.set_input_files("#file-input", str(pdf(tmp_path, "first.pdf")))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).to_contain_text(message_for(page, "storage_unavailable"))
    expect(page.locator("body")).to_contain_text(request_id)  # the failure's, for support
    page.unroute(slots)

    upload(page, pdf(tmp_path, "second.pdf"))
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#upload-progress")).to_be_hidden()
    expect(page.locator("body")).not_to_contain_text(request_id)


def test_at_phone_width_long_names_wrap_and_focus_follows_uploads_and_deletes(
    page: Page, tmp_path: Path
) -> None:
    page.set_viewport_size(PHONE)
    open_demo(page)
    long_name = "quarterly-report-" + "x" * 179 + ".pdf"
    assert len(long_name) == 200
    upload(page, pdf(tmp_path, long_name))
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    first = page.locator("#file-list li", has_text=long_name)
    expect(first).to_be_focused()  # the new file's row

    upload(page, pdf(tmp_path, "short.pdf"))
    expect(page.locator("#file-list li", has_text="short.pdf")).to_be_focused()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_role("button", name=f"Delete {long_name}").click()
    expect(first).to_have_count(0)
    expect(page.get_by_role("button", name="Delete short.pdf")).to_be_focused()  # the next file's
    page.get_by_role("button", name="Delete short.pdf").click()
    expect(page.locator("#files-empty")).to_be_visible()
    expect(page.locator("#file-input")).to_be_focused()  # no file left
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_escape_closes_the_erase_confirmation_and_focus_returns_to_its_button(
    page: Page, service: str
) -> None:
    token = open_demo(page)
    opener = page.get_by_role("button", name="Erase my data")
    opener.click()
    confirmation = page.get_by_role("dialog", name="Erase your data?")
    expect(confirmation).to_be_visible()
    expect(confirmation.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice
    page.keyboard.press("Escape")
    expect(confirmation).to_be_hidden()
    expect(opener).to_be_focused()
    assert validate(service, token)["valid"] is True  # nothing erased
    expect(page.locator("#data-status")).to_have_text("")
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.fixture
def lax_page(chromium: Browser, service: str) -> Iterator[Page]:
    """A page that lets Playwright add axe's script (the demo's policy would refuse it)."""
    context = chromium.new_context(base_url=service, bypass_csp=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def axe_violations(tab: Page) -> list[dict[str, Any]]:
    if not tab.evaluate("typeof window.axe !== 'undefined'"):
        tab.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = tab.evaluate(
        """async () => (await axe.run()).violations.map((v) => ({
            id: v.id, impact: v.impact, nodes: v.nodes.map((node) => node.target.join(' ')),
        }))"""
    )
    return found


def test_axe_finds_no_violation_at_first_after_an_upload_with_the_chat_and_the_dialog(
    lax_page: Page, tmp_path: Path
) -> None:
    tab = lax_page
    open_demo(tab)
    assert axe_violations(tab) == []

    upload(tab, pdf(tmp_path, "brief.pdf"))
    assert axe_violations(tab) == []

    tab.get_by_label("Message", exact=True).fill("Can you summarise the brief?")
    tab.get_by_role("button", name="Send", exact=True).click()
    expect(tab.get_by_role("log", name="Chat").locator("li")).to_have_count(1)
    assert axe_violations(tab) == []

    tab.get_by_role("button", name="Erase my data").click()
    expect(tab.get_by_role("dialog", name="Erase your data?")).to_be_visible()
    assert axe_violations(tab) == []


def rate_limited(seconds: int) -> Any:
    def answer(route: Route) -> None:
        route.fulfill(
            status=429,
            headers={"Content-Type": "application/problem+json", "Retry-After": str(seconds)},
            body=json.dumps({"status": 429, "code": "rate_limited", "retry_after": seconds}),
        )

    return answer


def test_a_rate_limit_wait_is_shown_and_cancel_ends_it_at_once(page: Page, tmp_path: Path) -> None:
    open_demo(page)
    slots = "**/api/v1/session/uploads"
    asked: list[str] = []
    limited = rate_limited(20)

    def record(route: Route) -> None:
        asked.append(route.request.method)
        limited(route)

    page.route(slots, record)
    page.set_input_files("#file-input", str(pdf(tmp_path, "waits.pdf")))
    page.get_by_role("button", name="Upload", exact=True).click()

    waiting = page.locator("#waiting")
    expect(waiting).to_be_visible()
    expect(waiting).to_contain_text("Too many requests. Retrying in")
    assert 15 <= int(page.locator("#waiting-seconds").inner_text()) <= 20
    page.get_by_role("button", name="Cancel").click()
    expect(waiting).to_be_hidden()
    expect(page.locator("#upload-status")).to_have_text("Upload cancelled: nothing was kept.")
    expect(page.locator("#error")).to_be_hidden()
    page.wait_for_timeout(300)
    assert asked == ["POST"]  # nothing more was sent
    expect(page.locator("#file-list li")).to_have_count(0)

    # A wait longer than the module sits out (30 s) is not slept through: the page says when.
    page.unroute(slots)
    page.route(slots, rate_limited(120))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#error")).to_contain_text("You can try again in")
    expect(waiting).to_be_hidden()
    page.unroute(slots)
