"""Fixtures for the Stripe gateway: localstripe on loopback, a recording stub, a webhook sink.

localstripe runs once per session as a subprocess (see tests/localstripe_server.py) and is
emptied before each test that uses it; the stub and the webhook sink are plain `http.server`
servers on 127.0.0.1, closed (and their handler threads joined) after each test, so nothing
leaks a socket into `filterwarnings = error`.
"""

from __future__ import annotations

import calendar
import json
import os
import select
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from smartcv_account.catalogue import COUPONS, PLANS
from smartcv_account.payments.stripe import StripeGateway

LAUNCHER = Path(__file__).resolve().parents[1] / "localstripe_server.py"
WEBHOOK_SECRET = "whsec_localstripe_test"
# localstripe accepts any key shaped like a secret key.
LOCALSTRIPE_KEY = "sk_test_localstripe"
STARTUP_TIMEOUT_SECONDS = 15


def catalogue_plans() -> list[SimpleNamespace]:
    """Return the seeded plans as PlanLike objects (no database needed)."""
    return [SimpleNamespace(**plan) for plan in PLANS]


def catalogue_coupons() -> list[SimpleNamespace]:
    """Return the seeded coupons as CouponLike objects."""
    return [SimpleNamespace(**coupon) for coupon in COUPONS]


def plan(plan_id: str) -> SimpleNamespace:
    """Return one seeded plan by id."""
    return next(p for p in catalogue_plans() if p.id == plan_id)


def add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months as Stripe does (the 31st becomes the month's last day)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# localstripe


def _http(method: str, url: str, body: bytes | None = None, content_type: str = "") -> int:
    """Send one request with the standard library and return the status (closing everything)."""
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory) -> Iterator[str]:
    """Start localstripe once for the session and return its base URL."""
    log_path = tmp_path_factory.mktemp("localstripe") / "stderr.log"
    # TZ=UTC: localstripe adds months in local time; Stripe adds them in UTC.
    env = {**os.environ, "TZ": "UTC", "PYTHONWARNINGS": "ignore"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(LAUNCHER)], stdout=subprocess.PIPE, stderr=log, env=env
        )
    try:
        url = _wait_for_port(process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def _wait_for_port(process: subprocess.Popen, log_path: Path) -> str:
    """Read the port the launcher prints, then wait until the server answers."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_SECONDS)
    line = process.stdout.readline().decode().strip() if ready else ""
    if not line.isdigit():
        process.kill()
        raise RuntimeError(f"localstripe did not start: {log_path.read_text()}")
    url = f"http://127.0.0.1:{line}"
    while True:
        try:
            # Emptying the store doubles as the readiness probe (no auth on /_config).
            _http("DELETE", url + "/_config/data")
            return url
        except (urllib.error.URLError, ConnectionError):
            # Bound but not yet listening: the event loop is still starting.
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(
                    f"localstripe is not answering: {log_path.read_text()}"
                ) from None
            time.sleep(0.02)


@pytest.fixture
def localstripe(localstripe_server) -> str:
    """localstripe's base URL, emptied for this test."""
    _http("DELETE", localstripe_server + "/_config/data")
    return localstripe_server


def register_webhook(base_url: str, url: str, secret: str, events: list[str] | None = None) -> None:
    """Point localstripe's (only) test webhook at `url`, optionally for some event types."""
    body: dict[str, Any] = {"url": url, "secret": secret}
    if events is not None:
        body["events"] = events
    # JSON, because localstripe reads `events` as a list only from a JSON body.
    _http(
        "POST",
        base_url + "/_config/webhooks/smartcv-tests",
        json.dumps(body).encode(),
        "application/json",
    )


class LocalstripeApi:
    """Direct calls to localstripe for what the gateway doesn't do (cards, 3-D Secure, lists)."""

    def __init__(self, base_url: str) -> None:
        """Talk to localstripe at `base_url`."""
        self.base_url = base_url

    def call(self, method: str, path: str, data: dict[str, str] | None = None) -> Any:
        """Send a form-encoded request and return the decoded JSON answer."""
        body = urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base_url + path, data=body, method=method)
        request.add_header("Authorization", f"Bearer {LOCALSTRIPE_KEY}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def card(self, number: str) -> str:
        """Create a card PaymentMethod from a test card number and return its id."""
        fields = {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"}
        data = {"type": "card", **{f"card[{key}]": value for key, value in fields.items()}}
        return self.call("POST", "/v1/payment_methods", data)["id"]


@pytest.fixture
def localstripe_api(localstripe) -> LocalstripeApi:
    """Direct access to the emptied localstripe."""
    return LocalstripeApi(localstripe)


@pytest.fixture
def gateway(localstripe) -> Iterator[StripeGateway]:
    """A StripeGateway talking to the emptied localstripe."""
    instance = StripeGateway(LOCALSTRIPE_KEY, localstripe, WEBHOOK_SECRET)
    yield instance
    instance.close()


@pytest.fixture
def catalogue(gateway) -> StripeGateway:
    """The gateway, with the seeded plans and coupon synced into localstripe."""
    gateway.sync_catalogue(catalogue_plans(), catalogue_coupons())
    return gateway


# Recording HTTP servers


@dataclass
class Recorded:
    """One request a test server received."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    """An HTTP server on 127.0.0.1 that records requests and replays canned answers.

    `answers[(method, path)]` is a list of (status, JSON body, delay); each request takes the first
    one, and the last one keeps answering. Unknown routes get Stripe's 404 error shape.
    """

    server: ThreadingHTTPServer
    requests: list[Recorded] = field(default_factory=list)
    answers: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(
        self, method: str, path: str, body: Any, status: int = 200, delay: float = 0.0
    ) -> None:
        """Queue an answer for `method path`, sent `delay` seconds after the request came."""
        self.answers.setdefault((method, path), []).append((status, body, delay))

    def sent(self, method: str, path: str) -> list[Recorded]:
        """Return the recorded requests for `method path`."""
        return [r for r in self.requests if r.method == method and r.path == path]

    def _reply(self, method: str, path: str) -> tuple[int, Any, float]:
        queue = self.answers.get((method, path))
        if not queue:
            return (
                404,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "resource_missing",
                        "message": f"No such route {method} {path}",
                    }
                },
                0.0,
            )
        return queue.pop(0) if len(queue) > 1 else queue[0]


def _handler(recorder: RecordingServer) -> type[BaseHTTPRequestHandler]:
    """Build the request handler class bound to `recorder`."""

    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as Stripe does: the client reuses its pooled connection.
        protocol_version = "HTTP/1.1"
        # A client that never hangs up must not block the join in server_close forever.
        timeout = 5

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            form_source = (
                body.decode() if "form-urlencoded" in (self.headers.get_content_type()) else ""
            )
            recorder.requests.append(
                Recorded(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    form=dict(parse_qsl(form_source, keep_blank_values=True)),
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=body,
                )
            )
            status, payload, delay = recorder._reply(self.command, parts.path)
            time.sleep(delay)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Keep test output quiet."""

    return Handler


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    """Start a recording HTTP server; join its threads and close its socket afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    # Joined on close, so no handler thread or socket outlives the test.
    server.daemon_threads = False
    recorder = RecordingServer(server)
    server.RequestHandlerClass = _handler(recorder)
    # A short poll interval: shutdown() waits up to one interval.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()
    thread.join()
