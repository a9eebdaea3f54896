"""Operator commands for plans and subscriptions."""

from datetime import UTC, datetime

import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import Coupon, Plan

from .billing_helpers import SUBSCRIPTION_URL, change, paid_invoices, subscribe
from .helpers import subscribed


def test_seed_plans_writes_the_catalogue(runner):
    result = runner.invoke(args=["seed-plans"])
    assert result.exit_code == 0, result.output
    ids = db.session.scalars(sa.select(Plan.id).order_by(Plan.rank)).all()
    assert ids == ["plan_free", "plan_premium_monthly", "plan_premium_yearly", "plan_enterprise"]
    assert db.session.get(Coupon, "WELCOME20").percent_off == 20


def test_seed_plans_is_idempotent(runner):
    runner.invoke(args=["seed-plans"])
    db.session.get(Plan, "plan_premium_monthly").price_cents = 1
    db.session.commit()
    assert runner.invoke(args=["seed-plans"]).exit_code == 0
    db.session.expire_all()
    assert db.session.get(Plan, "plan_premium_monthly").price_cents == 2999
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Plan)) == 4


def test_assign_enterprise_gives_unlimited_limits(runner, auth_client, user, plans):
    result = runner.invoke(args=["assign-plan", user.email, "plan_enterprise"])
    assert result.exit_code == 0, result.output
    account = auth_client.get("/api/account").json["data"]
    assert (account["subscriptionType"], account["storageLimit"]) == ("ENTERPRISE", -1)
    view = auth_client.get(SUBSCRIPTION_URL).json["data"]
    assert (view["type"], view["nextBilling"], view["plan"]["price"]) == ("ENTERPRISE", None, None)


def test_assigned_plan_cannot_be_changed_by_the_user(runner, auth_client, user, plans):
    runner.invoke(args=["assign-plan", user.email, "plan_enterprise"])
    assert change(auth_client, "cancel").json["code"] == "INVALID_PLAN_CHANGE"
    assert subscribe(auth_client).json["code"] == "SUBSCRIPTION_ALREADY_EXISTS"


def test_assign_free_ends_an_assigned_plan(runner, auth_client, user, plans):
    runner.invoke(args=["assign-plan", user.email, "plan_enterprise"])
    assert runner.invoke(args=["assign-plan", user.email, "plan_free"]).exit_code == 0
    assert auth_client.get("/api/account").json["data"]["subscriptionType"] == "FREE"


def test_assign_plan_refuses_a_user_with_a_paid_subscription(runner, premium_client, user):
    result = runner.invoke(args=["assign-plan", user.email, "plan_enterprise"])
    assert result.exit_code != 0
    assert "paid subscription" in result.output


def test_assign_plan_refuses_unknown_user_and_plan(runner, user, plans):
    assert runner.invoke(args=["assign-plan", "nobody@example.com", "plan_enterprise"]).exit_code
    assert runner.invoke(args=["assign-plan", user.email, "plan_gold"]).exit_code


def test_advance_subscriptions_renews_what_is_due(runner, auth_client, plans, frozen_clock):
    subscribed(auth_client)
    clock.freeze(datetime(2025, 2, 1, tzinfo=UTC))
    result = runner.invoke(args=["advance-subscriptions"])
    assert "advanced 1 subscription" in result.output
    assert len(paid_invoices()) == 2
    assert "advanced 0 subscription" in runner.invoke(args=["advance-subscriptions"]).output


def test_advance_subscriptions_frees_a_slot_held_by_a_crashed_create(
    runner, auth_client, user, plans, frozen_clock
):
    from smartcv_account.models import Subscription

    db.session.add(
        Subscription(
            public_id="sub_crashed",
            user_id=user.id,
            plan_id="plan_premium_monthly",
            status="INCOMPLETE",
            cancel_at_period_end=False,
            created_at=frozen_clock,
            updated_at=frozen_clock,
        )
    )
    db.session.commit()
    assert subscribe(auth_client).status_code == 409
    clock.freeze(datetime(2025, 1, 1, 0, 11, tzinfo=UTC))
    runner.invoke(args=["advance-subscriptions"])
    assert subscribe(auth_client).status_code == 201
