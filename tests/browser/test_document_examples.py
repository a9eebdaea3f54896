"""The product document's JavaScript examples work from a browser page on the service's origin.

tests/browser/examples.html holds the document's "JavaScript Example" functions (getUserInfo,
updateUserPreferences, changePassword, getSubscriptionInfo, upgradeSubscription) copied verbatim,
and a driver that signs up, subscribes with Stripe's test card and calls each of them. The test
serves that page beside the real WSGI app (no product route is added: werkzeug's
SharedDataMiddleware answers /examples/index.html, everything else goes to the app), loads it in
headless Chromium and reads what each function returned from the dumped DOM.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.serving import make_server

from smartcv_account import catalogue
from smartcv_account.extensions import db
from smartcv_account.services import billing

PAGE = Path(__file__).with_name("examples.html")
DOCUMENT = (
    Path(__file__).resolve().parents[3] / "shared" / "seed" / "smartcv-user-management-api.txt"
)
PAGE_PATH = "/examples/index.html"
BROWSER_TIMEOUT_SECONDS = 60
RESULTS = re.compile(r'<pre id="results">(.*?)</pre>', re.DOTALL)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
    "--dump-dom",
]


@pytest.fixture
def origin(app_factory) -> Iterator[str]:
    """Serve the app and the examples page on one origin (http://127.0.0.1:PORT)."""
    app = app_factory(SESSION_COOKIE_SECURE=False)
    with app.app_context():
        billing.seed_plans(catalogue.PLANS, catalogue.COUPONS)
        db.session.remove()
    wsgi = SharedDataMiddleware(app.wsgi_app, {PAGE_PATH: str(PAGE)}, cache=False)
    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def run_page(chromium: Path, url: str, profile: Path) -> str:
    """Load `url` in headless Chromium and return the DOM it ends with (bounded in time)."""
    process = subprocess.Popen(
        [str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=BROWSER_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(
            f"Chromium did not finish in {BROWSER_TIMEOUT_SECONDS} s\n"
            f"stdout:\n{stdout[-4000:]}\nstderr:\n{stderr[-4000:]}"
        )
    finally:
        # Whatever Chromium left behind (zygote, utility processes) goes with its group.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert process.returncode == 0, f"Chromium exited {process.returncode}:\n{stderr[-4000:]}"
    return stdout


def page_results(dom: str) -> dict:
    """The driver's results: the JSON in <pre id="results"> once the title says done."""
    assert "<title>done</title>" in dom, f"the page's driver did not finish:\n{dom[-4000:]}"
    match = RESULTS.search(dom)
    assert match, f"no results in the page:\n{dom[-4000:]}"
    return json.loads(html.unescape(match.group(1)))


def value(results: dict, name: str):
    """What the document function `name` returned; fail with its error if it threw."""
    step = results[name]
    assert step["ok"], f"{name} threw: {step['error']}\nall results: {results}"
    return step["value"]


@pytest.mark.slow
def test_document_examples_work_from_a_same_origin_page(chromium, origin, tmp_path) -> None:
    """Each document function, run in Chromium on the service's origin, gets the answer."""
    dom = run_page(chromium, origin + PAGE_PATH, tmp_path / "profile")
    results = page_results(dom)
    assert "driverError" not in results, results

    register = value(results, "register")
    assert register["status"] == 201, register
    created = value(results, "createSubscription")
    assert created["status"] == 201, created
    assert created["body"]["data"]["status"] == "ACTIVE", created

    user = value(results, "getUserInfo")
    assert user["email"] == results["email"]
    assert user["subscriptionType"] == "PREMIUM"
    assert user["subscriptionStatus"] == "ACTIVE"

    preferences = value(results, "updateUserPreferences")
    assert preferences["success"] is True, preferences
    assert preferences["data"]["preferences"]["theme"] == "dark"
    assert preferences["data"]["preferences"]["language"] == "zh-cn"

    subscription = value(results, "getSubscriptionInfo")
    assert subscription["success"] is True, subscription
    assert subscription["data"]["plan"]["id"] == "plan_premium_monthly"
    assert subscription["data"]["status"] == "ACTIVE"

    upgrade = value(results, "upgradeSubscription")
    assert upgrade["success"] is True, upgrade
    proration = upgrade["data"]["prorationAmount"]
    assert isinstance(proration, int | float) and not isinstance(proration, bool), upgrade
    assert proration == pytest.approx(270.00, abs=0.5)

    password = value(results, "changePassword")
    assert password["passwordUpdated"] is True, password

    # The session that changed the password stays signed in; the old password is refused and
    # the document's changePassword turns the error envelope into a thrown Error.
    after = value(results, "getUserInfoAfterPasswordChange")
    assert after["email"] == results["email"]
    assert after["preferences"]["theme"] == "dark"
    wrong = results["changePasswordWrongCurrent"]
    assert wrong["ok"] is False and wrong["error"], wrong


def test_page_holds_the_document_examples_verbatim() -> None:
    """examples.html carries the document's "JavaScript Example" section unchanged."""
    if not DOCUMENT.exists():
        pytest.skip(f"the product document is not at {DOCUMENT}")
    text = DOCUMENT.read_text(encoding="utf-8")
    start = text.index("JavaScript Example\n") + len("JavaScript Example\n")
    end = text.index("React Hook Example", start)
    section = text[start:end].strip()
    for name in (
        "getUserInfo",
        "updateUserPreferences",
        "changePassword",
        "getSubscriptionInfo",
        "upgradeSubscription",
    ):
        assert f"async function {name}(" in section
    script = re.search(
        r'<script id="document-examples">\n(.*?)\n</script>',
        PAGE.read_text(encoding="utf-8"),
        re.DOTALL,
    )
    assert script, "examples.html has no document-examples script"
    assert script.group(1) == section
