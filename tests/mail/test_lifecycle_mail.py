"""Where the email flows meet the account's lifecycle: activity, deletion and safe retries."""

from __future__ import annotations

from ..factories import PASSWORD
from ..helpers import NEW_PASSWORD, change_email, signed_up
from ..lifecycle_helpers import event_types
from .conftest import link_in, verification_token


def test_verifying_the_address_is_recorded(client, deliver, inbox):
    signed_up(client)
    token = verification_token(deliver, inbox)
    client.post("/api/auth/verify-email", json={"token": token})
    assert event_types(client)[0] == "email_verified"


def test_email_change_request_and_confirmation_are_recorded(client, deliver, inbox):
    signed_up(client)
    deliver()
    change_email(client, "ann.new@example.com")
    assert event_types(client)[0] == "email_change_requested"
    deliver()
    token = link_in(inbox.only("ann.new@example.com"))["token"]
    assert client.post("/api/account/email/confirm", json={"token": token}).status_code == 200
    assert event_types(client)[:2] == ["email_changed", "email_change_requested"]


def test_password_reset_is_recorded(mail_app, client, deliver, inbox):
    signed_up(client)
    deliver()
    client.post("/api/auth/password-reset/request", json={"email": "ann@example.com"})
    deliver()
    found = [link_in(m) for m in inbox.to("ann@example.com") if "token=" in m.get_content()]
    token = found[-1]["token"]
    body = {"token": token, "newPassword": NEW_PASSWORD, "confirmPassword": NEW_PASSWORD}
    assert client.post("/api/auth/password-reset", json=body).status_code == 200
    browser = mail_app.test_client()
    login = {"email": "ann@example.com", "password": NEW_PASSWORD}
    assert browser.post("/api/auth/login", json=login).status_code == 200
    assert event_types(browser)[:2] == ["login_succeeded", "password_reset"]


def test_deleting_the_account_sends_the_goodbye_notice_and_nothing_older(client, deliver, inbox):
    signed_up(client)  # its verification link is still waiting in the outbox
    response = client.delete("/api/account", json={"currentPassword": PASSWORD})
    assert response.status_code == 200, response.json
    deliver()
    [goodbye] = inbox.to("ann@example.com")
    assert "deleted" in goodbye["Subject"].lower()
    assert "token=" not in goodbye.get_content()


def test_an_email_change_repeated_with_its_key_is_replayed_once(client, deliver, inbox):
    signed_up(client)
    deliver()
    headers = {"Idempotency-Key": "change-to-new-1"}
    body = {"newEmail": "ann.new@example.com", "currentPassword": PASSWORD}
    first = client.post("/api/account/email", json=body, headers=headers)
    again = client.post("/api/account/email", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    deliver()
    assert len(inbox.to("ann.new@example.com")) == 1
