"""Attacks through emailed links and guessed secrets, refused (API.md, "Attacks refused")."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import LinkedIdentity, Passkey, User

from ..factories import PASSWORD
from ..helpers import NEW_PASSWORD, change_password, reset, signed_up
from ..signin_helpers import add_passkey
from .conftest import link_in

VICTIM = "victim@example.com"
ATTACKER = "attacker@example.com"


@pytest.fixture
def mail_app(app_factory, smtp_server, frozen_clock):
    """The mailing app with every limit on, its clock frozen (the guessing window moves)."""
    from smartcv_account.extensions import db

    application = app_factory(
        MAIL_URL=smtp_server.url, APP_BASE_URL="https://app.example.com", RATELIMIT_ENABLED=True
    )
    with application.app_context():
        yield application
        db.session.remove()


@pytest.fixture
def browser(mail_app):
    """One browser (its own cookie jar)."""
    return mail_app.test_client()


def new_browser(mail_app):
    """Another browser."""
    return mail_app.test_client()


def latest_link(deliver, inbox, address: str, path: str) -> str:
    """Send the outbox; return the token of the newest `path` link `address` got."""
    deliver()
    links = [link_in(m) for m in inbox.to(address) if "?token=" in m.get_content()]
    found = [link for link in links if link["path"] == path]
    assert found, [link["path"] for link in links]
    return found[-1]["token"]


def verify(client, deliver, inbox, address=VICTIM) -> None:
    """Verify the address the account has, from its newest verification link."""
    token = latest_link(deliver, inbox, address, "verify-email")
    assert client.post("/api/auth/verify-email", json={"token": token}).status_code == 200


def ask_email_change(client, new_email: str, password=PASSWORD):
    """Ask to move the signed-in account to `new_email`."""
    return client.post(
        "/api/account/email", json={"newEmail": new_email, "currentPassword": password}
    )


def reset_link(client, deliver, inbox, address=VICTIM) -> str:
    """Ask for a reset link for `address`; return its token."""
    assert (
        client.post("/api/auth/password-reset/request", json={"email": address}).status_code == 202
    )
    return latest_link(deliver, inbox, address, "reset-password")


def turn_on_two_factor(client) -> dict:
    """Turn the second factor on; return the setup (secret, backup codes)."""
    response = client.put(
        "/api/account/security", json={"currentPassword": PASSWORD, "twoFactorEnabled": True}
    )
    assert response.status_code == 200, response.json
    return response.json["data"]


def activity_types(client) -> list[str]:
    """The signed-in user's event types, newest first."""
    return [event["type"] for event in client.get("/api/account/activity").json["data"]["events"]]


# --- a password change or reset voids every pending link ---------------------------------------


def test_a_reset_voids_a_stale_email_change_link(browser, mail_app, deliver, inbox, assert_error):
    signed_up(browser, VICTIM, "Vic")
    assert ask_email_change(browser, ATTACKER).status_code == 202
    stale = latest_link(deliver, inbox, ATTACKER, "confirm-email")

    assert reset(new_browser(mail_app), reset_link(browser, deliver, inbox)).status_code == 200

    taken = new_browser(mail_app).post("/api/account/email/confirm", json={"token": stale})
    assert_error(taken, 400, "INVALID_TOKEN", "token")
    login = new_browser(mail_app).post(
        "/api/auth/login", json={"email": VICTIM, "password": NEW_PASSWORD}
    )
    assert login.json["data"]["email"] == VICTIM


def test_a_password_change_voids_a_stale_email_change_link(
    browser, mail_app, deliver, inbox, assert_error
):
    signed_up(browser, VICTIM, "Vic")
    assert ask_email_change(browser, ATTACKER).status_code == 202
    stale = latest_link(deliver, inbox, ATTACKER, "confirm-email")

    assert change_password(browser).status_code == 200

    taken = new_browser(mail_app).post("/api/account/email/confirm", json={"token": stale})
    assert_error(taken, 400, "INVALID_TOKEN", "token")
    assert browser.get("/api/account").json["data"]["email"] == VICTIM


def test_a_password_change_voids_a_pending_verification_link(browser, deliver, inbox, assert_error):
    signed_up(browser, VICTIM, "Vic")
    stale = latest_link(deliver, inbox, VICTIM, "verify-email")

    assert change_password(browser).status_code == 200

    assert_error(
        browser.post("/api/auth/verify-email", json={"token": stale}), 400, "INVALID_TOKEN"
    )


# --- guessing is limited per account ------------------------------------------------------------


def test_second_factor_guesses_on_a_reset_stop_at_ten_even_for_the_right_code(
    browser, mail_app, deliver, inbox, assert_error
):
    signed_up(browser, VICTIM, "Vic")
    verify(browser, deliver, inbox)
    secret = turn_on_two_factor(browser)["secret"]
    token = reset_link(browser, deliver, inbox)
    attacker = new_browser(mail_app)

    wrong = [reset(attacker, token, twoFactorCode="000000").status_code for _ in range(10)]
    right = reset(attacker, token, twoFactorCode=pyotp.TOTP(secret).at(clock.now()))

    assert wrong == [401] * 10
    body = assert_error(right, 429, "RATE_LIMITED")
    assert int(right.headers["Retry-After"]) == body["details"]["retryAfter"] == 15 * 60


def test_a_refused_guess_leaves_the_reset_link_working_once_the_window_has_passed(
    browser, mail_app, deliver, inbox
):
    signed_up(browser, VICTIM, "Vic")
    verify(browser, deliver, inbox)
    secret = turn_on_two_factor(browser)["secret"]
    token = reset_link(browser, deliver, inbox)
    for _ in range(11):
        reset(new_browser(mail_app), token, twoFactorCode="000000")

    clock.freeze(clock.now() + timedelta(minutes=15))
    done = reset(new_browser(mail_app), token, twoFactorCode=pyotp.TOTP(secret).at(clock.now()))

    assert done.status_code == 200, done.json


def test_wrong_answers_on_every_endpoint_count_together(browser, mail_app, assert_error):
    signed_up(browser, VICTIM, "Vic")
    turn_on_two_factor(browser)
    wrong_password = {"currentPassword": "not the password at all", "twoFactorEnabled": False}
    answers = [browser.put("/api/account/security", json=wrong_password) for _ in range(4)]
    answers += [ask_email_change(browser, "new@example.com", "wrong") for _ in range(3)]
    deletion = {"currentPassword": PASSWORD, "twoFactorCode": "123456"}
    answers += [browser.delete("/api/account", json=deletion) for _ in range(3)]
    assert [a.status_code for a in answers] == [400] * 7 + [401] * 3

    login = new_browser(mail_app).post(
        "/api/auth/login", json={"email": VICTIM, "password": PASSWORD}
    )

    assert_error(login, 429, "RATE_LIMITED")


def test_each_refused_answer_is_in_the_activity(browser):
    signed_up(browser, VICTIM, "Vic")
    browser.put("/api/account/security", json={"currentPassword": "nope", "twoFactorEnabled": True})
    ask_email_change(browser, "new@example.com", "wrong")

    events = browser.get("/api/account/activity").json["data"]["events"]

    refused = [e["details"] for e in events if e["type"] == "secret_refused"]
    assert refused == [
        {"action": "email_change", "reason": "currentPassword"},
        {"action": "security_change", "reason": "currentPassword"},
    ]


def test_right_answers_do_not_count(browser, assert_error):
    signed_up(browser, VICTIM, "Vic")
    unchanged = {"currentPassword": PASSWORD, "twoFactorEnabled": False}
    right = [browser.put("/api/account/security", json=unchanged).status_code for _ in range(12)]

    wrong = browser.put("/api/account/security", json={**unchanged, "currentPassword": "nope"})

    assert right == [200] * 12
    assert_error(wrong, 400, "INVALID_PASSWORD", "currentPassword")


def test_the_guessing_limit_is_off_with_the_other_limits(app_factory, frozen_clock):
    from smartcv_account.extensions import db

    application = app_factory(RATELIMIT_ENABLED=False)
    with application.app_context():
        client = application.test_client()
        signed_up(client, VICTIM, "Vic")
        wrong = {"currentPassword": "not the password", "twoFactorEnabled": True}
        answers = [client.put("/api/account/security", json=wrong).status_code for _ in range(12)]
        db.session.remove()
    assert answers == [400] * 12


# --- pre-hijacking: a reset of an unverified account proves who owns the address -----------------


def test_a_reset_of_an_unverified_account_undoes_what_the_registrant_set_up(
    browser, mail_app, deliver, inbox, assert_error
):
    hijacker = browser
    signed_up(hijacker, VICTIM, "Vic")  # the victim's address, registered first by someone else
    turn_on_two_factor(hijacker)
    assert ask_email_change(hijacker, ATTACKER).status_code == 202
    pending = latest_link(deliver, inbox, ATTACKER, "confirm-email")
    owner = new_browser(mail_app)

    done = reset(owner, reset_link(owner, deliver, inbox))  # no second factor asked

    assert done.status_code == 200, done.json
    assert hijacker.get("/api/account").status_code == 401
    confirm = owner.post("/api/account/email/confirm", json={"token": pending})
    assert_error(confirm, 400, "INVALID_TOKEN")
    login = owner.post("/api/auth/login", json={"email": VICTIM, "password": NEW_PASSWORD})
    assert login.status_code == 200, login.json  # no second factor: it was turned off
    assert login.json["data"]["emailVerified"] is True
    assert "two_factor_disabled" in activity_types(owner)


def test_a_reset_of_an_unverified_account_removes_its_passkeys_and_identities(
    browser, mail_app, deliver, inbox
):
    hijacker = browser
    signed_up(hijacker, VICTIM, "Vic")
    user = db.session.scalar(sa.select(User).where(User.email == VICTIM))
    add_passkey(user.id)
    db.session.add(
        LinkedIdentity(
            public_id="idn_hijacker",
            user_id=user.id,
            provider="idp",
            issuer="https://idp.example",
            subject="hijacker",
            created_at=clock.now(),
        )
    )
    db.session.commit()
    owner = new_browser(mail_app)

    assert reset(owner, reset_link(owner, deliver, inbox)).status_code == 200

    for model in (Passkey, LinkedIdentity):
        assert db.session.scalar(sa.select(model).where(model.user_id == user.id)) is None


def test_a_reset_of_a_verified_account_still_asks_for_the_second_factor(
    browser, mail_app, deliver, inbox, assert_error
):
    signed_up(browser, VICTIM, "Vic")
    verify(browser, deliver, inbox)
    turn_on_two_factor(browser)

    answer = reset(new_browser(mail_app), reset_link(browser, deliver, inbox))

    assert_error(answer, 401, "TWO_FACTOR_REQUIRED", "twoFactorCode")
