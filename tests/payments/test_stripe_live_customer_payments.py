"""Payments that need the customer, cards, refunds and disputes against Stripe test mode: opt-in,
with STRIPE_TEST_SECRET_KEY set (skipped otherwise). What only Stripe itself can show: the
`invoices.pay` answer for a card that needs authentication, SetupIntents, refunds on a charge,
and 4000000000000259's dispute (which Stripe opens shortly after the payment)."""

from __future__ import annotations

import secrets
import time

import pytest

from smartcv_account.payments.base import PaymentDeclined

from .test_stripe_live import cleanup, customer, live_gateway, subscribe

pytestmark = [pytest.mark.stripe_live, pytest.mark.slow]
__all__ = ["cleanup", "customer", "live_gateway"]


def test_a_card_saved_with_a_setup_intent(live_gateway, customer):
    saved = live_gateway.save_card(customer, "pm_card_mastercard", secrets.token_hex(8))

    assert (saved.card.last4, saved.next_action) == ("4444", None)
    cards, default = live_gateway.list_cards(customer)
    assert saved.card.payment_method_id in [card.payment_method_id for card in cards]
    live_gateway.set_default_card(customer, saved.card.payment_method_id, secrets.token_hex(8))
    assert live_gateway.list_cards(customer)[1] == saved.card.payment_method_id


def test_a_card_needing_authentication_to_be_saved(live_gateway, customer):
    saved = live_gateway.save_card(customer, "pm_card_authenticationRequired", secrets.token_hex(8))

    assert saved.client_secret and saved.client_secret.startswith("seti_")
    assert saved.next_action is not None


def test_a_declined_card_is_not_saved(live_gateway, customer):
    with pytest.raises(PaymentDeclined):
        live_gateway.save_card(customer, "pm_card_chargeDeclined", secrets.token_hex(8))


def test_a_partial_refund_then_the_rest(live_gateway, customer, cleanup):
    created = subscribe(live_gateway, customer, cleanup)

    assert live_gateway.refund_invoice(created.latest_invoice_id, 1000, None, "r1") == 1000
    assert live_gateway.refund_invoice(created.latest_invoice_id, None, None, "r2") == 2999
    (invoice,) = live_gateway.list_invoices(customer)
    assert invoice.amount_refunded == 2999


def test_a_renewal_style_payment_needing_authentication_is_not_a_decline(
    live_gateway, customer, cleanup
):
    created = subscribe(live_gateway, customer, cleanup, "pm_card_authenticationRequired")

    shown = live_gateway.pay_open_invoice(created.id, secrets.token_hex(8))

    assert shown.latest_payment_status == "requires_action"
    assert shown.client_secret and shown.next_action


def test_the_dispute_card_pays_first(live_gateway, customer, cleanup):
    """4000000000000259's payment succeeds; Stripe then opens a dispute and sends
    `charge.dispute.created`, which the service (not the gateway) acts on."""
    created = subscribe(live_gateway, customer, cleanup, "pm_card_createDispute")
    assert created.status == "ACTIVE"
    time.sleep(5)
    assert live_gateway.retrieve_subscription(created.id).status == "ACTIVE"
