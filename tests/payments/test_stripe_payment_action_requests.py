"""Payments waiting on the customer through Stripe (what localstripe cannot show): `invoices.pay`
answering `invoice_payment_intent_requires_action` is a payment to confirm, not a decline, and the
subscription shows what is owed (`latestPayment`) with its client secret and hosted page."""

from __future__ import annotations

import pytest

from .test_stripe_gateway_requests import (
    gateway,
    intent,
    invoice,
    payment_method,
    stripe_error,
    stub,
    subscription,
)

pytestmark = pytest.mark.slow
__all__ = ["gateway", "stub"]

HOSTED = "https://invoice.stripe.com/i/acct_1/test_1"


def test_paying_with_a_card_that_needs_authentication_is_not_a_decline(gateway, stub):
    declined = intent("requires_payment_method")
    action = {"type": "use_stripe_sdk"}
    waiting = intent("requires_action", next_action=action)
    stub.answer(
        "GET",
        "/v1/subscriptions/sub_1",
        subscription("past_due", latest_invoice=invoice(2999, declined)),
    )
    stub.answer(
        "GET",
        "/v1/subscriptions/sub_1",
        subscription(
            "past_due",
            latest_invoice=invoice(2999, waiting, amount_remaining=2999, hosted_invoice_url=HOSTED),
        ),
    )
    stub.answer(
        "POST",
        "/v1/invoices/in_1/pay",
        stripe_error(
            "card_error",
            "This payment requires additional user action.",
            code="invoice_payment_intent_requires_action",
        ),
        status=402,
    )
    stub.answer("POST", "/v1/invoices/create_preview", {"object": "invoice", "amount_due": 2999})

    shown = gateway.pay_open_invoice("sub_1", "k")

    assert (shown.status, shown.next_action, shown.client_secret) == (
        "PAST_DUE",
        action,
        "pi_1_secret_abc",
    )
    assert (shown.latest_payment_status, shown.latest_payment_cents) == ("requires_action", 2999)
    assert shown.hosted_invoice_url == HOSTED


def test_a_declined_renewal_shows_what_is_owed(gateway, stub):
    declined = intent("requires_payment_method")
    stub.answer(
        "GET",
        "/v1/subscriptions/sub_1",
        subscription(
            "past_due",
            latest_invoice=invoice(
                2999, declined, amount_remaining=2999, hosted_invoice_url=HOSTED
            ),
        ),
    )
    stub.answer("POST", "/v1/invoices/create_preview", {"object": "invoice", "amount_due": 2999})

    shown = gateway.retrieve_subscription("sub_1")

    assert (shown.latest_payment_status, shown.latest_payment_cents) == (
        "requires_payment_method",
        2999,
    )
    assert shown.next_action is None


def test_nothing_owed_once_the_invoice_is_paid(gateway, stub):
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription())
    stub.answer("POST", "/v1/invoices/create_preview", {"object": "invoice", "amount_due": 2999})

    shown = gateway.retrieve_subscription("sub_1")

    assert (shown.latest_payment_status, shown.latest_payment_cents, shown.hosted_invoice_url) == (
        None,
        None,
        None,
    )


def test_switching_the_card_back_and_forth_sends_a_new_key_each_time(gateway, stub):
    """A -> B -> A within a day: the third switch must not replay the first (Stripe keeps keys
    for 24 hours), so each default-card update's key carries the change's version."""
    for pm_id in ("pm_a", "pm_b"):
        stub.answer("POST", f"/v1/payment_methods/{pm_id}/attach", payment_method(pm_id))
    stub.answer("POST", "/v1/customers/cus_1", {"id": "cus_1", "object": "customer"})
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription(default_payment_method=None))

    for version, pm_id in enumerate(("pm_a", "pm_b", "pm_a"), start=1):
        gateway.update_payment_method("sub_1", "cus_1", pm_id, f"sub_x:card:{pm_id}:v{version}")

    updates = stub.sent("POST", "/v1/customers/cus_1")
    assert [u.form["invoice_settings[default_payment_method]"] for u in updates] == [
        "pm_a",
        "pm_b",
        "pm_a",
    ]
    keys = [u.headers["idempotency-key"] for u in updates]
    assert len(set(keys)) == 3
