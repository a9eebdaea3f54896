"""Trials over HTTP on the local gateway: start, the notice, the end with and without a card,
and every action during a trial. The clock is pinned and moved as cron would see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import ActivityEvent, OutboxMessage
from smartcv_account.payments import get_gateway
from smartcv_account.payments.local.models import LocalInvoice
from smartcv_account.services import renewals

from .billing_helpers import (
    SUBSCRIPTION_URL,
    authenticate,
    change,
    deliver,
    paid_invoices,
    subscribe,
)

START = datetime(2025, 1, 1, tzinfo=UTC)
TRIAL_END = START + timedelta(days=14)
PREVIEW_URL = SUBSCRIPTION_URL + "/preview"


def run_at(moment: datetime) -> None:
    """Move the pinned clock and run what fell due, as cron does."""
    clock.freeze(moment)
    renewals.run_due_work()


def start_trial(client, payment_method: str | None = "pm_card_visa", **extra):
    """POST a trial create (a card only when given)."""
    body = {"planId": "plan_premium_monthly", "trial": True, **extra}
    if payment_method is not None:
        body["paymentMethodId"] = payment_method
    return client.post(SUBSCRIPTION_URL, json=body)


def view(client) -> dict:
    """GET the subscription."""
    response = client.get(SUBSCRIPTION_URL)
    assert response.status_code == 200, response.json
    return response.json["data"]


def mail(kind: str) -> list[OutboxMessage]:
    """The queued messages of one kind."""
    return list(db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == kind)))


def activity_types() -> list[str]:
    """Every recorded activity type, oldest first."""
    return list(db.session.scalars(sa.select(ActivityEvent.type).order_by(ActivityEvent.id)))


@pytest.fixture
def trialing(auth_client, plans, frozen_clock):
    """A signed-in user on a 14-day Premium Monthly trial with pm_card_visa."""
    response = start_trial(auth_client)
    assert response.status_code == 201, response.json
    return auth_client


def test_plans_list_their_trial_days(client, plans):
    days = {plan["id"]: plan["trialDays"] for plan in client.get("/api/plans").json["data"]}
    assert days == {"plan_free": 0, "plan_premium_monthly": 14, "plan_premium_yearly": 14}


def test_a_trial_starts_trialing_and_charges_nothing(auth_client, plans, frozen_clock):
    response = start_trial(auth_client, couponCode="WELCOME20")
    assert response.status_code == 201, response.json
    assert response.json["data"]["status"] == "TRIALING"
    assert response.json["data"]["requiresAction"] is False
    shown = view(auth_client)
    assert shown["status"] == "TRIALING"
    assert shown["trialEnd"] == shown["currentPeriodEnd"] == "2025-01-15T00:00:00Z"
    assert shown["currentPeriodStart"] == "2025-01-01T00:00:00Z"
    # The first paid invoice: 29.99 less WELCOME20's 6.00, at the trial's end.
    assert shown["nextBilling"] == {
        "date": "2025-01-15T00:00:00Z",
        "amount": 23.99,
        "currency": "USD",
    }
    assert shown["usage"]["resumesLimit"] == -1  # the plan's limits at once
    assert paid_invoices() == []
    assert "trial_started" in activity_types()


def test_a_trial_may_start_without_a_card(auth_client, plans, frozen_clock):
    response = start_trial(auth_client, payment_method=None)
    assert response.status_code == 201, response.json
    shown = view(auth_client)
    assert (shown["status"], shown["paymentMethod"]) == ("TRIALING", None)
    assert shown["nextBilling"]["amount"] == 29.99


def test_a_paid_create_still_needs_a_card(auth_client, plans, assert_error):
    response = auth_client.post(SUBSCRIPTION_URL, json={"planId": "plan_premium_monthly"})
    assert_error(response, 400, "VALIDATION_ERROR", "paymentMethodId")


def test_a_declined_card_starts_no_trial(auth_client, plans, frozen_clock, assert_error):
    response = start_trial(auth_client, payment_method="pm_card_chargeDeclined")
    body = assert_error(response, 402, "PAYMENT_FAILED")
    assert body["details"]["declineCode"] == "generic_decline"
    assert view(auth_client)["id"] is None
    # Nothing used up: a trial with a good card may still start.
    assert start_trial(auth_client).status_code == 201


def test_a_card_that_needs_authentication_starts_the_trial_with_its_setup(
    auth_client, plans, frozen_clock
):
    response = start_trial(auth_client, payment_method="pm_card_authenticationRequired")
    assert response.status_code == 201, response.json
    data = response.json["data"]
    assert (data["status"], data["requiresAction"]) == ("TRIALING", True)
    assert data["clientSecret"].startswith("seti_")
    assert data["nextAction"] == {"type": "use_stripe_sdk"}


def test_one_trial_per_user_ever(trialing, assert_error):
    # A live subscription is SUBSCRIPTION_ALREADY_EXISTS first.
    assert_error(start_trial(trialing), 409, "SUBSCRIPTION_ALREADY_EXISTS")
    assert change(trialing, "cancel").status_code == 200
    run_at(TRIAL_END)
    assert view(trialing)["id"] is None
    assert_error(start_trial(trialing), 409, "TRIAL_NOT_AVAILABLE", "trial")
    # A paid subscription is still open to them.
    assert subscribe(trialing).status_code == 201


def test_a_user_who_paid_before_gets_no_trial(auth_client, plans, frozen_clock, assert_error):
    assert subscribe(auth_client).status_code == 201
    assert change(auth_client, "cancel").status_code == 200
    run_at(START + timedelta(days=32))
    assert_error(start_trial(auth_client), 409, "TRIAL_NOT_AVAILABLE", "trial")


def test_trial_on_plans_without_one(auth_client, plans, frozen_clock, assert_error):
    body = {"planId": "plan_free", "trial": True}
    assert_error(auth_client.post(SUBSCRIPTION_URL, json=body), 404, "PLAN_NOT_FOUND")
    body = {"planId": "plan_enterprise", "trial": True}
    assert_error(auth_client.post(SUBSCRIPTION_URL, json=body), 404, "PLAN_NOT_FOUND")


def test_the_notice_comes_three_days_before_whatever_the_preferences(trialing, user):
    user.email_notifications = False
    db.session.commit()
    run_at(START + timedelta(days=10, hours=23))
    assert mail("notice_trial_ending") == []
    run_at(START + timedelta(days=11))
    [notice] = mail("notice_trial_ending")
    assert "29.99 USD" in notice.text_body and "2025-01-15" in notice.text_body
    run_at(START + timedelta(days=12))
    assert len(mail("notice_trial_ending")) == 1  # once


def test_the_notice_asks_for_a_card_when_there_is_none(auth_client, plans, frozen_clock):
    assert start_trial(auth_client, payment_method=None).status_code == 201
    run_at(START + timedelta(days=11))
    [notice] = mail("notice_trial_ending")
    assert "no card on file" in notice.text_body


def test_at_trial_end_the_first_invoice_is_charged(auth_client, plans, frozen_clock):
    assert start_trial(auth_client, couponCode="WELCOME20").status_code == 201
    run_at(TRIAL_END)
    shown = view(auth_client)
    assert shown["status"] == "ACTIVE"
    assert shown["currentPeriodStart"] == "2025-01-15T00:00:00Z"
    assert shown["currentPeriodEnd"] == "2025-02-15T00:00:00Z"
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2399]
    assert shown["nextBilling"]["amount"] == 29.99  # the coupon was for the first invoice
    run_at(datetime(2025, 2, 15, tzinfo=UTC))
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2399, 2999]
    ended = db.session.scalar(sa.select(ActivityEvent).where(ActivityEvent.type == "trial_ended"))
    assert ended.details["outcome"] == "paid"


def test_a_declined_first_charge_is_past_due_with_retries(auth_client, plans, frozen_clock):
    assert start_trial(auth_client, payment_method="pm_card_chargeCustomerFail").status_code == 201
    run_at(TRIAL_END)
    assert view(auth_client)["status"] == "PAST_DUE"
    invoice = db.session.scalar(
        sa.select(LocalInvoice).where(LocalInvoice.billing_reason == "subscription_cycle")
    )
    assert (invoice.status, invoice.next_payment_attempt) == ("open", TRIAL_END + timedelta(days=1))
    assert (
        change(auth_client, "update_payment_method", paymentMethodId="pm_card_visa").status_code
        == 200
    )
    assert view(auth_client)["status"] == "ACTIVE"


def test_no_card_at_trial_end_cancels_back_to_free_with_a_notice(auth_client, plans, frozen_clock):
    assert start_trial(auth_client, payment_method=None).status_code == 201
    run_at(TRIAL_END)
    shown = view(auth_client)
    assert (shown["id"], shown["type"]) == (None, "FREE")
    assert auth_client.get("/api/account").json["data"]["subscriptionStatus"] == "CANCELED"
    assert len(mail("notice_trial_canceled")) == 1
    assert paid_invoices() == []


def test_a_card_added_during_the_trial_is_charged_at_its_end(auth_client, plans, frozen_clock):
    assert start_trial(auth_client, payment_method=None).status_code == 201
    response = change(auth_client, "update_payment_method", paymentMethodId="pm_card_mastercard")
    assert response.status_code == 200, response.json
    assert response.json["data"]["status"] == "TRIALING"
    assert paid_invoices() == []
    assert view(auth_client)["paymentMethod"]["last4"] == "4444"
    run_at(TRIAL_END)
    assert view(auth_client)["status"] == "ACTIVE"
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999]


def test_cancel_during_the_trial_ends_it_at_trial_end_without_charge(trialing):
    response = change(trialing, "cancel")
    assert response.status_code == 200, response.json
    assert response.json["data"]["effectiveDate"] == "2025-01-15T00:00:00Z"
    assert change(trialing, "reactivate").status_code == 200
    assert change(trialing, "cancel").status_code == 200
    run_at(TRIAL_END)
    assert view(trialing)["id"] is None
    assert paid_invoices() == []
    assert mail("notice_trial_ending") == []  # nothing to announce


def test_upgrade_and_downgrade_during_the_trial_keep_it_and_charge_nothing(trialing):
    preview = trialing.get(PREVIEW_URL + "?action=upgrade&planId=plan_premium_yearly")
    assert preview.status_code == 200, preview.json
    response = change(trialing, "upgrade", planId="plan_premium_yearly")
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert (data["amountDueNow"], data["prorationAmount"], data["status"]) == (0, 0, "TRIALING")
    assert preview.json["data"]["amountDueNow"] == 0
    assert preview.json["data"]["nextBilling"] == {"date": "2025-01-15T00:00:00Z", "amount": 299.99}
    shown = view(trialing)
    assert (shown["plan"]["id"], shown["trialEnd"]) == (
        "plan_premium_yearly",
        "2025-01-15T00:00:00Z",
    )
    assert shown["nextBilling"]["amount"] == 299.99
    assert change(trialing, "downgrade", planId="plan_premium_monthly").status_code == 200
    assert paid_invoices() == []
    run_at(TRIAL_END)
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999]


def test_end_trial_charges_the_first_invoice_now(auth_client, plans, frozen_clock):
    assert start_trial(auth_client, couponCode="WELCOME20").status_code == 201
    clock.freeze(START + timedelta(days=3))
    response = change(auth_client, "end_trial")
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert (data["status"], data["amountDueNow"], data["requiresAction"]) == (
        "ACTIVE",
        23.99,
        False,
    )
    shown = view(auth_client)
    assert shown["currentPeriodStart"] == "2025-01-04T00:00:00Z"
    assert shown["currentPeriodEnd"] == "2025-02-04T00:00:00Z"
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2399]


def test_end_trial_declined_changes_nothing(auth_client, plans, frozen_clock, assert_error):
    assert start_trial(auth_client, payment_method="pm_card_chargeCustomerFail").status_code == 201
    before = view(auth_client)
    assert_error(change(auth_client, "end_trial"), 402, "PAYMENT_FAILED")
    assert view(auth_client) == before


def test_end_trial_that_needs_authentication_is_pending_until_paid(
    auth_client, plans, frozen_clock
):
    assert (
        start_trial(auth_client, payment_method="pm_card_authenticationRequired").status_code == 201
    )
    response = change(auth_client, "end_trial")
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert (data["status"], data["requiresAction"]) == ("TRIALING", True)
    assert data["clientSecret"].startswith("pi_")
    shown = view(auth_client)
    assert shown["pendingChange"]["planId"] == "plan_premium_monthly"
    invoice = db.session.scalar(
        sa.select(LocalInvoice).where(LocalInvoice.billing_reason == "subscription_update")
    )
    body = authenticate(get_gateway(), invoice.payment_intent_id)

    signature = get_gateway().signed_event(body)
    assert deliver(auth_client, body, signature).status_code == 200
    shown = view(auth_client)
    assert (shown["status"], shown["pendingChange"]) == ("ACTIVE", None)


def test_end_trial_outside_a_trial_is_refused(premium_client, assert_error):
    assert_error(change(premium_client, "end_trial"), 409, "INVALID_PLAN_CHANGE")


def test_the_create_preview_gives_the_numbers_the_create_gives(auth_client, plans, frozen_clock):
    query = "?action=create&planId=plan_premium_monthly&trial=true&couponCode=WELCOME20"
    preview = auth_client.get(PREVIEW_URL + query)
    assert preview.status_code == 200, preview.json
    assert preview.json["data"]["amountDueNow"] == 0
    assert preview.json["data"]["nextBilling"] == {"date": "2025-01-15T00:00:00Z", "amount": 23.99}
    paid = auth_client.get(
        PREVIEW_URL + "?action=create&planId=plan_premium_yearly&couponCode=WELCOME20"
    )
    assert paid.json["data"]["amountDueNow"] == 239.99
    assert paid.json["data"]["nextBilling"] == {"date": "2026-01-01T00:00:00Z", "amount": 299.99}
    assert start_trial(auth_client, couponCode="WELCOME20").status_code == 201
    assert (
        view(auth_client)["nextBilling"]["amount"] == preview.json["data"]["nextBilling"]["amount"]
    )


def test_the_create_preview_refuses_what_the_create_refuses(trialing, assert_error):
    query = "?action=create&planId=plan_premium_monthly&trial=true"
    assert_error(trialing.get(PREVIEW_URL + query), 409, "SUBSCRIPTION_ALREADY_EXISTS")
    query = "?action=create&planId=plan_enterprise"
    assert_error(trialing.get(PREVIEW_URL + query), 404, "PLAN_NOT_FOUND")
    query = "?action=upgrade&planId=plan_premium_yearly&trial=true"
    assert_error(trialing.get(PREVIEW_URL + query), 400, "VALIDATION_ERROR", "trial")


def test_the_trial_will_end_event_sends_the_notice_once(trialing, client):

    gateway = get_gateway()
    provider_id = db.session.scalar(sa.text("SELECT provider_subscription_id FROM subscriptions"))
    clock.freeze(START + timedelta(days=11, hours=1))
    obj = {"id": provider_id, "object": "subscription"}
    for _ in range(2):
        body = gateway.event_body("customer.subscription.trial_will_end", obj)
        assert deliver(client, body, gateway.signed_event(body)).status_code == 200
    assert len(mail("notice_trial_ending")) == 1
    run_at(START + timedelta(days=12))
    assert len(mail("notice_trial_ending")) == 1
