"""The demo page's details in headless Chromium against the real service (zero config).

Few pages and few uploads: the module's service counts 5 uploads a minute per client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="make test installs playwright")
from playwright.sync_api import Page, Route, expect
from tests.web.test_e2e import message_for, open_demo

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
