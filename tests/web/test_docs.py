"""`/docs` (Swagger UI) and `/redoc` (ReDoc) work offline, under their strict policies.

Headless Chromium against the real service with every request to another origin aborted
(and recorded: there must be none): Swagger UI lists every operation and "Try it out"
reaches the service, ReDoc renders the API's title and operations and its search (a
`blob:` worker) answers, and neither page logs an error or a CSP violation. Plain HTTP:
the pages name no other origin, carry their policies, and their files are served with
their media types and cached for a year.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

pytest.importorskip("playwright", reason="make test installs playwright")
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect

from session_service.core.settings import Settings
from session_service.web.docs import ASSETS_PATH, content_security_policy

SWAGGER_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
REDOC_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "worker-src blob:; img-src 'self' data:; connect-src 'self'; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# Reported to the page by the browser; Playwright's init script is not subject to the CSP.
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.violations.push(`${event.effectiveDirective} ${event.blockedURI}`);
});
"""
# ms for a page's first render: ReDoc parses 1 MB of script and lays out the whole API, which
# takes seconds on a busy machine.
RENDER = 30_000


@dataclass
class Tab:
    page: Page
    elsewhere: list[str] = field(default_factory=list)  # requests to other origins, aborted
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions

    def open(self, path: str) -> Page:
        self.page.goto(path)
        return self.page

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.violations")
        return found

    def assert_clean(self) -> None:
        assert self.elsewhere == []
        assert self.violations() == []
        assert self.errors == []


@pytest.fixture
def tab(chromium: Browser, service: str) -> Iterator[Tab]:
    context = chromium.new_context(base_url=service)
    page = context.new_page()
    tab = Tab(page)

    def only_the_service(route: Route) -> None:
        url = route.request.url
        if url == service or url.startswith(f"{service}/"):
            route.continue_()
        else:
            tab.elsewhere.append(url)
            route.abort()

    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.errors.append(message.text)

    context.route("**/*", only_the_service)
    context.add_init_script(RECORD_VIOLATIONS)
    page.on("console", record)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="module")
def summaries(service: str) -> dict[str, str]:
    """Each operation's summary by operation id, from the service's document."""
    document = httpx.get(f"{service}/openapi.json").json()
    return {
        operation["operationId"]: operation["summary"]
        for path in document["paths"].values()
        for operation in path.values()
    }


def test_swagger_ui_lists_every_operation_and_tries_one_without_another_origin(
    tab: Tab, summaries: dict[str, str]
) -> None:
    page = tab.open("/docs")
    expect(page.locator(".opblock")).to_have_count(len(summaries), timeout=RENDER)
    create = page.locator("#operations-sessions-sessions-create")
    expect(create.locator(".opblock-summary-description")).to_have_text(
        summaries["sessions-create"]
    )
    expect(create.locator(".opblock-summary-path")).to_have_text("/api/v1/sessions")
    liveness = page.locator("#operations-operations-operations-liveness")
    liveness.locator(".opblock-summary-control").click()
    liveness.get_by_role("button", name="Try it out").click()
    liveness.get_by_role("button", name="Execute").click()
    status = liveness.locator(".live-responses-table tr.response .response-col_status")
    expect(status).to_have_text("200")
    tab.assert_clean()


def test_redoc_renders_the_title_and_operations_and_searches_without_another_origin(
    tab: Tab, summaries: dict[str, str]
) -> None:
    page = tab.open("/redoc")
    title = page.get_by_role("heading", level=1)
    expect(title).to_have_text("session-service (0.1.0)", timeout=RENDER)
    # Named by its anchor link, then its summary.
    create = page.get_by_role("heading", name=re.compile(f" {summaries['sessions-create']}$"))
    expect(create).to_be_visible()
    page.get_by_placeholder("Search...").fill("cleanup run")
    expect(page.locator("[data-role='search:results'] li").first).to_contain_text("cleanup run")
    tab.assert_clean()


@pytest.mark.parametrize(("path", "policy"), [("/docs", SWAGGER_POLICY), ("/redoc", REDOC_POLICY)])
def test_the_pages_name_no_other_origin_and_carry_their_policy(
    service: str, path: str, policy: str
) -> None:
    response = httpx.get(f"{service}{path}")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == policy
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "//" not in response.text
    references = re.findall(r'(?:src|href|spec-url|data-openapi-url)="([^"]*)"', response.text)
    assert references
    assert all(reference.startswith("/") for reference in references)


def test_the_files_have_their_media_types_are_cached_for_a_year_and_not_documented(
    service: str,
) -> None:
    pages = httpx.get(f"{service}/docs").text + httpx.get(f"{service}/redoc").text
    files = sorted(set(re.findall(rf'"({ASSETS_PATH}/[^"]+)"', pages)))
    media_types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    media_types[".png"] = "image/png"
    assert len(files) == 5
    for url in files:
        response = httpx.get(f"{service}{url}")
        assert response.status_code == 200
        assert response.headers["content-type"] == media_types[url[url.rindex(".") :]]
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{service}{ASSETS_PATH}/swagger-ui-bundle.js").status_code == 404
    document = httpx.get(f"{service}/openapi.json").json()
    assert not [path for path in document["paths"] if path.startswith(("/docs", "/redoc"))]


def test_try_it_out_may_also_call_the_public_base_url() -> None:
    settings = Settings(public_base_url="https://sessions.example.com/base")
    for redoc in (False, True):
        policy = content_security_policy(settings, redoc=redoc)
        assert "; connect-src 'self' https://sessions.example.com;" in policy
