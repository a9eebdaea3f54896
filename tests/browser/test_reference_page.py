"""The API reference at /api/docs renders in Chromium from the service's own assets only.

gunicorn runs the service as deployed (its response headers, Content-Security-Policy included);
Playwright drives Debian's Chromium, records every request the page makes and every console
message, and waits for Swagger UI to render the operations.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.gunicorn_helpers import gunicorns, migrated_database, service_env

RENDER_TIMEOUT_MS = 30_000


@pytest.fixture
def service(tmp_path) -> Iterator[str]:
    """A gunicorn running the service on loopback; yields its origin."""
    env = service_env(migrated_database(tmp_path))
    with gunicorns(env, workers=1) as (instance,):
        yield instance.url


def test_reference_page_renders_every_operation_from_this_origin_only(chromium, service):
    requested: list[str] = []
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            response = page.goto(service + "/api/docs")
            assert response is not None and response.status == 200
            operation = page.locator("#operations-subscription-updateSubscription")
            operation.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
            heading = operation.locator(".opblock-summary").inner_text()
            assert "PUT" in heading
            assert "/api/account/subscription" in heading
            assert "Upgrade, downgrade, cancel, reactivate or change the card." in heading
            # Every operation of the document is on the page.
            document = page.request.get(service + "/api/openapi.json").json()
            count = sum(
                1
                for item in document["paths"].values()
                for method in item
                if method != "parameters"
            )
            assert page.locator(".opblock").count() == count
            # Opening an operation shows its description and the enum of `action`.
            operation.locator(".opblock-summary").click()
            body = operation.locator(".opblock-body")
            body.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
            # The body is shown before Swagger UI fills it in: wait for its text.
            expect(body).to_contain_text("Idempotency-Key", timeout=RENDER_TIMEOUT_MS)
            text = body.inner_text()
            assert "update_payment_method" in text  # the enum of `action`, in the example
            page.wait_for_load_state("networkidle")
        finally:
            browser.close()
    origin = urlsplit(service)
    foreign = [url for url in requested if urlsplit(url)[:2] != origin[:2]]
    assert requested and foreign == []
    assert f"{service}/api/docs/swagger-ui-bundle.js" in requested
    assert f"{service}/api/openapi.json" in requested
    # No CSP refusal, no missing asset: nothing went wrong on the page.
    assert [line for line in console if line.startswith("error")] == []
