"""Hardening: bcrypt cost upgrades, email normalisation, turning 2FA off, avatar URLs, usage
counter range, chunked bodies and the usage limit's advice."""

from __future__ import annotations

import io
import json

import pyotp
import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import User
from smartcv_account.services import billing, identity

from .factories import PASSWORD, UserFactory
from .helpers import STRONG, login, post_usage, register, stored

SECURITY_URL = "/api/account/security"


def stored_hash(user_id: int) -> str:
    """The password hash as committed."""
    db.session.rollback()
    return db.session.scalar(sa.select(User.password_hash).where(User.id == user_id))


# --- bcrypt cost ------------------------------------------------------------------------------


def test_login_rehashes_at_the_configured_cost(app_factory):
    app = app_factory(BCRYPT_ROUNDS=5)
    with app.app_context():
        user = UserFactory(password_hash=_hash_at(4))
        assert login(app.test_client(), user.email).status_code == 200
        assert stored_hash(user.id).startswith("$2b$05$")
        assert login(app.test_client(), user.email).status_code == 200


def test_login_keeps_a_hash_at_the_configured_cost(app, user):
    before = stored_hash(user.id)
    assert login(app.test_client(), user.email).status_code == 200
    assert stored_hash(user.id) == before


def test_a_failed_login_does_not_rehash(app_factory):
    app = app_factory(BCRYPT_ROUNDS=5)
    with app.app_context():
        user = UserFactory(password_hash=_hash_at(4))
        assert login(app.test_client(), user.email, "wrong password!").status_code == 401
        assert stored_hash(user.id).startswith("$2b$04$")


def _hash_at(rounds: int) -> str:
    """PASSWORD hashed at `rounds`, as the service hashes."""
    from flask import current_app

    from smartcv_account.services import credentials

    saved = current_app.config["BCRYPT_ROUNDS"]
    current_app.config["BCRYPT_ROUNDS"] = rounds
    try:
        return credentials.hash_password(PASSWORD)
    finally:
        current_app.config["BCRYPT_ROUNDS"] = saved


# --- email addresses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Ana@B\u00fccher.example.com", "ana@xn--bcher-kva.example.com"),
        ("jos\u00e9@example.com", "jose\u0301@example.com"),
        ("  Mixed.Case@EXAMPLE.com ", "mixed.case@example.com"),
    ],
    ids=["idna", "nfc", "case"],
)
def test_look_alike_addresses_are_one_account(app, assert_error, first, second):
    assert register(app.test_client(), first).status_code == 201
    assert_error(register(app.test_client(), second), 409, "EMAIL_TAKEN", "email")
    assert login(app.test_client(), second, STRONG).status_code == 200


@pytest.mark.parametrize(
    "email", ["a@localhost", "a@[127.0.0.1]", "a@127.0.0.1", "a@printer.local", "a@x.test"]
)
def test_special_use_and_ip_domains_are_refused(app, assert_error, email):
    assert_error(register(app.test_client(), email), 400, "VALIDATION_ERROR", "email")


def test_an_address_is_stored_normalised(app):
    register(app.test_client(), "Ana@B\u00fccher.Example.COM")
    assert db.session.scalar(sa.select(User.email)) == "ana@b\u00fccher.example.com"
    assert identity.normalise_email("ana@xn--bcher-kva.example.com") == (
        "ana@b\u00fccher.example.com"
    )


# --- turning two-factor authentication off ----------------------------------------------------


def _turn_off(client, code: str | None = None):
    body = {"currentPassword": PASSWORD, "twoFactorEnabled": False}
    if code is not None:
        body["twoFactorCode"] = code
    return client.put(SECURITY_URL, json=body)


def _enabled(user) -> bool:
    db.session.rollback()
    return db.session.scalar(sa.select(User.two_factor_enabled).where(User.id == user.id))


def test_turning_2fa_off_without_a_code_is_refused(auth_client, user, two_factor, assert_error):
    assert_error(_turn_off(auth_client), 401, "TWO_FACTOR_REQUIRED", "twoFactorCode")
    assert _enabled(user)


def test_turning_2fa_off_with_a_wrong_code_is_refused(auth_client, user, two_factor, assert_error):
    assert_error(_turn_off(auth_client, "000000"), 401, "INVALID_TWO_FACTOR_CODE")
    assert_error(_turn_off(auth_client, "12345678"), 401, "INVALID_TWO_FACTOR_CODE")
    assert _enabled(user)


def test_a_refused_code_changes_nothing_else(auth_client, user, two_factor):
    before = stored_hash(user.id)
    body = {
        "currentPassword": PASSWORD,
        "newPassword": STRONG,
        "confirmPassword": STRONG,
        "twoFactorEnabled": False,
    }
    assert auth_client.put(SECURITY_URL, json=body).status_code == 401
    assert stored_hash(user.id) == before


def test_turning_2fa_off_with_a_totp_code(auth_client, user, two_factor):
    code = pyotp.TOTP(two_factor["secret"]).at(clock.now())
    response = _turn_off(auth_client, code)
    assert response.status_code == 200, response.json
    assert response.json["data"]["twoFactorEnabled"] is False
    assert not _enabled(user)


def test_turning_2fa_off_with_a_backup_code(auth_client, user, two_factor):
    assert _turn_off(auth_client, two_factor["backupCodes"][0]).status_code == 200
    assert not _enabled(user)


def test_turning_2fa_off_ends_every_other_session(app, auth_client, user, two_factor):
    other = app.test_client()
    code = pyotp.TOTP(two_factor["secret"]).at(clock.now())
    assert login(other, user.email, code=two_factor["backupCodes"][1]).status_code == 200
    assert _turn_off(auth_client, code).status_code == 200
    assert other.get("/api/account").status_code == 401
    assert auth_client.get("/api/account").status_code == 200


# --- avatar -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "avatar",
    [
        "https://user:secret@example.com/a.png",
        "https://evil.example@example.com/a.png",
        "https://127.0.0.1/a.png",
        "https://127.1/a.png",
        "https://0x7f000001/a.png",
        "https://[::1]/a.png",
        "https://localhost/a.png",
        "https://img.localhost/a.png",
        "https://printer.local/a.png",
        "https://intranet/a.png",
        "http://example.com/a.png",
        "https://example.com:99999/a.png",
        "https:///a.png",
    ],
)
def test_an_unsafe_avatar_is_refused(auth_client, assert_error, avatar):
    response = auth_client.put("/api/account", json={"avatar": avatar})
    assert_error(response, 400, "VALIDATION_ERROR", "avatar")
    assert auth_client.get("/api/account").json["data"]["avatar"] is None


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("https://CDN.Example.COM/Me.png", "https://cdn.example.com/Me.png"),
        ("https://cdn.example.com:443/me.png", "https://cdn.example.com/me.png"),
        ("https://b\u00fccher.example.com", "https://xn--bcher-kva.example.com/"),
        (
            "https://cdn.example.com:8443/me.png?size=64",
            "https://cdn.example.com:8443/me.png?size=64",
        ),
    ],
)
def test_an_avatar_is_stored_normalised(auth_client, sent, kept):
    response = auth_client.put("/api/account", json={"avatar": sent})
    assert response.status_code == 200, response.json
    assert response.json["data"]["avatar"] == kept


# --- usage counters and bodies ------------------------------------------------------------------


def test_a_delta_past_the_counter_range_is_a_400(client, plans, assert_error):
    user = UserFactory(storage_used=2**63 - 10)
    billing.assign_plan(user, "plan_enterprise")  # unlimited storage
    response = post_usage(client, user.public_id, {"metric": "storage", "delta": 100})
    assert_error(response, 400, "VALIDATION_ERROR", "delta")
    assert stored(user.public_id)[2] == 2**63 - 10
    ok = post_usage(client, user.public_id, {"metric": "storage", "delta": 9})
    assert ok.status_code == 200
    assert stored(user.public_id)[2] == 2**63 - 1


def test_a_chunked_body_over_1_mib_is_413(client, assert_error):
    body = json.dumps({"email": "a@example.com", "password": "x" * (2 * 1024 * 1024)}).encode()
    response = client.post(
        "/api/auth/login",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # what gunicorn sets for chunked
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_a_small_chunked_body_is_read(client, user):
    body = json.dumps({"email": user.email, "password": PASSWORD}).encode()
    response = client.post(
        "/api/auth/login",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("metric", "delta", "plan"),
    [("resumes", 6, "Premium"), ("apiRequests", 2000, "Enterprise")],
)
def test_the_limit_refusal_names_the_plan_that_lifts_it(client, user, metric, delta, plan):
    response = post_usage(client, user.public_id, {"metric": metric, "delta": delta})
    assert response.status_code == 429
    assert f"{plan} (" in response.json["error"]
