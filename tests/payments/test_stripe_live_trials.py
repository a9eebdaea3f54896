"""Trials against Stripe test mode: opt-in, with STRIPE_TEST_SECRET_KEY set (skipped otherwise).

What only Stripe can show: a trial starts TRIALING with nothing charged, WELCOME20 lands on the
first paid invoice (not the trial's $0 one), a swap during a trial keeps `trial_end`,
`trial_end=now` bills the first invoice at once, and a card needing authentication leaves a
pending SetupIntent. The trial's end itself runs on Stripe's clock (test clocks), outside this
suite.
"""

from __future__ import annotations

import secrets

import pytest

from smartcv_account.payments.base import PaymentDeclined

from .conftest import catalogue_coupons, plan
from .test_stripe_live import cleanup, customer, live_gateway

pytestmark = [pytest.mark.stripe_live, pytest.mark.slow]
__all__ = ["cleanup", "customer", "live_gateway"]

WELCOME20 = next(c for c in catalogue_coupons() if c.code == "WELCOME20")


def start_trial(gateway, customer, cleanup, payment_method="pm_card_visa", coupon=None):
    """Attach `payment_method` (when given) and start a 14-day Premium Monthly trial."""
    card = gateway.attach_payment_method(customer, payment_method) if payment_method else None
    created = gateway.create_subscription(
        customer,
        plan("plan_premium_monthly"),
        card,
        coupon,
        "live-trial-" + secrets.token_hex(8),
        trial_days=14,
    )
    cleanup.append(created.id)
    return created


def test_a_trial_charges_nothing_and_bills_the_coupon_at_its_end(live_gateway, customer, cleanup):
    created = start_trial(live_gateway, customer, cleanup, coupon=WELCOME20)

    assert created.status == "TRIALING"
    assert created.trial_end == created.current_period_end
    assert created.latest_invoice_amount_cents == 0
    shown = live_gateway.retrieve_subscription(created.id)
    assert shown.next_invoice_amount_cents == 2399


def test_a_trial_without_a_card_starts(live_gateway, customer, cleanup):
    created = start_trial(live_gateway, customer, cleanup, payment_method=None)

    assert (created.status, created.payment_method) == ("TRIALING", None)


def test_a_swap_during_a_trial_keeps_it(live_gateway, customer, cleanup):
    created = start_trial(live_gateway, customer, cleanup)

    change = live_gateway.change_plan(
        created.id, plan("plan_premium_yearly"), "create_prorations", secrets.token_hex(8)
    )

    assert (change.proration_cents, change.amount_due_cents) == (0, 0)
    assert change.subscription.trial_end == created.trial_end
    assert change.subscription.plan_id == "plan_premium_yearly"


def test_end_trial_bills_the_first_invoice_now(live_gateway, customer, cleanup):
    created = start_trial(live_gateway, customer, cleanup, coupon=WELCOME20)

    ended = live_gateway.end_trial(created.id, secrets.token_hex(8))

    assert ended.status == "ACTIVE"
    assert ended.latest_invoice_amount_cents == 2399


def test_end_trial_declined_changes_nothing(live_gateway, customer, cleanup):
    created = start_trial(live_gateway, customer, cleanup, "pm_card_chargeCustomerFail")

    with pytest.raises(PaymentDeclined):
        live_gateway.end_trial(created.id, secrets.token_hex(8))

    assert live_gateway.retrieve_subscription(created.id).status == "TRIALING"


def test_a_card_needing_authentication_leaves_a_setup_to_confirm(live_gateway, customer, cleanup):
    created = start_trial(live_gateway, customer, cleanup, "pm_card_authenticationRequired")

    assert created.status == "TRIALING"
    assert created.client_secret and created.client_secret.startswith("seti_")
