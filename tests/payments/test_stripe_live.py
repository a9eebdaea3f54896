"""StripeGateway against Stripe test mode: opt-in, with STRIPE_TEST_SECRET_KEY set.

The same scenarios as the localstripe suite, plus what only Stripe does (coupons applied,
time-based prorations, plan swaps with `proration_behavior`), using Stripe's documented test
payment methods. Each test makes its own customer and cancels what it subscribed. Skipped when
the key is absent (CI without secrets, machines without internet); a live key is refused.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from smartcv_account.payments.base import PaymentDeclined, UnknownPaymentMethod
from smartcv_account.payments.stripe import StripeGateway

from .conftest import add_months, catalogue_coupons, catalogue_plans, plan

pytestmark = [pytest.mark.stripe_live, pytest.mark.slow]

KEY_VARIABLE = "STRIPE_TEST_SECRET_KEY"


@pytest.fixture(scope="module")
def live_gateway() -> Iterator[StripeGateway]:
    """A gateway on Stripe test mode with the catalogue synced, or a skip."""
    key = os.environ.get(KEY_VARIABLE, "")
    if not key:
        pytest.skip(f"Stripe test mode not configured: {KEY_VARIABLE} not set")
    if not key.startswith(("sk_test_", "rk_test_")):
        pytest.fail(f"{KEY_VARIABLE} must be a test-mode key (sk_test_...), never a live one")
    gateway = StripeGateway(key, None, "whsec_live_suite_unused")
    gateway.sync_catalogue(catalogue_plans(), catalogue_coupons())
    yield gateway
    gateway.close()


@pytest.fixture
def customer(live_gateway) -> str:
    """A fresh test-mode customer for this test."""
    user_id = "usr_live_" + secrets.token_hex(6)
    return live_gateway.ensure_customer(user_id, f"{user_id}@example.com", None)


@pytest.fixture
def cleanup(live_gateway) -> Iterator[list[str]]:
    """Subscription ids to cancel after the test, so test mode doesn't accumulate them."""
    made: list[str] = []
    yield made
    for subscription_id in made:
        live_gateway.cancel_now(subscription_id)


def subscribe(
    gateway,
    customer,
    cleanup,
    payment_method="pm_card_visa",
    coupon=None,
    plan_id="plan_premium_monthly",
):
    """Attach `payment_method` and subscribe to `plan_id` (the monthly plan by default)."""
    card = gateway.attach_payment_method(customer, payment_method)
    created = gateway.create_subscription(
        customer, plan(plan_id), card, coupon, "live-" + secrets.token_hex(8)
    )
    cleanup.append(created.id)
    return created


def test_sync_catalogue_twice_is_harmless(live_gateway):
    """A second sync against Stripe neither fails nor needs changes."""
    live_gateway.sync_catalogue(catalogue_plans(), catalogue_coupons())


def test_attach_returns_the_card(live_gateway, customer):
    """Stripe's visa test method attaches as visa 4242."""
    card = live_gateway.attach_payment_method(customer, "pm_card_visa")

    assert (card.brand, card.last4) == ("visa", "4242")


def test_declined_card_is_payment_declined(live_gateway, customer):
    """Stripe declines pm_card_chargeDeclined when it is attached."""
    with pytest.raises(PaymentDeclined) as caught:
        live_gateway.attach_payment_method(customer, "pm_card_chargeDeclined")

    assert caught.value.decline_code == "generic_decline"


def test_unknown_payment_method(live_gateway, customer):
    """An id Stripe doesn't know is UnknownPaymentMethod."""
    with pytest.raises(UnknownPaymentMethod):
        live_gateway.attach_payment_method(customer, "pm_smartcv_does_not_exist")


def test_subscription_with_coupon_is_active_for_a_month(live_gateway, customer, cleanup):
    """WELCOME20 takes 20% off the first invoice; the period is one calendar month."""
    coupon = next(c for c in catalogue_coupons() if c.code == "WELCOME20")

    created = subscribe(live_gateway, customer, cleanup, coupon=coupon)

    assert created.status == "ACTIVE"
    assert created.latest_invoice_amount_cents == 2399
    assert created.current_period_end == add_months(created.current_period_start, 1)


def test_decline_at_charge_raises(live_gateway, customer, cleanup):
    """A card that attaches but fails when charged raises PaymentDeclined."""
    with pytest.raises(PaymentDeclined):
        subscribe(live_gateway, customer, cleanup, "pm_card_chargeCustomerFail")


def test_three_d_secure_is_incomplete_with_an_action(live_gateway, customer, cleanup):
    """A card needing authentication leaves the subscription INCOMPLETE with a next action."""
    created = subscribe(live_gateway, customer, cleanup, "pm_card_authenticationRequired")

    assert created.status == "INCOMPLETE"
    assert created.client_secret and created.next_action


def test_upgrade_to_yearly_bills_the_year_less_the_unused_month(live_gateway, customer, cleanup):
    """The preview and the swap agree, and bill about 299.99 - 29.99 right after paying."""
    created = subscribe(live_gateway, customer, cleanup)
    yearly = plan("plan_premium_yearly")

    previewed = live_gateway.preview_change(created.id, yearly, "always_invoice")
    change = live_gateway.change_plan(created.id, yearly, "always_invoice", secrets.token_hex(8))

    assert abs(previewed.proration_cents - 27000) <= 10
    assert abs(change.proration_cents - previewed.proration_cents) <= 1
    assert abs(change.amount_due_cents - previewed.amount_due_cents) <= 1
    assert (change.subscription.plan_id, change.subscription.status) == (yearly.id, "ACTIVE")


def test_cancel_at_period_end_round_trip(live_gateway, customer, cleanup):
    """A pending cancel can be set and withdrawn."""
    created = subscribe(live_gateway, customer, cleanup)

    assert live_gateway.set_cancel_at_period_end(created.id, True).cancel_at_period_end
    assert not live_gateway.set_cancel_at_period_end(created.id, False).cancel_at_period_end


def test_update_payment_method(live_gateway, customer, cleanup):
    """The new card is the one the subscription bills."""
    created = subscribe(live_gateway, customer, cleanup)

    updated = live_gateway.update_payment_method(created.id, customer, "pm_card_mastercard")

    assert live_gateway.retrieve_subscription(updated.id).payment_method.last4 == "4444"


def test_cancel_now(live_gateway, customer, cleanup):
    """Cancelling now ends the subscription (and cancelling again is harmless)."""
    created = subscribe(live_gateway, customer, cleanup)

    assert live_gateway.cancel_now(created.id).status == "CANCELED"


def test_declined_swap_is_declined_and_leaves_the_plan(live_gateway, customer, cleanup):
    """pending_if_incomplete: a declined swap stays pending; voiding its invoice discards it."""
    created = subscribe(live_gateway, customer, cleanup)
    live_gateway.update_payment_method(created.id, customer, "pm_card_chargeCustomerFail")
    yearly = plan("plan_premium_yearly")

    with pytest.raises(PaymentDeclined):
        live_gateway.change_plan(created.id, yearly, "create_prorations", secrets.token_hex(8))

    after = live_gateway.retrieve_subscription(created.id)
    assert (after.plan_id, after.pending_plan_id, after.status) == (
        "plan_premium_monthly",
        None,
        "ACTIVE",
    )


def test_swap_needing_authentication_is_pending(live_gateway, customer, cleanup):
    """pending_if_incomplete: a swap whose payment needs 3-D Secure shows the pending update."""
    created = subscribe(live_gateway, customer, cleanup)
    live_gateway.update_payment_method(created.id, customer, "pm_card_authenticationRequired")
    yearly = plan("plan_premium_yearly")

    change = live_gateway.change_plan(created.id, yearly, "create_prorations", secrets.token_hex(8))

    provider = change.subscription
    assert (provider.plan_id, provider.pending_plan_id) == ("plan_premium_monthly", yearly.id)
    assert provider.requires_action and provider.client_secret


def test_cancel_now_voids_an_incomplete_subscriptions_invoice(live_gateway, customer, cleanup):
    """Canceling an incomplete subscription leaves its invoice open at Stripe; it is voided."""
    created = subscribe(live_gateway, customer, cleanup, "pm_card_authenticationRequired")

    live_gateway.cancel_now(created.id, secrets.token_hex(8))

    (invoice,) = [
        i for i in live_gateway.list_invoices(customer) if i.id == created.latest_invoice_id
    ]
    assert invoice.status == "void"


def test_new_card_pays_the_open_invoice(live_gateway, customer, cleanup):
    """invoices.pay with the new default card completes an incomplete subscription."""
    created = subscribe(live_gateway, customer, cleanup, "pm_card_authenticationRequired")
    live_gateway.update_payment_method(created.id, customer, "pm_card_visa")

    paid = live_gateway.pay_open_invoice(created.id, secrets.token_hex(8))

    assert paid.status == "ACTIVE"


def test_upcoming_invoice_amount_after_a_credit(live_gateway, customer, cleanup):
    """A downgrade's credit lowers the upcoming invoice Stripe previews."""
    created = subscribe(live_gateway, customer, cleanup, plan_id="plan_premium_yearly")
    monthly = plan("plan_premium_monthly")

    change = live_gateway.change_plan(
        created.id, monthly, "create_prorations", secrets.token_hex(8)
    )

    assert change.subscription.next_invoice_amount_cents == 0
