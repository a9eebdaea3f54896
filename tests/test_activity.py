"""GET /api/account/activity: what happened to the account, recorded with the change itself."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyotp
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import ActivityEvent

from .billing_helpers import SUBSCRIPTION_URL, at, change
from .factories import PASSWORD, UserFactory
from .helpers import signed_in, subscribed
from .lifecycle_helpers import ACTIVITY_URL, event_types, events

NEW_PASSWORD = "a much longer passphrase nobody guesses 42"


def stored_types(user_id: int) -> list[str]:
    """The types of the user's stored events, oldest first (read from the database)."""
    return list(
        db.session.scalars(
            sa.select(ActivityEvent.type)
            .where(ActivityEvent.user_id == user_id)
            .order_by(ActivityEvent.id)
        )
    )


# --- what is recorded ---------------------------------------------------------------------------


def test_login_is_recorded_with_address_and_user_agent(app, user, frozen_clock):
    client = signed_in(app, user.email, "203.0.113.7", "Firefox")
    [event] = events(client)
    assert event["id"].startswith("evt_")
    assert {k: event[k] for k in ("type", "createdAt", "ipAddress", "userAgent", "details")} == {
        "type": "login_succeeded",
        "createdAt": "2025-01-01T00:00:00Z",
        "ipAddress": "203.0.113.7",
        "userAgent": "Firefox",
        "details": {"method": "password"},
    }


def test_wrong_password_is_refused_and_still_recorded(client, user, assert_error):
    response = client.post("/api/auth/login", json={"email": user.email, "password": "wrong one"})
    assert_error(response, 401, "INVALID_CREDENTIALS")
    db.session.expire_all()
    assert stored_types(user.id) == ["login_failed"]


def test_unknown_email_records_nothing(client, user):
    client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "x" * 9})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ActivityEvent)) == 0


def test_wrong_second_factor_is_recorded_as_failed_login(app, user, two_factor):
    browser = app.test_client()
    body = {"email": user.email, "password": PASSWORD, "twoFactorCode": "000000"}
    assert browser.post("/api/auth/login", json=body).json["code"] == "INVALID_TWO_FACTOR_CODE"
    recorded = db.session.scalars(
        sa.select(ActivityEvent).where(ActivityEvent.type == "login_failed")
    ).all()
    assert [event.details for event in recorded] == [{"reason": "twoFactorCode"}]


def test_missing_second_factor_is_not_a_failed_login(app, user, two_factor):
    browser = app.test_client()
    response = browser.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert response.json["code"] == "TWO_FACTOR_REQUIRED"
    assert "login_failed" not in stored_types(user.id)


def test_backup_code_login_is_recorded(app, user, two_factor):
    client = signed_in(app, user.email, twoFactorCode=two_factor["backupCodes"][0])
    assert event_types(client)[:2] == ["login_succeeded", "backup_code_used"]


def test_security_changes_are_recorded(auth_client):
    body = {
        "currentPassword": PASSWORD,
        "newPassword": NEW_PASSWORD,
        "confirmPassword": NEW_PASSWORD,
    }
    auth_client.put("/api/account/security", json=body)
    codes = auth_client.put(
        "/api/account/security", json={"currentPassword": NEW_PASSWORD, "twoFactorEnabled": True}
    ).json["data"]["backupCodes"]
    auth_client.put(
        "/api/account/security",
        json={
            "currentPassword": NEW_PASSWORD,
            "twoFactorEnabled": False,
            "twoFactorCode": codes[0],
        },
    )
    assert event_types(auth_client)[:4] == [
        "two_factor_disabled",
        "backup_code_used",
        "two_factor_enabled",
        "password_changed",
    ]


def test_a_refused_change_records_nothing(auth_client, user):
    body = {"currentPassword": PASSWORD, "newPassword": "password", "confirmPassword": "password"}
    assert auth_client.put("/api/account/security", json=body).status_code == 422
    assert stored_types(user.id) == ["login_succeeded"]


def test_logout_is_recorded(auth_client, user):
    auth_client.post("/api/auth/logout")
    assert stored_types(user.id) == ["login_succeeded", "logout"]


def test_subscription_life_is_recorded(premium_client):
    change(premium_client, "upgrade", planId="plan_premium_yearly")
    change(premium_client, "cancel")
    recorded = events(premium_client)[:3]
    assert [e["type"] for e in recorded] == [
        "subscription_canceled",
        "subscription_changed",
        "subscription_created",
    ]
    assert recorded[0]["details"]["atPeriodEnd"] is True
    assert recorded[1]["details"]["planId"] == "plan_premium_yearly"


def test_failed_renewal_is_recorded_as_payment_failed(auth_client, user, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    at(2025, 2, 1)
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "PAST_DUE"
    [failed] = [e for e in events(auth_client) if e["type"] == "payment_failed"]
    # The provider decided it, not a request of the user: no address is attributed to it.
    assert (failed["ipAddress"], failed["userAgent"]) == (None, None)


def test_rate_limited_attempts_are_not_recorded(app_factory):
    app = app_factory(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_LOGIN_FAILURES_PER_EMAIL="2 per 15 minutes",
    )
    with app.app_context():
        user = UserFactory()
        client = app.test_client()
        body = {"email": user.email, "password": "wrong password"}
        statuses = [client.post("/api/auth/login", json=body).status_code for _ in range(5)]
        assert statuses == [401, 401, 429, 429, 429]
        assert stored_types(user.id) == ["login_failed", "login_failed"]


def test_each_user_sees_only_their_own_events(app, user):
    other = signed_in(app, UserFactory().email)
    other.post("/api/auth/logout")
    assert event_types(signed_in(app, user.email)) == ["login_succeeded"]


# --- paging -------------------------------------------------------------------------------------


def test_pages_walk_every_event_once_newest_first(app, user, frozen_clock):
    client = signed_in(app, user.email)
    codes: list[str] = []
    for second in range(1, 7):  # two events in some seconds: (created_at, id) orders them
        clock.freeze(frozen_clock + timedelta(seconds=second // 2))
        body = {"currentPassword": PASSWORD, "twoFactorEnabled": second % 2 == 1}
        if codes:
            body["twoFactorCode"] = codes.pop()
        answer = client.put("/api/account/security", json=body).json["data"]
        codes = answer.get("backupCodes", [])
    expected = list(reversed(stored_types(user.id)))

    seen, cursor = [], None
    while True:
        query = {"limit": 3} | ({"before": cursor} if cursor else {})
        data = client.get(ACTIVITY_URL, query_string=query).json["data"]
        seen += data["events"]
        cursor = data["nextCursor"]
        if cursor is None:
            break

    assert [e["type"] for e in seen] == expected and len(seen) == 10
    assert len({e["id"] for e in seen}) == 10


def test_new_events_do_not_shift_the_following_pages(app, user):
    client = signed_in(app, user.email)
    for _ in range(4):
        client.put("/api/account", json={"name": "x"})  # not recorded
        signed_in(app, user.email)
    first = client.get(ACTIVITY_URL, query_string={"limit": 2}).json["data"]
    signed_in(app, user.email)  # a new event arrives between two pages
    second = client.get(
        ACTIVITY_URL, query_string={"limit": 2, "before": first["nextCursor"]}
    ).json["data"]
    everything = [e["id"] for e in events(client)]
    assert [e["id"] for e in first["events"] + second["events"]] == everything[1:5]


def test_last_page_has_no_cursor(auth_client):
    data = auth_client.get(ACTIVITY_URL, query_string={"limit": 1}).json["data"]
    assert (len(data["events"]), data["nextCursor"]) == (1, None)


def test_default_page_is_fifty(app, user):
    client = signed_in(app, user.email)
    for _ in range(55):
        client.post("/api/auth/logout")
        client = signed_in(app, user.email)
    data = client.get(ACTIVITY_URL).json["data"]
    assert len(data["events"]) == 50 and data["nextCursor"] == data["events"][-1]["id"]


def test_bad_limits_are_validation_errors(auth_client, assert_error):
    for limit in ("0", "101", "ten", "-1"):
        response = auth_client.get(ACTIVITY_URL, query_string={"limit": limit})
        assert_error(response, 400, "VALIDATION_ERROR", "limit")


def test_unknown_or_foreign_cursor_is_a_validation_error(app, user, auth_client, assert_error):
    other = signed_in(app, UserFactory().email)
    foreign = events(other)[0]["id"]
    for cursor in ("evt_nope", "evt_" + "0" * 24, "evt\x00", "x" * 300, foreign):
        response = auth_client.get(ACTIVITY_URL, query_string={"before": cursor})
        assert_error(response, 400, "VALIDATION_ERROR", "before")


def test_unknown_query_parameter_is_refused(auth_client, assert_error):
    response = auth_client.get(ACTIVITY_URL, query_string={"after": "x"})
    assert_error(response, 400, "VALIDATION_ERROR", "after")


def test_activity_needs_a_signed_in_user(client, assert_error):
    assert_error(client.get(ACTIVITY_URL), 401, "UNAUTHORIZED")


# --- retention ----------------------------------------------------------------------------------


def _events_aged(user, days_old: list[int], now: datetime) -> None:
    """Store events of `user` that were recorded `days_old` days before `now`."""
    for index, days in enumerate(days_old):
        db.session.add(
            ActivityEvent(
                public_id=f"evt_aged{index}",
                user_id=user.id,
                type="logout",
                created_at=now - timedelta(days=days),
                details={},
            )
        )
    db.session.commit()


def test_prune_deletes_events_older_than_a_year_in_batches(runner, user, frozen_clock):
    _events_aged(user, [400, 366, 366, 365, 10, 0], frozen_clock)
    result = runner.invoke(args=["prune-activity", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "deleted 3 activity event(s) older than 365 days" in result.output
    ages = sorted(
        (frozen_clock - e.created_at).days for e in db.session.scalars(sa.select(ActivityEvent))
    )
    assert ages == [0, 10, 365]


def test_prune_takes_the_retention_from_configuration(app_factory, frozen_clock):
    app = app_factory(ACTIVITY_RETENTION_DAYS=30)
    with app.app_context():
        user = UserFactory()
        _events_aged(user, [31, 29], frozen_clock)
        result = app.test_cli_runner().invoke(args=["prune-activity"])
        assert "deleted 1 activity event(s) older than 30 days" in result.output


def test_prune_refuses_a_zero_day_retention(runner):
    result = runner.invoke(args=["prune-activity", "--days", "0"])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_totp_login_records_no_backup_code_use(app, user, two_factor):
    code = pyotp.TOTP(two_factor["secret"]).now()
    client = signed_in(app, user.email, twoFactorCode=code)
    assert "backup_code_used" not in event_types(client)
