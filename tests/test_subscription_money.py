"""Where money moves: transactions, idempotency, failure paths, discounts, previews, invoices.

The local gateway, through the HTTP API, with the clock pinned.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import Plan, Subscription, User
from smartcv_account.payments import get_gateway
from smartcv_account.payments.base import IdempotencyKeyReused, UnknownPaymentMethod
from smartcv_account.payments.local.models import LocalCustomer, LocalInvoice, LocalSubscription

from .billing_helpers import (
    SUBSCRIPTION_URL,
    at,
    authenticate,
    change,
    deliver,
    paid_invoices,
    subscribe,
)
from .helpers import subscribed

PAYMENTS = Path(__file__).resolve().parent.parent / "smartcv_account" / "payments"
PREVIEW_URL = SUBSCRIPTION_URL + "/preview"


def provider_subscription() -> LocalSubscription:
    """The one local provider subscription of the test."""
    db.session.expire_all()
    return db.session.scalars(
        sa.select(LocalSubscription).order_by(LocalSubscription.created_at.desc())
    ).first()


def view(client) -> dict:
    """GET the subscription's data."""
    return client.get(SUBSCRIPTION_URL).json["data"]


def finish_authentication(client, secret: str, succeed: bool = True):
    """The customer completes 3-D Secure; the provider's signed event is delivered."""
    gateway = get_gateway()
    body = authenticate(gateway, secret.split("_secret_")[0], succeed=succeed)
    return deliver(client, body, gateway.signed_event(body))


@pytest.fixture
def three_d_secure_active(auth_client, plans, frozen_clock):
    """An ACTIVE monthly subscription whose card needs 3-D Secure on every payment."""
    created = subscribe(auth_client, payment_method="pm_card_authenticationRequired").json["data"]
    assert finish_authentication(auth_client, created["clientSecret"]).status_code == 200
    assert view(auth_client)["status"] == "ACTIVE"
    return auth_client


# --- the service owns the transaction -----------------------------------------------------------


def test_no_payment_module_commits_or_rolls_back_the_session():
    for path in PAYMENTS.glob("*.py"):
        text = path.read_text()
        assert "db.session.commit" not in text, path.name
        assert "rollback" not in text, path.name


def test_declined_first_attempt_keeps_the_customer_and_the_retry_reuses_it(
    auth_client, plans, user
):
    declined = subscribe(auth_client, payment_method="pm_card_chargeCustomerFail")
    assert (declined.status_code, declined.json["code"]) == (402, "PAYMENT_FAILED")
    customer = db.session.get(User, user.id).billing_customer_id
    assert customer is not None
    assert subscribe(auth_client).status_code == 201
    assert db.session.scalars(sa.select(LocalCustomer.id)).all() == [customer]
    # The declined attempt's invoice is void: nothing is left to pay for it.
    statuses = db.session.scalars(
        sa.select(LocalInvoice.status).order_by(LocalInvoice.created_at, LocalInvoice.id)
    ).all()
    assert sorted(statuses) == ["paid", "void"]


# --- idempotency keys at the local provider -----------------------------------------------------


def test_local_provider_answers_a_repeated_key_once_and_refuses_it_with_other_parameters(
    auth_client, plans, frozen_clock
):
    subscribed(auth_client)
    gateway = get_gateway()
    provider_id = provider_subscription().id
    yearly = db.session.get(Plan, "plan_premium_yearly")
    first = gateway.change_plan(provider_id, yearly, "create_prorations", "key-1")
    again = gateway.change_plan(provider_id, yearly, "create_prorations", "key-1")
    db.session.commit()
    assert again == first
    assert sorted(invoice.amount_paid for invoice in paid_invoices()) == [2999, 27000]
    with pytest.raises(IdempotencyKeyReused):
        gateway.change_plan(provider_id, yearly, "always_invoice", "key-1")


def test_repeated_identical_upgrade_is_refused_after_the_first(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    assert change(auth_client, "upgrade", planId="plan_premium_yearly").status_code == 200
    again = change(auth_client, "upgrade", planId="plan_premium_yearly")
    assert (again.status_code, again.json["code"]) == (409, "INVALID_PLAN_CHANGE")
    assert sorted(invoice.amount_paid for invoice in paid_invoices()) == [2999, 27000]
    version = db.session.scalar(sa.select(Subscription.version))
    assert version == 1  # one committed change; the refused one rolled its bump back


# --- a plan change whose payment fails or needs authentication ----------------------------------


def test_declined_plan_change_is_402_and_changes_nothing(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    change(auth_client, "cancel")
    response = change(auth_client, "upgrade", planId="plan_premium_yearly")
    assert (response.status_code, response.json["code"]) == (402, "PAYMENT_FAILED")
    assert response.json["details"]["declineCode"] == "card_declined"
    shown = view(auth_client)
    assert (shown["plan"]["id"], shown["cancelAtPeriodEnd"], shown["pendingChange"]) == (
        "plan_premium_monthly",
        True,
        None,
    )
    assert provider_subscription().plan_id == "plan_premium_monthly"
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999]


def test_upgrade_needing_authentication_is_pending_until_paid(three_d_secure_active):
    client = three_d_secure_active
    response = change(client, "upgrade", planId="plan_premium_yearly")
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert (data["requiresAction"], data["nextAction"]) == (True, {"type": "use_stripe_sdk"})
    assert "_secret_" in data["clientSecret"]
    shown = view(client)
    assert (shown["plan"]["id"], shown["status"]) == ("plan_premium_monthly", "ACTIVE")
    assert shown["pendingChange"] == {
        "planId": "plan_premium_yearly",
        "expiresAt": "2025-01-01T23:00:00Z",
    }
    assert finish_authentication(client, data["clientSecret"]).status_code == 200
    shown = view(client)
    assert (shown["plan"]["id"], shown["pendingChange"]) == ("plan_premium_yearly", None)
    assert shown["currentPeriodEnd"] == "2026-01-01T00:00:00Z"
    assert sorted(invoice.amount_paid for invoice in paid_invoices()) == [2999, 27000]


def test_pending_change_lapses_after_23_hours_and_its_invoice_is_void(three_d_secure_active):
    client = three_d_secure_active
    change(client, "upgrade", planId="plan_premium_yearly")
    at(2025, 1, 2)
    get_gateway().advance(provider_subscription().id)
    db.session.commit()
    assert provider_subscription().pending_plan_id is None
    latest = db.session.get(LocalInvoice, provider_subscription().latest_invoice_id)
    assert latest.status == "void"


# --- paying the open invoice with a new card ---------------------------------------------------


def test_new_card_that_also_fails_is_402_and_kept(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    at(2025, 2, 1)
    assert view(auth_client)["status"] == "PAST_DUE"
    response = change(
        auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail"
    )
    assert (response.status_code, response.json["code"]) == (402, "PAYMENT_FAILED")
    shown = view(auth_client)
    assert (shown["status"], shown["paymentMethod"]["last4"]) == ("PAST_DUE", "0341")
    assert provider_subscription().default_payment_method_id == shown_payment_method_id()
    paid = change(auth_client, "update_payment_method", paymentMethodId="pm_card_visa")
    assert paid.status_code == 200
    assert view(auth_client)["status"] == "ACTIVE"
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999, 2999]


def shown_payment_method_id() -> str:
    """Our row's card id."""
    db.session.expire_all()
    return db.session.scalar(sa.select(Subscription.payment_method_id))


def test_failed_authentication_on_create_is_paid_by_a_new_card(auth_client, plans, frozen_clock):
    created = subscribe(auth_client, payment_method="pm_card_authenticationRequired").json["data"]
    finish_authentication(auth_client, created["clientSecret"], succeed=False)
    assert view(auth_client)["status"] == "INCOMPLETE"
    response = change(auth_client, "update_payment_method", paymentMethodId="pm_card_visa")
    assert (response.status_code, response.json["data"]["status"]) == (200, "ACTIVE")
    assert view(auth_client)["status"] == "ACTIVE"
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999]


# --- canceling an incomplete subscription -------------------------------------------------------


def test_canceled_incomplete_subscription_voids_its_invoice(auth_client, plans, frozen_clock):
    created = subscribe(auth_client, payment_method="pm_card_authenticationRequired").json["data"]
    assert change(auth_client, "cancel").json["data"]["status"] == "CANCELED"
    assert [invoice.status for invoice in db.session.scalars(sa.select(LocalInvoice))] == ["void"]
    # Completing the old challenge later charges nothing.
    with pytest.raises(UnknownPaymentMethod):
        authenticate(get_gateway(), created["clientSecret"].split("_secret_")[0])
    assert paid_invoices() == []


# --- Stripe's `unpaid` ----------------------------------------------------------------------------


def test_unpaid_at_the_provider_keeps_the_slot_and_shows_past_due(premium_client):
    local = provider_subscription()
    local.status = "unpaid"
    db.session.commit()
    gateway = get_gateway()
    body = gateway.event_body(
        "customer.subscription.updated", {"object": "subscription", "id": local.id}
    )
    assert deliver(premium_client, body, gateway.signed_event(body)).status_code == 200
    assert view(premium_client)["status"] == "PAST_DUE"
    assert subscribe(premium_client).json["code"] == "SUBSCRIPTION_ALREADY_EXISTS"


# --- discounts -------------------------------------------------------------------------------


def test_credit_for_unused_time_is_a_share_of_what_was_paid(auth_client, plans, frozen_clock):
    created = subscribe(auth_client, "plan_premium_yearly", couponCode="WELCOME20")
    assert created.status_code == 201
    response = change(auth_client, "downgrade", planId="plan_premium_monthly")
    # paid 239.99 for the year, none of it used: credit 239.99; new month 29.99
    assert response.json["data"]["prorationAmount"] == -210
    assert response.json["data"]["amountDueNow"] == 0


def test_welcome20_is_for_the_first_subscription_only(auth_client, plans, frozen_clock):
    assert subscribe(auth_client, couponCode="WELCOME20").status_code == 201
    change(auth_client, "cancel")
    at(2025, 2, 1)
    again = subscribe(auth_client, couponCode="welcome20")
    assert (again.status_code, again.json["code"]) == (400, "INVALID_COUPON")
    assert again.json["details"] == {"field": "couponCode", "reason": "already_redeemed"}
    assert subscribe(auth_client).status_code == 201


# --- next billing --------------------------------------------------------------------------------


def test_next_billing_is_what_the_next_invoice_charges_after_credit(
    auth_client, plans, frozen_clock
):
    subscribe(auth_client, plan_id="plan_premium_yearly")
    at(2025, 7, 2)
    change(auth_client, "downgrade", planId="plan_premium_monthly")  # credit 120.42
    assert view(auth_client)["nextBilling"]["amount"] == 0
    at(2025, 8, 2)  # one renewal used 29.99 of the credit, 90.43 is left
    assert view(auth_client)["nextBilling"]["amount"] == 0
    at(2025, 11, 2)  # 0.46 of credit is left for the next month
    assert view(auth_client)["nextBilling"]["amount"] == 29.53


def test_next_billing_after_a_first_invoice_discount_is_the_full_price(
    auth_client, plans, frozen_clock
):
    subscribe(auth_client, couponCode="WELCOME20")
    assert view(auth_client)["nextBilling"]["amount"] == 29.99


# --- plans, invoices and previews ---------------------------------------------------------------


def test_plans_are_listed_without_signing_in_cheapest_first(client, plans):
    response = client.get("/api/plans")
    assert response.status_code == 200
    listed = response.json["data"]
    assert [plan["id"] for plan in listed] == [
        "plan_free",
        "plan_premium_monthly",
        "plan_premium_yearly",
    ]
    monthly = listed[1]
    assert set(monthly) == {
        "id",
        "name",
        "type",
        "price",
        "currency",
        "interval",
        "features",
        "limits",
        "trialDays",
    }
    assert (monthly["price"], monthly["type"], monthly["limits"]["apiRequestsLimit"]) == (
        29.99,
        "PREMIUM",
        1000,
    )


def test_invoices_are_listed_newest_first_with_stripes_amounts(auth_client, plans, frozen_clock):
    assert auth_client.get("/api/account/invoices").json["data"] == []
    subscribe(auth_client, plan_id="plan_premium_yearly", couponCode="WELCOME20")
    at(2025, 7, 2)
    change(auth_client, "downgrade", planId="plan_premium_monthly")
    invoices = auth_client.get("/api/account/invoices").json["data"]
    # credit 239.99 x 183/365 = 120.32 (of what was paid, not of the list price); month 29.99
    assert [invoice["total"] for invoice in invoices] == [-90.33, 239.99]
    first = invoices[1]
    assert {key: first[key] for key in ("status", "amountDue", "amountPaid", "discount")} == {
        "status": "paid",
        "amountDue": 239.99,
        "amountPaid": 239.99,
        "discount": 60,
    }
    assert (first["amountRemaining"], first["planId"], first["hostedInvoiceUrl"]) == (
        0,
        "plan_premium_yearly",
        None,
    )
    assert (first["createdAt"], first["currency"]) == ("2025-01-01T00:00:00Z", "USD")


def test_invoices_of_one_second_keep_their_order_and_an_upgrade_bills_its_new_period(
    auth_client, plans, frozen_clock
):
    subscribed(auth_client)
    change(auth_client, "upgrade", planId="plan_premium_yearly")  # the same second
    upgrade, first = auth_client.get("/api/account/invoices").json["data"]
    assert (first["planId"], upgrade["planId"]) == ("plan_premium_monthly", "plan_premium_yearly")
    assert first["number"].endswith("-0001") and upgrade["number"].endswith("-0002")
    assert (upgrade["periodStart"], upgrade["periodEnd"]) == (
        "2025-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z",
    )


@pytest.mark.parametrize(
    ("start", "action", "target", "behaviour"),
    [
        ("plan_premium_monthly", "upgrade", "plan_premium_yearly", "create_prorations"),
        ("plan_premium_monthly", "upgrade", "plan_premium_yearly", "none"),
        ("plan_premium_yearly", "downgrade", "plan_premium_monthly", "always_invoice"),
    ],
)
def test_preview_and_change_agree_to_the_cent(
    auth_client, plans, frozen_clock, start, action, target, behaviour
):
    subscribe(auth_client, plan_id=start)
    at(2025, 3, 17, 8, 41, 5)
    query = {"action": action, "planId": target, "prorationBehavior": behaviour}
    preview = auth_client.get(PREVIEW_URL, query_string=query)
    assert preview.status_code == 200, preview.json
    changed = change(auth_client, action, planId=target, prorationBehavior=behaviour).json["data"]
    previewed = preview.json["data"]
    assert previewed["prorationAmount"] == changed["prorationAmount"]
    assert previewed["amountDueNow"] == changed["amountDueNow"]
    assert previewed["nextBilling"] == {
        "date": view(auth_client)["nextBilling"]["date"],
        "amount": view(auth_client)["nextBilling"]["amount"],
    }
    assert previewed["currency"] == "USD"


def test_preview_refuses_what_the_change_refuses(auth_client, plans, assert_error):
    assert_error(
        auth_client.get(PREVIEW_URL, query_string={"action": "upgrade", "planId": "x"}),
        404,
        "SUBSCRIPTION_NOT_FOUND",
    )
    subscribe(auth_client)
    assert_error(
        auth_client.get(PREVIEW_URL, query_string={"action": "cancel", "planId": "x"}),
        400,
        "VALIDATION_ERROR",
    )
    assert_error(
        auth_client.get(
            PREVIEW_URL, query_string={"action": "downgrade", "planId": "plan_premium_yearly"}
        ),
        409,
        "INVALID_PLAN_CHANGE",
    )
