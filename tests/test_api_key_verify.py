"""The internal verify call: a key's refusals, its scope, the plan's limit and the counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import ApiKey, User
from smartcv_account.services import key_secrets

from .factories import PASSWORD
from .helpers import api_key, put_on_plan, stored, verify_key

READ = "resumes:read"


@pytest.fixture
def key(key_owner_client) -> dict:
    """A key of `key_owner` with the scopes resumes:read and ai:use."""
    return api_key(key_owner_client, [READ, "ai:use"])


def api_requests(key_owner) -> int:
    """The owner's stored API-request counter."""
    return stored(key_owner.public_id)[1]


def set_used(key_owner, used: int) -> None:
    """Set the owner's API requests this month, as recorded calls would have."""
    db.session.execute(
        sa.update(User)
        .where(User.id == key_owner.id)
        .values(api_requests_used=used, api_requests_reset_at=datetime(2025, 2, 1, tzinfo=UTC))
    )
    db.session.commit()


def test_a_good_key_is_answered_and_counted(client, key_owner, key, frozen_clock):
    response = verify_key(client, key["secret"], scope=READ)
    assert response.status_code == 200, response.json
    assert response.json == {
        "success": True,
        "data": {
            "keyId": key["id"],
            "userId": key_owner.public_id,
            "scopes": [READ, "ai:use"],
            "subscriptionType": "FREE",
            "usage": {
                "apiRequestsUsed": 1,
                "apiRequestsLimit": 100,
                "resetDate": "2025-02-01T00:00:00Z",
            },
        },
    }
    assert api_requests(key_owner) == 1
    assert verify_key(client, key["secret"]).json["data"]["usage"]["apiRequestsUsed"] == 2


def test_count_false_checks_without_counting(client, key_owner, key):
    verify_key(client, key["secret"])
    response = verify_key(client, key["secret"], scope="ai:use", count=False)
    assert response.status_code == 200
    assert response.json["data"]["usage"]["apiRequestsUsed"] == 1
    assert api_requests(key_owner) == 1


def test_the_key_shares_the_usage_calls_counter(client, key_owner, key):
    verify_key(client, key["secret"])
    account = client.post(
        "/api/auth/login", json={"email": key_owner.email, "password": PASSWORD}
    ).json["data"]
    assert account["apiRequestsUsed"] == 1


def test_a_key_without_the_scope_is_refused_and_not_counted(
    client, key_owner, key_owner_client, assert_error
):
    key = api_key(key_owner_client, [READ])
    response = verify_key(client, key["secret"], scope="resumes:write")
    body = assert_error(response, 403, "INSUFFICIENT_SCOPE")
    assert body["details"] == {"required": "resumes:write", "granted": [READ]}
    assert_error(
        verify_key(client, key["secret"], scope="ai:use", count=False), 403, "INSUFFICIENT_SCOPE"
    )
    assert api_requests(key_owner) == 0


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "scv_",
        "not a key",
        "ghp_" + "a" * 49,
        key_secrets.new_secret()[:-1],
        key_secrets.new_secret() + "x",
        # The right shape and checksum, but no such key.
        key_secrets.new_secret(),
    ],
)
def test_an_unknown_or_malformed_key_is_invalid(client, key, key_owner, secret, assert_error):
    body = assert_error(verify_key(client, secret), 401, "INVALID_API_KEY")
    assert body["details"] == {"reason": "unknown"}
    assert api_requests(key_owner) == 0


def test_a_key_with_a_broken_checksum_is_unknown(client, key, key_owner, assert_error):
    secret = key["secret"]
    broken = secret[:-1] + ("a" if secret[-1] != "a" else "b")
    body = assert_error(verify_key(client, broken), 401, "INVALID_API_KEY")
    assert body["details"] == {"reason": "unknown"}


def test_an_expired_key_is_refused_and_not_counted(
    client, key_owner, key_owner_client, frozen_clock, assert_error
):
    key = api_key(key_owner_client, expiresInDays=1)
    clock.freeze(frozen_clock + timedelta(days=1, seconds=-1))
    assert verify_key(client, key["secret"]).status_code == 200
    clock.freeze(frozen_clock + timedelta(days=1))
    body = assert_error(verify_key(client, key["secret"]), 401, "INVALID_API_KEY")
    assert body["details"] == {"reason": "expired"}
    assert_error(verify_key(client, key["secret"], count=False), 401, "INVALID_API_KEY")
    assert api_requests(key_owner) == 1


def test_a_revoked_key_is_refused_even_unchecked(client, key_owner_client, key, assert_error):
    key_owner_client.delete(f"/api/account/api-keys/{key['id']}")
    body = assert_error(verify_key(client, key["secret"], count=False), 401, "INVALID_API_KEY")
    assert body["details"] == {"reason": "revoked"}


def test_the_last_call_within_the_limit_passes_and_the_next_is_refused(
    client, key_owner, key, frozen_clock, assert_error
):
    set_used(key_owner, 99)
    assert verify_key(client, key["secret"]).json["data"]["usage"]["apiRequestsUsed"] == 100
    body = assert_error(verify_key(client, key["secret"]), 429, "SUBSCRIPTION_LIMIT_EXCEEDED")
    assert body["details"] == {"metric": "apiRequests", "limit": 100, "used": 100}
    assert "Premium" in body["error"]
    assert api_requests(key_owner) == 100
    # Checking without counting still answers at the limit.
    assert verify_key(client, key["secret"], count=False).status_code == 200


def test_the_limit_follows_the_plan(client, key_owner, key, plans, frozen_clock, assert_error):
    put_on_plan(key_owner, "plan_premium_monthly")
    set_used(key_owner, 999)
    answer = verify_key(client, key["secret"]).json["data"]
    assert answer["subscriptionType"] == "PREMIUM"
    assert answer["usage"]["apiRequestsLimit"] == 1000
    body = assert_error(verify_key(client, key["secret"]), 429, "SUBSCRIPTION_LIMIT_EXCEEDED")
    assert body["details"] == {"metric": "apiRequests", "limit": 1000, "used": 1000}


def test_an_unlimited_plan_is_never_refused(client, key_owner, key, plans, frozen_clock):
    put_on_plan(key_owner, "plan_enterprise")
    set_used(key_owner, 10**9)
    answer = verify_key(client, key["secret"]).json["data"]
    assert answer["usage"] == {
        "apiRequestsUsed": 10**9 + 1,
        "apiRequestsLimit": -1,
        "resetDate": "2025-02-01T00:00:00Z",
    }


def test_a_new_month_starts_the_count_again(client, key_owner, key, frozen_clock):
    set_used(key_owner, 100)
    clock.freeze(datetime(2025, 2, 1, tzinfo=UTC))
    usage = verify_key(client, key["secret"]).json["data"]["usage"]
    assert usage == {
        "apiRequestsUsed": 1,
        "apiRequestsLimit": 100,
        "resetDate": "2025-03-01T00:00:00Z",
    }


def test_last_used_is_written_at_most_once_a_minute(client, key_owner_client, key, frozen_clock):
    def last_used() -> str | None:
        return key_owner_client.get("/api/account/api-keys").json["data"][0]["lastUsedAt"]

    verify_key(client, key["secret"])
    assert last_used() == "2025-01-01T00:00:00Z"
    clock.freeze(frozen_clock + timedelta(seconds=59))
    verify_key(client, key["secret"])
    assert last_used() == "2025-01-01T00:00:00Z"
    clock.freeze(frozen_clock + timedelta(seconds=60))
    verify_key(client, key["secret"], count=False)
    assert last_used() == "2025-01-01T00:01:00Z"


def test_a_failed_last_use_write_still_answers_the_counted_call(
    client, key_owner, key, monkeypatch, caplog
):
    """The count commits on its own; the last use is bookkeeping written after it. A failure
    there is logged, the call is answered with its count, and the next call writes it."""
    from smartcv_account.driver import DriverStatement

    run = DriverStatement.run

    def failing_touch(self, connection, parameters, commit=False):
        if self.sql.startswith("UPDATE api_keys"):
            raise sa.exc.OperationalError(self.sql, {}, Exception("the database went away"))
        return run(self, connection, parameters, commit)

    monkeypatch.setattr(DriverStatement, "run", failing_touch)
    response = verify_key(client, key["secret"], scope=READ)
    assert response.status_code == 200, response.json
    assert response.json["data"]["usage"]["apiRequestsUsed"] == 1
    assert api_requests(key_owner) == 1
    assert "the last use of an API key was not recorded" in caplog.text
    db.session.rollback()
    assert db.session.scalar(sa.select(ApiKey.last_used_at)) is None
    monkeypatch.setattr(DriverStatement, "run", run)
    assert verify_key(client, key["secret"]).status_code == 200
    db.session.rollback()
    assert db.session.scalar(sa.select(ApiKey.last_used_at)) is not None


def test_a_refused_call_does_not_touch_last_used(client, key_owner_client, key, assert_error):
    verify_key(client, key["secret"], scope="account:read")
    db.session.rollback()
    assert db.session.scalar(sa.select(ApiKey.last_used_at)) is None


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_the_internal_token_is_required(client, key, key_owner, token, assert_error):
    assert_error(verify_key(client, key["secret"], token=token), 401, "UNAUTHORIZED")
    assert api_requests(key_owner) == 0


def test_a_users_session_is_not_enough(key_owner_client, key, assert_error):
    response = key_owner_client.post("/api/internal/api-keys/verify", json={"key": key["secret"]})
    assert_error(response, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "resumes:delete"}, "scope"),
        ({"count": "yes"}, "count"),
        ({"count": 1}, "count"),
        ({"key": 42}, "key"),
        ({"key": "scv_" + "a" * 300}, "key"),
        ({"user": "user_x"}, "user"),
    ],
)
def test_a_bad_verify_body_is_a_validation_error(client, key, key_owner, body, field, assert_error):
    response = client.post(
        "/api/internal/api-keys/verify",
        json={"key": key["secret"], **body},
        headers={"Authorization": "Bearer test-internal-token"},
    )
    assert_error(response, 400, "VALIDATION_ERROR", field=field)
    assert api_requests(key_owner) == 0


def test_a_missing_key_is_a_validation_error(client, assert_error):
    response = client.post(
        "/api/internal/api-keys/verify",
        json={},
        headers={"Authorization": "Bearer test-internal-token"},
    )
    assert_error(response, 400, "VALIDATION_ERROR", field="key")
