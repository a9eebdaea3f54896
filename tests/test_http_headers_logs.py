"""Security headers on every response, the request id, and logs that never hold a secret."""

from __future__ import annotations

import io
import json
import logging
import re

import pyotp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcv_account.logs import (
    _TRIGGER,
    APP_LOGGER,
    REDACTED,
    REQUEST_LOGGER,
    SENSITIVE_KEY,
    make_handler,
    redact,
)

PASSWORD = "correct horse battery staple"
STRIPE_KEY = "sk_test_51LogRedactionCheck000000000000000000"
INTERNAL_TOKEN = "internal-token-for-the-log-test-0001"


def _security_headers_present(response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/healthz", {}, 200),
        ("get", "/api/account", {}, 401),
        ("get", "/api/no-such-thing", {}, 404),
        ("patch", "/api/account", {}, 405),
        ("post", "/api/auth/login", {"data": "x", "content_type": "text/plain"}, 415),
        ("post", "/api/auth/login", {"data": "{", "content_type": "application/json"}, 400),
        ("post", "/api/auth/login", {"json": {"email": "a@example.com", "password": "nope"}}, 401),
    ],
)
def test_every_response_carries_the_security_headers(client, method, path, kwargs, status):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    _security_headers_present(response)


def test_a_500_carries_the_security_headers(app, client):
    @app.get("/api/boom")
    def boom():
        raise RuntimeError("boom")

    response = client.get("/api/boom")
    assert response.status_code == 500
    _security_headers_present(response)
    assert response.headers["Cache-Control"] == "no-store"


def test_a_413_carries_the_security_headers(client):
    response = client.post(
        "/api/auth/login", data=b"x" * (1024 * 1024 + 1), content_type="application/json"
    )
    assert response.status_code == 413
    _security_headers_present(response)


def test_api_responses_are_not_cacheable(client):
    assert client.get("/api/account").headers["Cache-Control"] == "no-store"


def test_health_check_is_not_marked_no_store(client):
    assert "no-store" not in client.get("/healthz").headers.get("Cache-Control", "")


def test_hsts_is_sent_when_cookies_are_secure(client):
    assert client.get("/healthz").headers["Strict-Transport-Security"].startswith("max-age=")


def test_hsts_is_not_sent_over_plain_http_development(app_factory):
    client = app_factory(SESSION_COOKIE_SECURE=False).test_client()
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


def test_a_sane_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "edge-1f2e.3_d-4"})
    assert response.headers["X-Request-ID"] == "edge-1f2e.3_d-4"


@pytest.mark.parametrize(
    "offered", ["", "x" * 129, "has space", "bad\u00e9char", "a,b", "<script>", "id\tx"]
)
def test_an_insane_request_id_is_replaced(client, offered):
    response = client.get("/healthz", headers={"X-Request-ID": offered})
    echoed = response.headers["X-Request-ID"]
    assert echoed != offered
    assert len(echoed) == 32 and all(c in "0123456789abcdef" for c in echoed)


def test_each_request_gets_its_own_generated_id(client):
    assert (
        client.get("/healthz").headers["X-Request-ID"]
        != client.get("/healthz").headers["X-Request-ID"]
    )


@pytest.fixture
def app_log():
    """What the app's own handler writes for an app: `attach(app)` returns the growing text."""
    attached: list[logging.Handler] = []
    logger = logging.getLogger(APP_LOGGER)

    def attach(app) -> io.StringIO:
        stream = io.StringIO()
        handler = make_handler(app, stream)
        logger.addHandler(handler)
        attached.append(handler)
        return stream

    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield attach
    logger.setLevel(previous)
    for handler in attached:
        logger.removeHandler(handler)


def lines_of(stream: io.StringIO, logger: str | None = None) -> list[dict]:
    """The JSON lines written so far (of one logger, when named)."""
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if logger is None or line["logger"] == logger]


def test_one_json_log_line_per_request(app, client, app_log):
    output = app_log(app)
    client.get("/api/account?token=never-logged", headers={"X-Request-ID": "req-abc"})
    (line,) = lines_of(output, REQUEST_LOGGER)
    assert {k: line[k] for k in ("method", "path", "status", "request_id", "remote_addr")} == {
        "method": "GET",
        "path": "/api/account",
        "status": 401,
        "request_id": "req-abc",
        "remote_addr": "127.0.0.1",
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["time"].endswith("Z")
    assert "never-logged" not in output.getvalue()  # the query string is not logged


def test_an_error_answer_is_logged_with_its_code(app, client, app_log):
    output = app_log(app)
    client.get("/api/account")
    client.post("/api/auth/login", data="x", content_type="text/plain")
    client.get("/healthz")
    codes = [(line["status"], line.get("code")) for line in lines_of(output, REQUEST_LOGGER)]
    assert codes == [(401, "UNAUTHORIZED"), (415, "UNSUPPORTED_MEDIA_TYPE"), (200, None)]


def test_a_rejected_request_is_logged_with_its_status(client, caplog):
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    client.post("/api/auth/login", data="x", content_type="text/plain")
    (record,) = [r for r in caplog.records if r.name == REQUEST_LOGGER]
    assert record.status == 415
    assert record.duration_ms is not None


@pytest.fixture
def secret_app(app_factory):
    """An app whose configuration holds recognisable secrets."""
    return app_factory(STRIPE_SECRET_KEY=STRIPE_KEY, INTERNAL_API_TOKEN=INTERNAL_TOKEN)


def test_no_secret_reaches_the_log(secret_app, app_log):
    output = app_log(secret_app)
    client = secret_app.test_client()
    email = "logs@example.com"
    secrets = [PASSWORD, STRIPE_KEY, INTERNAL_TOKEN]

    register = client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Log Test"}
    )
    assert register.status_code == 201, register.json
    secrets.append(client.get_cookie("smartcv_session").value)
    user_id = register.json["data"]["id"]

    client.post("/api/auth/logout")
    login = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    secrets.append(client.get_cookie("smartcv_session").value)

    enable = client.put(
        "/api/account/security", json={"currentPassword": PASSWORD, "twoFactorEnabled": True}
    )
    assert enable.status_code == 200, enable.json
    totp_secret = enable.json["data"]["secret"]
    secrets += [totp_secret, enable.json["data"]["otpauthUri"], *enable.json["data"]["backupCodes"]]

    client.post("/api/auth/logout")
    code = pyotp.TOTP(totp_secret).now()
    secrets.append(code)
    second = client.post(
        "/api/auth/login", json={"email": email, "password": PASSWORD, "twoFactorCode": code}
    )
    assert second.status_code == 200, second.json
    secrets.append(client.get_cookie("smartcv_session").value)
    # A replayed code and a wrong password are failures the service may log about.
    client.post(
        "/api/auth/login", json={"email": email, "password": PASSWORD, "twoFactorCode": code}
    )
    client.post("/api/auth/login", json={"email": email, "password": PASSWORD + "x"})

    client.post(
        f"/api/internal/users/{user_id}/usage",
        json={"metric": "resumes", "delta": 1},
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
    )
    client.get("/api/account", headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"})

    assert len(lines_of(output, REQUEST_LOGGER)) == 10  # one per request above
    for secret in secrets:
        assert secret not in output.getvalue(), secret


def test_a_secret_the_code_logs_by_mistake_is_redacted(secret_app, app_log):
    output = app_log(secret_app)
    client = secret_app.test_client()

    @secret_app.post("/api/leaky")
    def leaky():
        from flask import request

        body = request.get_json()
        logging.getLogger("smartcv_account.z").info("got %s with %r", body, dict(request.headers))
        logging.getLogger("smartcv_account.x").warning(
            "calling stripe with %s; token=%s", STRIPE_KEY, INTERNAL_TOKEN
        )
        logging.getLogger("smartcv_account.w").info(
            "extra", extra={"card": {"cvc_token": "x1y2z3w4"}}
        )
        try:
            raise ValueError(f"bad password {body['password']}")
        except ValueError:
            logging.getLogger("smartcv_account.y").exception("failed")
        return {"ok": True}

    client.set_cookie("smartcv_session", "cookie-value-that-is-secret")
    client.post(
        "/api/leaky",
        json={"password": "hunter2-but-longer", "nested": {"twoFactorCode": "123456"}},
        headers={"Authorization": "Bearer some-other-bearer-token"},
    )
    text = output.getvalue()
    for secret in [
        "hunter2-but-longer",
        "123456",
        "some-other-bearer-token",
        "cookie-value-that-is-secret",
        "x1y2z3w4",
        STRIPE_KEY,
        INTERNAL_TOKEN,
    ]:
        assert secret not in text
    assert REDACTED in text
    assert any("exc_info" in line for line in lines_of(output))


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ('{"password": "p4ssw0rd!"}', "p4ssw0rd!"),
        ("newPassword=abc123xyz&x=1", "abc123xyz"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("key sk_live_abcdefghijklmnop used", "sk_live_abcdefghijklmnop"),
        ("whsec_1234567890abcdef", "whsec_1234567890abcdef"),
        ("otpauth://totp/SmartCV:a@b.c?secret=JBSWY3DPEHPK3PXP", "JBSWY3DPEHPK3PXP"),
        ("[SQL: INSERT] [parameters: ('a@b.c', '$2b$04$hash')]", "$2b$04$hash"),
        ("'backupCodes': ['12345678', '87654321']", "12345678"),
    ],
)
def test_redaction_masks_secret_shapes_and_named_values(text, hidden):
    assert hidden not in redact(text)


def test_a_secret_shaped_request_id_is_masked_in_the_log_line(app, client, app_log):
    output = app_log(app)
    key = "sk_live_" + "a1" * 12  # a sane id by its characters, a Stripe key by its shape
    client.get("/api/account", headers={"X-Request-ID": key})
    (line,) = lines_of(output, REQUEST_LOGGER)
    assert key not in output.getvalue()
    assert line["request_id"] == REDACTED


# The two patterns every log line runs start with a lookahead of their alternatives' first
# letters, for speed; without it they must match exactly the same texts.
SECRET_WORDS = st.sampled_from(
    [
        "password",
        "passwd",
        "Secret",
        "TOKEN",
        "Authorization",
        "authorisation",
        "cookie",
        "otp",
        "two_factor_code",
        "backupcodes",
        "api-key",
        "apikey",
        "client_secret",
        "Bearer",
        "basic",
        "sk_live_",
        "pk_test_",
        "whsec_",
        "otpauth:",
        "[parameters:",
        "twofactor",
        "backup_code",
    ]
)
TEXTS = st.lists(st.text(max_size=12) | SECRET_WORDS, max_size=4).map("".join)


@pytest.mark.parametrize("pattern", [SENSITIVE_KEY, _TRIGGER], ids=["names", "trigger"])
@settings(max_examples=500, deadline=None)
@given(text=TEXTS)
def test_the_patterns_first_letter_lookahead_changes_no_match(pattern, text):
    lookahead, _, alternatives = pattern.pattern.partition("(?:")
    assert "(?=[" in lookahead
    plain = re.compile("(?:" + alternatives, pattern.flags)
    found, expected = pattern.search(text), plain.search(text)
    assert (found and found.span()) == (expected and expected.span())
