"""Passkeys over HTTP, apart from the browser's ceremony (tests/browser/test_passkeys.py does
that with Chromium's virtual authenticator): options, refusals of malformed responses, names,
removal, the last way in, notices, the export and the erasure."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import OutboxMessage, Passkey, User, WebAuthnChallenge
from smartcv_account.services.passkeys import relying_party

from .factories import PASSWORD
from .lifecycle_helpers import event_types
from .signin_helpers import add_passkey, passwordless_user, session_client

OPTIONS = "/api/account/passkeys/options"
PASSKEYS = "/api/account/passkeys"


def test_creation_options_need_the_password(auth_client, user, assert_error):
    assert_error(
        auth_client.post(OPTIONS, json={"currentPassword": "wrong"}), 400, "INVALID_PASSWORD"
    )
    assert_error(auth_client.post(OPTIONS, json={}), 400, "VALIDATION_ERROR", "currentPassword")

    existing = add_passkey(user.id)
    answer = auth_client.post(OPTIONS, json={"currentPassword": PASSWORD})

    assert answer.status_code == 200, answer.json
    options = answer.json["data"]["publicKey"]
    assert options["rp"] == {"id": "localhost", "name": "SmartCV"}
    assert options["user"]["name"] == user.email
    assert options["authenticatorSelection"] == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "required",
    }
    assert options["attestation"] == "none"
    assert options["timeout"] == 300000
    assert [c["id"] for c in options["excludeCredentials"]] == [existing.credential_id]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebAuthnChallenge)) == 1


def test_an_account_without_password_adds_passkeys_within_ten_minutes_of_signing_in(
    app, frozen_clock, assert_error
):
    user = passwordless_user()
    client = session_client(app, user)
    assert client.post(OPTIONS, json={}).status_code == 200
    clock.freeze(frozen_clock + timedelta(minutes=10))
    assert_error(client.post(OPTIONS, json={}), 401, "REAUTHENTICATION_REQUIRED")


def test_options_follow_the_configured_relying_party(app_factory):
    app = app_factory(
        APP_BASE_URL="https://cv.example:8443",
        WEBAUTHN_RP_ID="example",
        WEBAUTHN_RP_NAME="SmartCV Test",
    )
    with app.app_context():
        answer = app.test_client().post("/api/auth/passkey/options")
        assert answer.status_code == 200
        options = answer.json["data"]["publicKey"]
        assert options["rpId"] == "example"
        assert options["userVerification"] == "required"
        assert len(options["challenge"]) == 43  # 32 random bytes, base64url
        assert relying_party() == ("example", ["https://cv.example:8443"])
        db.session.remove()


def test_a_response_without_a_live_challenge_is_refused(auth_client, assert_error):
    bad = {"name": "Laptop", "credential": {"id": "x", "response": {"clientDataJSON": "bm90"}}}
    answer = auth_client.post(PASSKEYS, json=bad)
    assert_error(answer, 400, "INVALID_PASSKEY")
    assert answer.json["details"] == {"reason": "challenge"}
    assert db.session.scalar(sa.select(Passkey)) is None


def test_a_malformed_sign_in_is_refused_like_a_wrong_password(client, assert_error):
    for credential in ({}, {"id": "nope", "rawId": "nope"}, {"response": {"clientDataJSON": 5}}):
        answer = client.post("/api/auth/passkey", json={"credential": credential})
        assert_error(answer, 401, "INVALID_CREDENTIALS")
    assert_error(client.post("/api/auth/passkey", json={}), 400, "VALIDATION_ERROR", "credential")


def test_passkeys_are_listed_renamed_and_removed_with_notices(auth_client, user, assert_error):
    passkey = add_passkey(user.id)
    [listed] = auth_client.get(PASSKEYS).json["data"]
    assert listed == {
        "id": passkey.public_id,
        "name": "Laptop",
        "createdAt": listed["createdAt"],
        "lastUsedAt": None,
        "backedUp": False,
    }

    renamed = auth_client.put(f"{PASSKEYS}/{passkey.public_id}", json={"name": "  Phone "})
    assert renamed.status_code == 200 and renamed.json["data"]["name"] == "Phone"
    assert_error(
        auth_client.put(f"{PASSKEYS}/{passkey.public_id}", json={"name": ""}),
        400,
        "VALIDATION_ERROR",
    )

    assert auth_client.delete(f"{PASSKEYS}/{passkey.public_id}").status_code == 200
    assert auth_client.get(PASSKEYS).json["data"] == []
    assert "passkey_removed" in event_types(auth_client)
    kinds = db.session.scalars(
        sa.select(OutboxMessage.kind).where(OutboxMessage.to_address == user.email)
    ).all()
    assert "notice_passkey_removed" in kinds
    assert_error(auth_client.delete(f"{PASSKEYS}/{passkey.public_id}"), 404, "NOT_FOUND")


def test_another_users_passkey_is_not_found(app, auth_client, assert_error):
    stranger = passwordless_user()
    theirs = add_passkey(stranger.id)
    assert_error(auth_client.delete(f"{PASSKEYS}/{theirs.public_id}"), 404, "NOT_FOUND")
    assert_error(
        auth_client.put(f"{PASSKEYS}/{theirs.public_id}", json={"name": "Mine"}), 404, "NOT_FOUND"
    )
    assert db.session.get(Passkey, theirs.id) is not None


def test_the_last_passkey_of_an_account_without_password_stays(app, assert_error):
    user = passwordless_user(identities=0)
    passkey = add_passkey(user.id)
    client = session_client(app, user)
    assert_error(client.delete(f"{PASSKEYS}/{passkey.public_id}"), 409, "LAST_SIGN_IN_METHOD")
    second = add_passkey(user.id, "Phone")
    assert client.delete(f"{PASSKEYS}/{second.public_id}").status_code == 200
    # A passkey and an identity are two ways in: either may go, not both.
    with_identity = passwordless_user(identities=1)
    key = add_passkey(with_identity.id)
    other = session_client(app, with_identity)
    assert other.delete(f"{PASSKEYS}/{key.public_id}").status_code == 200
    [identity] = other.get("/api/account/identities").json["data"]
    assert_error(
        other.delete(f"/api/account/identities/{identity['id']}"), 409, "LAST_SIGN_IN_METHOD"
    )


def test_passkeys_are_exported_without_key_material_and_erased_with_the_account(auth_client, user):
    passkey = add_passkey(user.id)
    exported = auth_client.get("/api/account/export").json["data"]
    assert [p["id"] for p in exported["passkeys"]] == [passkey.public_id]
    assert passkey.credential_id not in str(exported)

    deleted = auth_client.delete("/api/account", json={"currentPassword": PASSWORD})

    assert deleted.status_code == 200
    assert db.session.scalar(sa.select(Passkey)) is None
    assert db.session.get(User, user.id).deleted_at is not None


def test_passkey_sign_in_is_rate_limited_like_login(app_factory, assert_error):
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_ADDRESS="2 per minute")
    with app.app_context():
        client = app.test_client()
        for _ in range(2):
            assert client.post("/api/auth/passkey/options").status_code == 200
            answer = client.post("/api/auth/passkey", json={"credential": {}})
            assert_error(answer, 401, "INVALID_CREDENTIALS")
        assert_error(client.post("/api/auth/passkey/options"), 429, "RATE_LIMITED")
        assert_error(client.post("/api/auth/passkey", json={"credential": {}}), 429, "RATE_LIMITED")
        db.session.remove()
