"""Personal API keys over HTTP: making, listing and revoking them, and what revokes them all.

The verify call that other services make with a key is in test_api_key_verify.py.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import ActivityEvent, ApiKey, OutboxMessage, User
from smartcv_account.services import key_secrets

from .factories import PASSWORD, UserFactory
from .helpers import (
    api_key,
    change_password,
    create_api_key,
    reset,
    signed_in,
    verify_key,
)
from .signin_helpers import passwordless_user, session_client

KEYS_URL = "/api/account/api-keys"


def events(user_id: int, kind: str) -> list[dict]:
    """The details of the user's activity events of `kind`, oldest first."""
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(ActivityEvent.details)
            .where(ActivityEvent.user_id == user_id, ActivityEvent.type == kind)
            .order_by(ActivityEvent.id)
        )
    )


# --- making a key ---------------------------------------------------------------------------------


def test_a_new_key_is_answered_once_with_its_secret(key_owner_client, frozen_clock):
    response = create_api_key(key_owner_client, ["resumes:read", "ai:use"], name="  CV sync  ")
    assert response.status_code == 201, response.json
    key = response.json["data"]
    assert set(key) == {
        "id",
        "name",
        "scopes",
        "prefix",
        "createdAt",
        "expiresAt",
        "lastUsedAt",
        "secret",
    }
    assert key["id"].startswith("key_")
    assert key["name"] == "CV sync"
    assert key["scopes"] == ["resumes:read", "ai:use"]
    assert key["createdAt"] == "2025-01-01T00:00:00Z"
    assert key["expiresAt"] == "2025-04-01T00:00:00Z"  # 90 days by default
    assert key["lastUsedAt"] is None
    assert key["prefix"] == key["secret"][:12]


def test_a_secret_is_scv_then_256_random_bits_and_a_checksum(key_owner_client):
    secrets = {api_key(key_owner_client)["secret"] for _ in range(3)}
    assert len(secrets) == 3
    for secret in secrets:
        assert secret.startswith("scv_") and len(secret) == 53
        assert secret[4:].isalnum()
        assert key_secrets.well_formed(secret)
        # One changed character breaks the checksum: scanners and the verify call can tell.
        flipped = secret[:10] + ("A" if secret[10] != "A" else "B") + secret[11:]
        assert not key_secrets.well_formed(flipped)


def test_the_expiry_is_chosen_in_days(key_owner_client, frozen_clock):
    key = api_key(key_owner_client, expiresInDays=1)
    assert key["expiresAt"] == "2025-01-02T00:00:00Z"
    assert api_key(key_owner_client, expiresInDays=365)["expiresAt"] == "2026-01-01T00:00:00Z"


def test_only_a_hash_of_the_secret_is_stored(key_owner_client):
    key = api_key(key_owner_client)
    db.session.rollback()
    row = db.session.scalar(sa.select(ApiKey).where(ApiKey.public_id == key["id"]))
    assert row.secret_hash == hashlib.sha256(key["secret"].encode()).hexdigest()
    stored = [str(value) for value in row.__dict__.values()]
    assert not any(key["secret"] in value for value in stored)


def test_an_unverified_email_cannot_make_a_key(app, auth_client, user, assert_error):
    response = create_api_key(auth_client)
    assert_error(response, 403, "EMAIL_NOT_VERIFIED")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


def test_a_wrong_password_makes_no_key_and_is_counted(key_owner_client, key_owner, assert_error):
    response = create_api_key(key_owner_client, password="not the password")
    assert_error(response, 400, "INVALID_PASSWORD", field="currentPassword")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0
    refused = events(key_owner.id, "secret_refused")
    assert refused == [{"action": "api_key_creation", "reason": "currentPassword"}]


def test_wrong_passwords_on_key_creation_spend_the_guessing_budget(
    app_factory, key_owner, assert_error
):
    app = app_factory(RATELIMIT_ENABLED=True)
    with app.app_context():
        client = signed_in(app, key_owner.email)
        for _ in range(10):
            assert create_api_key(client, password="wrong guess").status_code == 400
        # The budget is the account's: the right password is refused too, until the window ends.
        assert_error(create_api_key(client), 429, "RATE_LIMITED")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["resumes:delete"]}, "scopes.0"),
        ({"scopes": "resumes:read"}, "scopes"),
        ({"expiresInDays": 0}, "expiresInDays"),
        ({"expiresInDays": 366}, "expiresInDays"),
        ({"expiresInDays": "30"}, "expiresInDays"),
        ({"expiresInDays": 30.0}, "expiresInDays"),
        ({"secret": "scv_mine"}, "secret"),
        ({"currentPassword": None}, "currentPassword"),
    ],
)
def test_a_bad_request_is_a_validation_error(key_owner_client, change, field, assert_error):
    body = {"name": "CV sync", "scopes": ["ai:use"], "currentPassword": PASSWORD, **change}
    response = key_owner_client.post(KEYS_URL, json=body)
    assert_error(response, 400, "VALIDATION_ERROR", field=field)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


def test_a_missing_password_is_a_validation_error(key_owner_client, assert_error):
    response = key_owner_client.post(KEYS_URL, json={"name": "CV sync", "scopes": ["ai:use"]})
    assert_error(response, 400, "VALIDATION_ERROR", field="currentPassword")


def test_keys_need_a_session(client, assert_error):
    assert_error(create_api_key(client), 401, "UNAUTHORIZED")
    assert_error(client.get(KEYS_URL), 401, "UNAUTHORIZED")
    assert_error(client.delete(f"{KEYS_URL}/key_{'0' * 24}"), 401, "UNAUTHORIZED")


def test_ten_live_keys_at_most(key_owner_client, assert_error):
    keys = [api_key(key_owner_client) for _ in range(10)]
    assert_error(create_api_key(key_owner_client), 409, "API_KEY_LIMIT_REACHED")
    assert key_owner_client.delete(f"{KEYS_URL}/{keys[0]['id']}").status_code == 200
    assert create_api_key(key_owner_client).status_code == 201


def test_expired_keys_do_not_count_toward_the_ten(key_owner_client, frozen_clock):
    for _ in range(10):
        api_key(key_owner_client, expiresInDays=1)
    clock.freeze(frozen_clock + timedelta(days=1))
    assert create_api_key(key_owner_client).status_code == 201


def test_making_a_key_sends_a_security_notice_without_the_secret(key_owner_client, key_owner):
    key = api_key(key_owner_client, ["resumes:read", "account:read"], name="Zapier")
    db.session.rollback()
    notice = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "notice_api_key_created")
    )
    assert notice.to_address == key_owner.email
    assert "Zapier" in notice.text_body and key["prefix"] in notice.text_body
    assert "resumes:read, account:read" in notice.text_body
    assert key["secret"] not in notice.text_body


def test_making_and_revoking_are_in_the_activity(key_owner_client, key_owner):
    key = api_key(key_owner_client, name="Zapier")
    key_owner_client.delete(f"{KEYS_URL}/{key['id']}")
    assert events(key_owner.id, "api_key_created") == [{"keyId": key["id"], "name": "Zapier"}]
    assert events(key_owner.id, "api_key_revoked") == [{"keyId": key["id"]}]


def test_an_idempotency_key_never_replays_a_secret(key_owner_client):
    headers = {"Idempotency-Key": "same-key"}
    body = {"name": "CV sync", "scopes": ["ai:use"], "currentPassword": PASSWORD}
    first = key_owner_client.post(KEYS_URL, json=body, headers=headers)
    second = key_owner_client.post(KEYS_URL, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json["data"]["secret"] != second.json["data"]["secret"]


# --- listing and revoking -------------------------------------------------------------------------


def test_the_list_shows_live_keys_newest_first_without_secrets(key_owner_client, frozen_clock):
    old = api_key(key_owner_client, name="old")
    clock.freeze(frozen_clock + timedelta(seconds=5))
    new = api_key(key_owner_client, name="new", expiresInDays=2)
    response = key_owner_client.get(KEYS_URL)
    assert response.status_code == 200
    listed = response.json["data"]
    assert [key["id"] for key in listed] == [new["id"], old["id"]]
    assert listed[0] == {name: value for name, value in new.items() if name != "secret"}


def test_revoked_and_expired_keys_leave_the_list(key_owner_client, frozen_clock):
    revoked = api_key(key_owner_client)
    expiring = api_key(key_owner_client, expiresInDays=1)
    kept = api_key(key_owner_client, expiresInDays=2)
    key_owner_client.delete(f"{KEYS_URL}/{revoked['id']}")
    clock.freeze(frozen_clock + timedelta(days=1))
    assert [key["id"] for key in key_owner_client.get(KEYS_URL).json["data"]] == [kept["id"]]
    assert expiring["id"] != kept["id"]


def test_another_users_keys_are_neither_listed_nor_revocable(app, key_owner_client, assert_error):
    other = signed_in(app, UserFactory(email_verified_at=clock.now()).email)
    theirs = api_key(other)
    assert key_owner_client.get(KEYS_URL).json["data"] == []
    response = key_owner_client.delete(f"{KEYS_URL}/{theirs['id']}")
    assert_error(response, 404, "API_KEY_NOT_FOUND", field="id")
    assert verify_key(other, theirs["secret"]).status_code == 200


@pytest.mark.parametrize("key_id", [f"key_{'0' * 24}", "key_nope", "sess_x", "key_%00"])
def test_an_unknown_key_id_is_not_found(key_owner_client, key_id, assert_error):
    assert_error(key_owner_client.delete(f"{KEYS_URL}/{key_id}"), 404, "API_KEY_NOT_FOUND")


def test_a_revoked_key_stops_working_at_once_and_cannot_be_revoked_again(
    key_owner_client, client, assert_error
):
    key = api_key(key_owner_client)
    assert verify_key(client, key["secret"]).status_code == 200
    response = key_owner_client.delete(f"{KEYS_URL}/{key['id']}")
    assert response.status_code == 200 and response.json == {"success": True}
    refused = assert_error(verify_key(client, key["secret"]), 401, "INVALID_API_KEY")
    assert refused["details"] == {"reason": "revoked"}
    assert_error(key_owner_client.delete(f"{KEYS_URL}/{key['id']}"), 404, "API_KEY_NOT_FOUND")


# --- what revokes every key -----------------------------------------------------------------------


def test_a_password_change_keeps_the_keys(key_owner_client, client):
    key = api_key(key_owner_client)
    assert change_password(key_owner_client).status_code == 200
    assert verify_key(client, key["secret"]).status_code == 200


def _reset_token(app, email: str) -> str:
    """Ask for a reset link to `email` and return its token, as the mail would carry it."""
    from smartcv_account.services import recovery

    with app.app_context():
        recovery.request_password_reset(email)
        db.session.commit()
        recovery.compose_reset_links()
        message = db.session.scalar(
            sa.select(OutboxMessage).where(OutboxMessage.kind == "password_reset")
        )
        return message.link_token


def test_a_password_reset_revokes_every_key(app, key_owner_client, key_owner, client, assert_error):
    keys = [api_key(key_owner_client) for _ in range(2)]
    assert reset(client, _reset_token(app, key_owner.email)).status_code == 200
    for key in keys:
        refused = assert_error(verify_key(client, key["secret"]), 401, "INVALID_API_KEY")
        assert refused["details"] == {"reason": "revoked"}
    assert events(key_owner.id, "api_key_revoked") == [
        {"all": True, "count": 2, "reason": "password_reset"}
    ]


def test_account_deletion_removes_every_key(key_owner_client, client, assert_error):
    key = api_key(key_owner_client)
    response = key_owner_client.delete("/api/account", json={"currentPassword": PASSWORD})
    assert response.status_code == 200
    refused = assert_error(verify_key(client, key["secret"]), 401, "INVALID_API_KEY")
    assert refused["details"] == {"reason": "unknown"}
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


def test_the_operator_revokes_a_users_keys(
    key_owner_client, key_owner, client, runner, assert_error
):
    key = api_key(key_owner_client)
    result = runner.invoke(args=["revoke-api-keys", key_owner.email.upper()])
    assert result.exit_code == 0, result.output
    assert result.output == f"revoked 1 API key(s) of {key_owner.email}\n"
    assert_error(verify_key(client, key["secret"]), 401, "INVALID_API_KEY")
    assert events(key_owner.id, "api_key_revoked")[-1]["reason"] == "operator"


def test_the_operator_command_names_an_unknown_email(runner):
    result = runner.invoke(args=["revoke-api-keys", "nobody@example.com"])
    assert result.exit_code == 1
    assert "no user with email nobody@example.com" in result.output


# --- the export -----------------------------------------------------------------------------------


def test_the_export_lists_every_key_without_secret_or_hash(key_owner_client, frozen_clock):
    revoked = api_key(key_owner_client, name="old")
    key_owner_client.delete(f"{KEYS_URL}/{revoked['id']}")
    live = api_key(key_owner_client, name="new")
    response = key_owner_client.get("/api/account/export")
    assert response.status_code == 200
    exported = response.json["data"]["apiKeys"]
    assert {key["id"] for key in exported} == {revoked["id"], live["id"]}
    by_id = {key["id"]: key for key in exported}
    assert by_id[revoked["id"]]["revokedAt"] == "2025-01-01T00:00:00Z"
    assert by_id[live["id"]]["revokedAt"] is None
    text = response.get_data(as_text=True)
    db.session.rollback()
    for row in db.session.scalars(sa.select(ApiKey)):
        assert row.secret_hash not in text
    assert live["secret"] not in text and "secretHash" not in text


def test_a_deleted_users_row_keeps_no_key(key_owner_client, key_owner):
    api_key(key_owner_client)
    key_owner_client.delete("/api/account", json={"currentPassword": PASSWORD})
    db.session.rollback()
    assert db.session.get(User, key_owner.id).deleted_at is not None
    assert db.session.scalar(sa.select(ApiKey).where(ApiKey.user_id == key_owner.id)) is None


def test_an_account_without_password_makes_keys_within_ten_minutes_of_signing_in(
    app, frozen_clock, assert_error
):
    client = session_client(app, passwordless_user())
    body = {"name": "CV sync", "scopes": ["resumes:read"]}
    assert client.post("/api/account/api-keys", json=body).status_code == 201
    clock.freeze(frozen_clock + timedelta(minutes=10))
    answer = client.post("/api/account/api-keys", json=body)
    assert_error(answer, 401, "REAUTHENTICATION_REQUIRED")
    assert len(client.get("/api/account/api-keys").json["data"]) == 1


def test_an_account_with_a_password_must_send_it(key_owner_client, assert_error):
    body = {"name": "CV sync", "scopes": ["resumes:read"]}
    answer = key_owner_client.post("/api/account/api-keys", json=body)
    assert_error(answer, 400, "VALIDATION_ERROR")
    assert answer.json["details"]["field"] == "currentPassword"
