"""DELETE /api/account: confirm, cancel the paid subscription at once, erase, and let go."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pyotp
import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import (
    ActivityEvent,
    AuthSession,
    BackupCode,
    Subscription,
    User,
)
from smartcv_account.payments import get_gateway
from smartcv_account.payments.local.models import LocalCustomer, LocalInvoice, LocalSubscription

from .billing_helpers import paid_invoices, subscribe
from .factories import PASSWORD, UserFactory
from .helpers import signed_in, subscribed
from .lifecycle_helpers import ACCOUNT_URL

INTERNAL = {"Authorization": "Bearer test-internal-token"}


def delete(client, **body):
    """DELETE /api/account with the password (unless given) and the other fields."""
    return client.delete(ACCOUNT_URL, json={"currentPassword": PASSWORD, **body})


def reloaded(user: User) -> User:
    """The user's row as the database now holds it."""
    db.session.expire_all()
    return db.session.get(User, user.id)


# --- what the person sees afterwards ------------------------------------------------------------


def test_deletion_answers_200_and_the_old_cookie_is_worthless(auth_client, assert_error):
    response = delete(auth_client)
    assert (response.status_code, response.json) == (200, {"success": True})
    assert_error(auth_client.get(ACCOUNT_URL), 401, "UNAUTHORIZED")


def test_every_other_session_ends_too(app, user):
    others = [signed_in(app, user.email) for _ in range(2)]
    delete(signed_in(app, user.email))
    assert [c.get(ACCOUNT_URL).status_code for c in others] == [401, 401]


def test_login_afterwards_is_invalid_credentials(app, user, auth_client, assert_error):
    delete(auth_client)
    response = app.test_client().post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert_error(response, 401, "INVALID_CREDENTIALS")


def test_the_email_can_register_again(auth_client, client, user):
    delete(auth_client)
    response = client.post(
        "/api/auth/register", json={"email": user.email, "password": PASSWORD, "name": "Again"}
    )
    assert response.status_code == 201, response.json
    assert response.json["data"]["id"] != user.public_id


def test_internal_usage_api_no_longer_knows_the_old_id(auth_client, client, user, assert_error):
    old_id = user.public_id
    delete(auth_client)
    response = client.post(
        f"/api/internal/users/{old_id}/usage",
        json={"metric": "resumes", "delta": 1},
        headers=INTERNAL,
    )
    assert_error(response, 404, "USER_NOT_FOUND")


# --- what is erased and what is kept ------------------------------------------------------------


def test_personal_data_is_erased(app, user, two_factor):
    client = signed_in(app, user.email, twoFactorCode=two_factor["backupCodes"][0])
    client.put(
        ACCOUNT_URL,
        json={"avatar": "https://cdn.example.com/me.png", "preferences": {"theme": "dark"}},
    )
    email, public_id = user.email, user.public_id
    assert delete(client, twoFactorCode=two_factor["backupCodes"][1]).status_code == 200

    row = reloaded(user)
    assert row.deleted_at is not None
    assert (row.email, row.public_id) != (email, public_id) and "@" not in row.email
    assert (row.name, row.avatar, row.theme, row.email_verified_at) == ("", None, "light", None)
    assert (row.two_factor_enabled, row.totp_secret_encrypted, row.last_login_at) == (
        False,
        None,
        None,
    )
    for table in (AuthSession, ActivityEvent, BackupCode):
        count = sa.select(sa.func.count()).select_from(table).where(table.user_id == user.id)
        assert db.session.scalar(count) == 0, table


def test_other_users_keep_their_data(app, user, auth_client):
    other = UserFactory()
    other_client = signed_in(app, other.email)
    delete(auth_client)
    assert other_client.get(ACCOUNT_URL).json["data"]["email"] == other.email


def test_paid_subscription_is_canceled_at_once_and_invoices_are_kept(
    auth_client, user, plans, frozen_clock
):
    subscribed(auth_client)
    assert delete(auth_client).status_code == 200

    db.session.expire_all()
    subscription = db.session.scalar(sa.select(Subscription))
    provider = db.session.get(LocalSubscription, subscription.provider_subscription_id)
    assert (subscription.status, provider.status) == ("CANCELED", "canceled")
    assert subscription.canceled_at == frozen_clock
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999]
    # No renewal a month later: nothing is charged again.
    clock.freeze(datetime(2025, 3, 1, tzinfo=UTC))
    get_gateway().advance(provider.id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LocalInvoice)) == 1


def test_provider_customer_keeps_no_email_or_old_id(premium_client, user):
    assert delete(premium_client).status_code == 200
    db.session.expire_all()
    customer = db.session.scalar(sa.select(LocalCustomer))
    assert customer.email == "" and customer.user_public_id == reloaded(user).public_id
    assert db.session.scalar(sa.select(LocalInvoice.customer_id)) == customer.id


def test_incomplete_subscription_is_canceled_too(auth_client, plans):
    subscribe(auth_client, payment_method="pm_card_authenticationRequired")
    assert delete(auth_client).status_code == 200
    db.session.expire_all()
    assert db.session.scalar(sa.select(Subscription.status)) == "CANCELED"


def test_operator_assigned_plan_ends_without_the_provider(auth_client, user, runner, plans):
    assert runner.invoke(args=["assign-plan", user.email, "plan_enterprise"]).exit_code == 0
    assert delete(auth_client).status_code == 200
    db.session.expire_all()
    assert db.session.scalar(sa.select(Subscription.status)) == "CANCELED"


# --- confirming ---------------------------------------------------------------------------------


def test_wrong_password_changes_nothing(auth_client, user, assert_error):
    response = delete(auth_client, currentPassword="not my password")
    assert_error(response, 400, "INVALID_PASSWORD", "currentPassword")
    assert auth_client.get(ACCOUNT_URL).json["data"]["email"] == user.email
    assert reloaded(user).deleted_at is None


@pytest.mark.parametrize(
    "body",
    [{}, {"currentPassword": 42}, {"currentPassword": PASSWORD, "reason": "bye"}],
    ids=["missing", "not a string", "unknown field"],
)
def test_malformed_bodies_are_validation_errors(auth_client, user, body, assert_error):
    response = auth_client.delete(ACCOUNT_URL, json=body)
    assert_error(response, 400, "VALIDATION_ERROR")
    assert reloaded(user).deleted_at is None


def test_a_body_that_is_not_json_is_refused(auth_client, assert_error):
    response = auth_client.delete(ACCOUNT_URL, data="currentPassword=x", content_type="text/plain")
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_second_factor_is_required_when_on(app, user, two_factor, assert_error):
    client = signed_in(app, user.email, twoFactorCode=two_factor["backupCodes"][0])
    assert_error(delete(client), 401, "TWO_FACTOR_REQUIRED", "twoFactorCode")
    assert_error(delete(client, twoFactorCode="123"), 401, "INVALID_TWO_FACTOR_CODE")
    assert client.get(ACCOUNT_URL).status_code == 200
    assert reloaded(user).deleted_at is None


def test_a_current_totp_code_confirms(app, user, two_factor):
    client = signed_in(app, user.email, twoFactorCode=two_factor["backupCodes"][0])
    code = pyotp.TOTP(two_factor["secret"]).now()
    assert delete(client, twoFactorCode=code).status_code == 200


def test_deletion_needs_a_signed_in_user(client, assert_error):
    assert_error(delete(client), 401, "UNAUTHORIZED")


# --- a webhook for the same subscription at the same moment -------------------------------------


def concurrently(app, **calls) -> dict[str, int]:
    """Run each call (a request) in its own thread, released together; return their statuses."""
    answers: dict[str, int] = {}
    barrier = threading.Barrier(len(calls))

    def run(name, call):
        with app.app_context():
            barrier.wait()
            answers[name] = call().status_code
            db.session.remove()

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.parametrize("attempt", range(4))
def test_deletion_racing_a_webhook_ends_canceled_on_both_sides(app, user, plans, attempt):
    gateway = get_gateway()
    client = signed_in(app, user.email)
    subscribed(client)
    provider_id = db.session.scalar(sa.select(Subscription.provider_subscription_id))
    body = gateway.event_body(
        "customer.subscription.updated", {"object": "subscription", "id": provider_id}
    )

    answers = concurrently(
        app,
        delete=lambda: delete(client),
        webhook=lambda: app.test_client().post(
            "/api/webhooks/stripe",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": gateway.signed_event(body)},
        ),
    )

    assert answers == {"delete": 200, "webhook": 200}
    db.session.expire_all()
    assert db.session.scalar(sa.select(Subscription.status)) == "CANCELED"
    assert db.session.get(LocalSubscription, provider_id).status == "canceled"
    assert reloaded(user).deleted_at is not None
