"""GET /api/account/export: everything held about the user, in one document, with no secret."""

from __future__ import annotations

import json

import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import AuthSession, BackupCode, Subscription, User
from smartcv_account.services import credentials

from .billing_helpers import SUBSCRIPTION_URL, subscribe
from .factories import PASSWORD, UserFactory
from .helpers import signed_in
from .lifecycle_helpers import EXPORT_URL, SESSIONS_URL, current_session, event_types


def exported(client) -> dict:
    """The client's export, asserted to succeed."""
    response = client.get(EXPORT_URL)
    assert response.status_code == 200, response.json
    return response.json["data"]


def test_export_holds_account_sessions_activity_and_subscriptions(app, user, plans):
    other = signed_in(app, user.email, agent="phone")
    me = signed_in(app, user.email, agent="laptop")
    me.delete(f"{SESSIONS_URL}/{current_session(other)['id']}")
    subscribe(me)

    document = exported(me)

    assert set(document) == {
        "exportedAt",
        "account",
        "teams",
        "security",
        "sessions",
        "activity",
        "subscription",
        "subscriptions",
        "invoices",
        "passkeys",
        "identities",
        "apiKeys",
    }
    assert document["passkeys"] == document["identities"] == []
    assert document["account"] == me.get("/api/account").json["data"]
    assert document["subscription"] == me.get(SUBSCRIPTION_URL).json["data"]
    assert document["security"] == {"twoFactorEnabled": False, "backupCodesRemaining": 0}
    ended = [s for s in document["sessions"] if s["revokedAt"] is not None]
    assert [s["userAgent"] for s in ended] == ["phone"]
    [record] = document["subscriptions"]
    assert (record["planId"], record["status"], record["paymentMethod"]["last4"]) == (
        "plan_premium_monthly",
        "ACTIVE",
        "4242",
    )
    assert document["invoices"] == me.get("/api/account/invoices").json["data"]
    assert [invoice["status"] for invoice in document["invoices"]] == ["paid"]


def test_export_is_recorded_and_includes_its_own_event(auth_client):
    document = exported(auth_client)
    assert document["activity"][0]["type"] == "data_exported"
    assert event_types(auth_client)[0] == "data_exported"


def test_export_contains_no_secret(app, user, two_factor, plans):
    client = signed_in(app, user.email, twoFactorCode=two_factor["backupCodes"][0])
    subscribe(client, payment_method="pm_card_authenticationRequired")  # has a client secret
    text = json.dumps(exported(client))

    db.session.expire_all()
    row = db.session.get(User, user.id)
    secrets = [
        row.password_hash,
        row.totp_secret_encrypted,
        two_factor["secret"],
        *two_factor["backupCodes"],
        *db.session.scalars(sa.select(BackupCode.code_hash)),
        client.get_cookie("smartcv_session").value,
        *db.session.scalars(sa.select(AuthSession.token_hash)),
        *db.session.scalars(sa.select(Subscription.client_secret)),
    ]
    # The hash, the encrypted and the plain TOTP secret, 10 backup codes and their 10 hashes,
    # the cookie, the hashes of the 2 sessions' tokens, the client secret.
    assert all(secrets) and len(secrets) == 3 + 10 + 10 + 1 + 2 + 1
    assert [secret for secret in secrets if secret in text] == []
    assert credentials.check_password(PASSWORD, row.password_hash)  # the hash was a real one
    # The way a sign-in was made (`"method": "password"`) names no secret.
    keys = text.lower().replace('"backupcodesremaining"', "").replace('"method": "password"', "")
    for key in ("password", "secret", "token", "hash", "backupcodes"):
        assert f'"{key}' not in keys


def test_export_counts_the_backup_codes_left(app, user, two_factor):
    client = signed_in(app, user.email, twoFactorCode=two_factor["backupCodes"][0])
    assert exported(client)["security"] == {"twoFactorEnabled": True, "backupCodesRemaining": 9}


def test_export_shows_only_the_users_own_data(app, user):
    stranger = signed_in(app, UserFactory().email, agent="stranger")
    stranger.get(EXPORT_URL)
    document = exported(signed_in(app, user.email))
    assert [s["userAgent"] for s in document["sessions"]] == ["pytest"]
    assert [e["type"] for e in document["activity"]] == ["data_exported", "login_succeeded"]


def test_export_is_rate_limited_per_user(app_factory, assert_error):
    app = app_factory(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_EXPORT_PER_USER="2 per hour",
    )
    with app.app_context():
        me = signed_in(app, UserFactory().email)
        other = signed_in(app, UserFactory().email)
        assert [me.get(EXPORT_URL).status_code for _ in range(2)] == [200, 200]
        limited = me.get(EXPORT_URL)
        assert_error(limited, 429, "RATE_LIMITED")
        assert int(limited.headers["Retry-After"]) > 0
        assert other.get(EXPORT_URL).status_code == 200
        assert event_types(me).count("data_exported") == 2


def test_export_needs_a_signed_in_user(client, assert_error):
    assert_error(client.get(EXPORT_URL), 401, "UNAUTHORIZED")
