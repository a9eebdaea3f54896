"""The exact requests StripeGateway sends for trials and lapsed updates (not in localstripe).

Stripe's rules each follows are named in docs/billing.md ("Stripe behaviour this service relies
on"): `trial_period_days`, `trial_settings.end_behavior.missing_payment_method=cancel`,
`pending_setup_intent`, swaps during a trial with `proration_behavior=none` and `trial_end`
kept, `trial_end=now` under `pending_if_incomplete`, and the customer's balance in a create
preview.
"""

from __future__ import annotations

import pytest

from smartcv_account.payments.base import PaymentDeclined

from .conftest import plan
from .test_stripe_gateway_requests import (
    NOW,
    PERIOD_END,
    VISA,
    WELCOME20,
    gateway,
    intent,
    invoice,
    stub,
    subscription,
)

pytestmark = pytest.mark.slow
# The recording server standing in for api.stripe.com, and a StripeGateway pointed at it.
__all__ = ["gateway", "stub"]

TRIAL_END = NOW + 14 * 86400


def trialing(**fields) -> dict:
    """A trialing subscription whose trial ends at TRIAL_END (its $0 invoice paid)."""
    fields.setdefault("latest_invoice", invoice(total=0))
    return subscription("trialing", trial_end=TRIAL_END, **fields)


def test_a_trial_create_sends_its_days_and_the_cancel_without_card(gateway, stub):
    stub.answer("POST", "/v1/subscriptions", trialing())

    created = gateway.create_subscription(
        "cus_1", plan("plan_premium_monthly"), VISA, WELCOME20, "sub_k", trial_days=14
    )

    (request,) = stub.sent("POST", "/v1/subscriptions")
    assert request.form["trial_period_days"] == "14"
    assert request.form["trial_settings[end_behavior][missing_payment_method]"] == "cancel"
    assert request.form["discounts[0][coupon]"] == "WELCOME20"
    assert request.form["expand[2]"] == "pending_setup_intent"
    assert request.headers["idempotency-key"] == "sub_k"
    assert (created.status, created.trial_end.timestamp()) == ("TRIALING", TRIAL_END)
    assert created.next_action is None


def test_a_paid_create_sends_no_trial(gateway, stub):
    stub.answer("POST", "/v1/subscriptions", subscription())

    gateway.create_subscription("cus_1", plan("plan_premium_monthly"), VISA, None, "k")

    form = stub.sent("POST", "/v1/subscriptions")[0].form
    assert not any(key.startswith("trial") for key in form)


def test_a_card_waiting_for_authentication_shows_the_setup_secret(gateway, stub):
    setup = {
        "id": "seti_1",
        "object": "setup_intent",
        "status": "requires_action",
        "client_secret": "seti_1_secret_x",
        "next_action": {"type": "use_stripe_sdk"},
    }
    stub.answer("POST", "/v1/subscriptions", trialing(pending_setup_intent=setup))

    created = gateway.create_subscription(
        "cus_1", plan("plan_premium_monthly"), VISA, None, "k", trial_days=14
    )

    assert (created.status, created.client_secret, created.next_action) == (
        "TRIALING",
        "seti_1_secret_x",
        {"type": "use_stripe_sdk"},
    )


def test_a_swap_during_a_trial_keeps_its_end_and_bills_nothing(gateway, stub):
    stub.answer("GET", "/v1/subscriptions/sub_1", trialing())
    stub.answer("POST", "/v1/subscriptions/sub_1", trialing(plan_id="plan_premium_yearly"))
    stub.answer("POST", "/v1/invoices/create_preview", {"object": "invoice", "amount_due": 29999})

    change = gateway.change_plan("sub_1", plan("plan_premium_yearly"), "create_prorations", "k")

    (request,) = stub.sent("POST", "/v1/subscriptions/sub_1")
    assert request.form == {
        "items[0][id]": "si_1",
        "items[0][price]": "plan_premium_yearly",
        "proration_behavior": "none",
        "trial_end": str(TRIAL_END),
        "cancel_at_period_end": "false",
        "expand[0]": "latest_invoice.payment_intent",
        "expand[1]": "customer.invoice_settings.default_payment_method",
    }
    assert request.headers["idempotency-key"] == "k"
    assert (change.proration_cents, change.amount_due_cents) == (0, 0)
    assert change.subscription.next_invoice_amount_cents == 29999


def test_the_preview_of_a_swap_during_a_trial_is_the_first_invoice(gateway, stub):
    stub.answer("GET", "/v1/subscriptions/sub_1", trialing())
    stub.answer("POST", "/v1/invoices/create_preview", {"object": "invoice", "amount_due": 29999})

    preview = gateway.preview_change("sub_1", plan("plan_premium_yearly"), "create_prorations")

    (request,) = stub.sent("POST", "/v1/invoices/create_preview")
    assert request.form["subscription_details[trial_end]"] == str(TRIAL_END)
    assert request.form["subscription_details[proration_behavior]"] == "none"
    assert (preview.proration_cents, preview.amount_due_cents) == (0, 0)
    assert (preview.next_billing_date.timestamp(), preview.next_billing_cents) == (
        PERIOD_END,
        29999,
    )


def test_end_trial_sends_trial_end_now_pending_if_incomplete(gateway, stub):
    stub.answer("POST", "/v1/subscriptions/sub_1", subscription())
    stub.answer("POST", "/v1/invoices/create_preview", {"object": "invoice", "amount_due": 2999})

    ended = gateway.end_trial("sub_1", "sub_k:end_trial::v3")

    request = stub.sent("POST", "/v1/subscriptions/sub_1")[0]
    assert request.form["trial_end"] == "now"
    assert request.form["payment_behavior"] == "pending_if_incomplete"
    assert request.headers["idempotency-key"] == "sub_k:end_trial::v3"
    assert ended.status == "ACTIVE"


def test_end_trial_declined_voids_the_invoice_and_changes_nothing(gateway, stub):
    failed = intent("requires_payment_method", last_payment_error={"code": "card_declined"})
    stub.answer(
        "POST",
        "/v1/subscriptions/sub_1",
        trialing(
            latest_invoice=invoice(2999, failed, billing_reason="subscription_update"),
            pending_update={"expires_at": NOW + 23 * 3600, "trial_end": NOW},
        ),
    )
    stub.answer("POST", "/v1/invoices/in_1/void", invoice(2999, status="void"))

    with pytest.raises(PaymentDeclined):
        gateway.end_trial("sub_1", "k")

    assert len(stub.sent("POST", "/v1/invoices/in_1/void")) == 1


def test_end_trial_needing_authentication_is_pending_on_the_same_plan(gateway, stub):
    waiting = intent("requires_action", next_action={"type": "use_stripe_sdk"})
    stub.answer(
        "POST",
        "/v1/subscriptions/sub_1",
        trialing(
            latest_invoice=invoice(2999, waiting, billing_reason="subscription_update"),
            pending_update={"expires_at": NOW + 23 * 3600, "trial_end": NOW},
        ),
    )

    ended = gateway.end_trial("sub_1", "k")

    assert (ended.status, ended.pending_plan_id) == ("TRIALING", "plan_premium_monthly")
    assert (ended.client_secret, ended.next_action) == (
        "pi_1_secret_abc",
        {"type": "use_stripe_sdk"},
    )


def test_the_create_preview_applies_the_customers_balance(gateway, stub):
    stub.answer(
        "GET", "/v1/customers/cus_1", {"id": "cus_1", "object": "customer", "balance": -500}
    )

    paid = gateway.preview_create("cus_1", plan("plan_premium_monthly"), WELCOME20, 0)
    trial = gateway.preview_create(None, plan("plan_premium_monthly"), WELCOME20, 14)

    assert (paid.amount_due_cents, paid.next_billing_cents) == (2399 - 500, 2999)
    assert (trial.amount_due_cents, trial.next_billing_cents) == (0, 2399)
    assert len(stub.sent("GET", "/v1/customers/cus_1")) == 1


# A plan change that lapsed unpaid (in this file for the fixtures; not a trial)


def test_advance_voids_the_open_invoice_of_a_lapsed_update(gateway, stub):
    waiting = intent("requires_action", next_action={"type": "use_stripe_sdk"})
    lapsed = subscription(
        latest_invoice=invoice(27000, waiting, billing_reason="subscription_update")
    )
    stub.answer("GET", "/v1/subscriptions/sub_1", lapsed)  # Stripe dropped pending_update
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription())
    stub.answer("POST", "/v1/invoices/in_1/void", invoice(27000, status="void"))
    stub.answer("POST", "/v1/invoices/create_preview", {"object": "invoice", "amount_due": 2999})

    shown = gateway.advance("sub_1")

    (voided,) = stub.sent("POST", "/v1/invoices/in_1/void")
    assert voided.headers["idempotency-key"].startswith("smartcv-void-in_1")
    assert (shown.pending_plan_id, shown.plan_id) == (None, "plan_premium_monthly")


def test_advance_leaves_an_update_still_waiting(gateway, stub):
    waiting = intent("requires_action", next_action={"type": "use_stripe_sdk"})
    stub.answer(
        "GET",
        "/v1/subscriptions/sub_1",
        subscription(
            latest_invoice=invoice(27000, waiting, billing_reason="subscription_update"),
            pending_update={"expires_at": NOW + 3600, "subscription_items": []},
        ),
    )
    stub.answer("POST", "/v1/invoices/create_preview", {"object": "invoice", "amount_due": 2999})

    gateway.advance("sub_1")

    assert stub.sent("POST", "/v1/invoices/in_1/void") == []
