"""The emailed-link flows over HTTP, with the messages read from a real SMTP server."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from smartcv_account import clock

from ..factories import PASSWORD
from ..helpers import NEW_PASSWORD, change_email, reset, signed_up
from .conftest import link_in, verification_token


def test_registration_mails_a_verification_link_that_verifies_the_address(client, deliver, inbox):
    signed_up(client)
    deliver()
    message = inbox.only("ann@example.com")
    found = link_in(message)
    assert found["link"].startswith("https://app.example.com/verify-email?token=")
    assert message["From"] == "SmartCV <no-reply@localhost>"
    assert message.get_content_type() == "text/plain"

    response = client.post("/api/auth/verify-email", json={"token": found["token"]})
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert data["emailVerified"] is True and data["emailVerifiedAt"] is not None
    assert client.get("/api/account").json["data"]["emailVerified"] is True


def test_verification_token_is_single_use(client, deliver, inbox, assert_error):
    signed_up(client)
    token = verification_token(deliver, inbox)
    assert client.post("/api/auth/verify-email", json={"token": token}).status_code == 200
    again = client.post("/api/auth/verify-email", json={"token": token})
    assert_error(again, 400, "INVALID_TOKEN", "token")


def test_tokens_are_long_random_and_stored_hashed(client, deliver, inbox, mail_app):
    from smartcv_account.extensions import db
    from smartcv_account.models import EmailToken

    signed_up(client)
    token = verification_token(deliver, inbox)
    assert len(token) == 43  # 32 random bytes, URL-safe base64 unpadded: 256 bits
    stored = db.session.scalars(db.select(EmailToken.token_hash)).all()
    assert token not in stored and len(stored) == 1


@pytest.mark.parametrize(
    ("token", "code"),
    [("", "VALIDATION_ERROR"), ("nope", "INVALID_TOKEN"), ("x" * 201, "VALIDATION_ERROR")],
    ids=["empty", "unknown", "over-200-characters"],
)
def test_unknown_or_malformed_token_is_refused(client, token, code, assert_error):
    response = client.post("/api/auth/verify-email", json={"token": token})
    assert_error(response, 400, code, field="token")


def test_verification_link_expires_after_24_hours(client, deliver, inbox, assert_error):
    start = datetime(2025, 1, 1, tzinfo=UTC)
    clock.freeze(start)
    signed_up(client)
    token = verification_token(deliver, inbox)
    clock.freeze(start + timedelta(hours=24))
    assert_error(client.post("/api/auth/verify-email", json={"token": token}), 400, "INVALID_TOKEN")


def test_new_verification_link_voids_the_older_one(client, deliver, inbox, assert_error):
    signed_up(client)
    first = verification_token(deliver, inbox)
    assert client.post("/api/auth/verify-email/request").status_code == 202
    deliver()
    second = link_in(inbox.to("ann@example.com")[-1])["token"]
    assert_error(client.post("/api/auth/verify-email", json={"token": first}), 400, "INVALID_TOKEN")
    assert client.post("/api/auth/verify-email", json={"token": second}).status_code == 200


def test_verification_request_when_verified_is_email_already_verified(
    client, deliver, inbox, assert_error
):
    signed_up(client)
    client.post("/api/auth/verify-email", json={"token": verification_token(deliver, inbox)})
    response = client.post("/api/auth/verify-email/request")
    assert_error(response, 409, "EMAIL_ALREADY_VERIFIED")


def test_verification_request_needs_a_session(mail_app, assert_error):
    response = mail_app.test_client().post("/api/auth/verify-email/request")
    assert_error(response, 401, "UNAUTHORIZED")


def test_verification_request_is_limited_to_5_an_hour(app_factory, smtp_server, assert_error):
    application = app_factory(MAIL_URL=smtp_server.url, RATELIMIT_ENABLED=True)
    client = application.test_client()
    signed_up(client)
    answers = [client.post("/api/auth/verify-email/request").status_code for _ in range(6)]
    assert answers == [202] * 5 + [429]


# --- password reset ---------------------------------------------------------------------------


def reset_token(client, deliver, inbox, email="ann@example.com") -> str:
    """Ask for a reset link for `email` and return its token."""
    response = client.post("/api/auth/password-reset/request", json={"email": email})
    assert (response.status_code, response.json) == (202, {"success": True})
    deliver()
    found = link_in(inbox.to(email)[-1])
    assert found["path"] == "reset-password"
    return found["token"]


def test_reset_request_answers_the_same_for_an_unknown_email(client, deliver, inbox):
    signed_up(client)
    deliver()
    known = client.post("/api/auth/password-reset/request", json={"email": "ANN@example.com "})
    unknown = client.post("/api/auth/password-reset/request", json={"email": "bob@example.com"})
    assert (known.status_code, known.json) == (unknown.status_code, unknown.json)
    assert known.status_code == 202
    deliver()
    assert len(inbox.to("ann@example.com")) == 2
    assert inbox.to("bob@example.com") == []


def test_reset_request_does_the_same_work_for_an_unknown_email(client, deliver, inbox):
    from smartcv_account.extensions import db
    from smartcv_account.models import EmailToken, OutboxMessage, PasswordResetRequest

    signed_up(client)
    deliver()
    for email in ("ann@example.com", "nobody@example.com"):
        client.post("/api/auth/password-reset/request", json={"email": email})
    db.session.expire_all()
    assert sorted(db.session.scalars(db.select(PasswordResetRequest.email))) == [
        "ann@example.com",
        "nobody@example.com",
    ]
    # Nothing else was written by either request: the worker looks the address up.
    assert db.session.scalar(db.select(db.func.count()).select_from(EmailToken)) == 1
    queued = db.select(db.func.count()).where(OutboxMessage.status == "queued")
    assert db.session.scalar(queued) == 0


def test_several_reset_requests_make_one_link(client, deliver, inbox):
    signed_up(client)
    deliver()
    for _ in range(3):
        client.post("/api/auth/password-reset/request", json={"email": "ann@example.com"})
    deliver()
    assert len(inbox.to("ann@example.com")) == 2  # the verification link and one reset link


def test_reset_request_takes_about_as_long_for_an_unknown_email(app_factory, smtp_server):
    application = app_factory(MAIL_URL=smtp_server.url, BCRYPT_ROUNDS=12)
    client = application.test_client()
    signed_up(client)

    def median_seconds(email: str) -> float:
        """The median time of seven reset requests for `email`."""
        times = []
        for _ in range(7):
            started = time.perf_counter()
            client.post("/api/auth/password-reset/request", json={"email": email})
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    known, unknown = median_seconds("ann@example.com"), median_seconds("nobody@example.com")
    # A bcrypt check at 12 rounds takes ~200 ms; neither path runs one.
    assert abs(known - unknown) < 0.05, (known, unknown)


def test_reset_request_with_a_malformed_email_is_validation_error(client, assert_error):
    response = client.post("/api/auth/password-reset/request", json={"email": "not-an-email"})
    assert_error(response, 400, "VALIDATION_ERROR", "email")


def test_password_reset_sets_the_password_ends_every_session_and_verifies(
    mail_app, client, deliver, inbox
):
    signed_up(client)
    other = mail_app.test_client()
    other.post("/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    token = reset_token(mail_app.test_client(), deliver, inbox)

    assert (reset(client, token).status_code, reset(client, token).json["code"]) == (
        200,
        "INVALID_TOKEN",
    )
    assert client.get("/api/account").status_code == 401
    assert other.get("/api/account").status_code == 401
    old = {"email": "ann@example.com", "password": PASSWORD}
    assert mail_app.test_client().post("/api/auth/login", json=old).status_code == 401
    fresh = mail_app.test_client()
    new = {"email": "ann@example.com", "password": NEW_PASSWORD}
    assert fresh.post("/api/auth/login", json=new).json["data"]["emailVerified"] is True
    deliver()
    notice = inbox.to("ann@example.com")[-1]
    assert "was reset" in notice["Subject"]
    assert "token=" not in notice.get_content()


def test_weak_password_does_not_use_the_reset_token(client, deliver, inbox, assert_error):
    signed_up(client)
    token = reset_token(client, deliver, inbox)
    assert_error(reset(client, token, "password"), 422, "WEAK_PASSWORD", "newPassword")
    mismatch = reset(client, token, confirmPassword="something else entirely")
    assert_error(mismatch, 400, "VALIDATION_ERROR", "confirmPassword")
    assert reset(client, token).status_code == 200


def test_reset_link_expires_after_an_hour(client, deliver, inbox, assert_error):
    start = datetime(2025, 1, 1, tzinfo=UTC)
    clock.freeze(start)
    signed_up(client)
    token = reset_token(client, deliver, inbox)
    clock.freeze(start + timedelta(hours=1))
    assert_error(reset(client, token), 400, "INVALID_TOKEN", "token")


def test_reset_token_is_not_a_verification_token(client, deliver, inbox, assert_error):
    signed_up(client)
    token = reset_token(client, deliver, inbox)
    response = client.post("/api/auth/verify-email", json={"token": token})
    assert_error(response, 400, "INVALID_TOKEN")


def test_reset_with_two_factor_needs_the_second_factor(client, deliver, inbox, assert_error):
    signed_up(client)
    verified = client.post(
        "/api/auth/verify-email", json={"token": verification_token(deliver, inbox)}
    )
    assert verified.status_code == 200
    setup = client.put(
        "/api/account/security", json={"currentPassword": PASSWORD, "twoFactorEnabled": True}
    ).json["data"]
    token = reset_token(client, deliver, inbox)
    assert_error(reset(client, token), 401, "TWO_FACTOR_REQUIRED", "twoFactorCode")
    wrong = reset(client, token, twoFactorCode="000000")
    assert_error(wrong, 401, "INVALID_TWO_FACTOR_CODE", "twoFactorCode")
    code = pyotp.TOTP(setup["secret"]).now()
    assert reset(client, token, twoFactorCode=code).status_code == 200


def test_reset_request_is_limited_per_email(app_factory, smtp_server):
    application = app_factory(MAIL_URL=smtp_server.url, RATELIMIT_ENABLED=True)
    client = application.test_client()
    body = {"email": "someone@example.com"}
    answers = [
        client.post("/api/auth/password-reset/request", json=body).status_code for _ in range(6)
    ]
    assert answers == [202] * 5 + [429]


def test_password_change_voids_an_outstanding_reset_link(client, deliver, inbox, assert_error):
    signed_up(client)
    token = reset_token(client, deliver, inbox)
    client.put(
        "/api/account/security",
        json={
            "currentPassword": PASSWORD,
            "newPassword": NEW_PASSWORD,
            "confirmPassword": NEW_PASSWORD,
        },
    )
    assert_error(reset(client, token, "yet another horse battery staple"), 400, "INVALID_TOKEN")


# --- email change -----------------------------------------------------------------------------


def test_email_change_confirms_at_the_new_address_and_tells_the_old(
    mail_app, client, deliver, inbox
):
    signed_up(client)
    deliver()
    response = change_email(client, "Ann.New@Example.com")
    assert (response.status_code, response.json) == (202, {"success": True})
    deliver()
    notice = inbox.to("ann@example.com")[-1]
    assert "about to change" in notice["Subject"]
    assert "token=" not in notice.get_content()
    found = link_in(inbox.only("ann.new@example.com"))
    assert found["path"] == "confirm-email"

    token = {"token": found["token"]}
    confirmed = mail_app.test_client().post("/api/account/email/confirm", json=token)
    assert confirmed.status_code == 200, confirmed.json
    data = confirmed.json["data"]
    assert (data["email"], data["emailVerified"]) == ("ann.new@example.com", True)
    deliver()
    done = inbox.to("ann@example.com")[-1]
    assert "was changed" in done["Subject"] and "ann.new@example.com" in done.get_content()
    login = {"email": "ann.new@example.com", "password": PASSWORD}
    assert mail_app.test_client().post("/api/auth/login", json=login).status_code == 200


def test_email_change_needs_the_current_password(client, assert_error):
    signed_up(client)
    response = change_email(client, password="wrong password")
    assert_error(response, 400, "INVALID_PASSWORD", "currentPassword")


def test_email_change_to_a_taken_address_is_email_taken(mail_app, client, assert_error):
    signed_up(mail_app.test_client(), "bob@example.com", "Bob")
    signed_up(client)
    assert_error(change_email(client, "bob@example.com"), 409, "EMAIL_TAKEN", "newEmail")


def test_email_change_to_an_invalid_address_is_validation_error(client, assert_error):
    signed_up(client)
    assert_error(change_email(client, "no-at-sign"), 400, "VALIDATION_ERROR", "newEmail")


def test_email_taken_meanwhile_is_refused_at_confirmation(
    mail_app, client, deliver, inbox, assert_error
):
    signed_up(client)
    change_email(client)
    deliver()
    token = link_in(inbox.only("ann.new@example.com"))["token"]
    signed_up(mail_app.test_client(), "ann.new@example.com", "Someone else")
    response = client.post("/api/account/email/confirm", json={"token": token})
    assert_error(response, 409, "EMAIL_TAKEN")
    assert client.get("/api/account").json["data"]["email"] == "ann@example.com"


def test_email_change_requests_are_rate_limited(app_factory, smtp_server):
    application = app_factory(
        MAIL_URL=smtp_server.url,
        RATELIMIT_ENABLED=True,
        RATELIMIT_EMAIL_CHANGE_PER_USER="2 per hour",
    )
    client = application.test_client()
    signed_up(client)
    answers = [change_email(client, f"n{i}@example.com").status_code for i in range(3)]
    assert answers == [202, 202, 429]


# --- security notices -------------------------------------------------------------------------


def test_password_change_and_two_factor_send_security_notices(client, deliver, inbox):
    signed_up(client)
    client.put("/api/account", json={"preferences": {"emailNotifications": False}})
    codes = client.put(
        "/api/account/security",
        json={
            "currentPassword": PASSWORD,
            "newPassword": NEW_PASSWORD,
            "confirmPassword": NEW_PASSWORD,
            "twoFactorEnabled": True,
        },
    ).json["data"]["backupCodes"]
    client.put(
        "/api/account/security",
        json={
            "currentPassword": NEW_PASSWORD,
            "twoFactorEnabled": False,
            "twoFactorCode": codes[0],
        },
    )
    deliver()
    subjects = [m["Subject"] for m in inbox.to("ann@example.com")]
    assert subjects[1:] == [
        "Your SmartCV password was changed",
        "Two-factor authentication is on for your SmartCV account",
        "Two-factor authentication is off for your SmartCV account",
    ]
    for message in inbox.to("ann@example.com")[1:]:
        assert "token=" not in message.get_content() and "otpauth" not in message.get_content()
