"""Stripe's test payment methods and what each does when it is attached or charged."""

from __future__ import annotations

from dataclasses import dataclass

from ...extensions import db
from .models import LocalInvoice, LocalPaymentMethod, LocalSubscription


@dataclass(frozen=True)
class TestCard:
    """How one of Stripe's test payment methods behaves."""

    brand: str
    last4: str
    behaviour: str  # succeed | decline_on_attach | decline_on_charge | authenticate | dispute
    decline_code: str | None = None


# Stripe's documented test payment methods (https://docs.stripe.com/testing).
TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242", "succeed"),
    "pm_card_mastercard": TestCard("mastercard", "4444", "succeed"),
    "pm_card_amex": TestCard("amex", "8431", "succeed"),
    "pm_card_chargeDeclined": TestCard("visa", "0002", "decline_on_attach", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard(
        "visa", "9995", "decline_on_attach", "insufficient_funds"
    ),
    # Attaches fine, then every charge fails (Stripe's 4000000000000341).
    "pm_card_chargeCustomerFail": TestCard("visa", "0341", "decline_on_charge", "card_declined"),
    # Succeeds, then the payment is disputed (Stripe's 4000000000000259; here at once).
    "pm_card_createDispute": TestCard("visa", "0259", "dispute"),
    # Needs 3-D Secure on every payment, renewals included (Stripe's 4000002760003184).
    "pm_card_authenticationRequired": TestCard("visa", "3184", "authenticate"),
}


def charge(invoice: LocalInvoice, subscription: LocalSubscription, on_session: bool) -> None:
    """Try the subscription's default card for the invoice's amount due, as its test card does."""
    method = db.session.get(LocalPaymentMethod, subscription.default_payment_method_id)
    invoice.decline_code = None
    if method is None or method.behaviour == "decline_on_charge":
        invoice.payment_status = "requires_payment_method"
        invoice.decline_code = (method.decline_code if method else None) or "card_declined"
    elif method.behaviour == "authenticate":
        # Every payment needs the customer, off-session renewals too: the invoice stays open
        # with its intent `requires_action` (as Stripe's card 4000002760003184 on a
        # subscription: `invoice.payment_action_required`), until the customer confirms it.
        invoice.payment_status = "requires_action"
    else:
        mark_paid(invoice)
        invoice.next_payment_attempt = None
        if method.behaviour == "dispute":
            invoice.dispute_status = "needs_response"


def mark_paid(invoice: LocalInvoice) -> None:
    """Record the invoice's amount due as paid by its payment intent."""
    invoice.payment_status = "succeeded"
    invoice.status = "paid"
    invoice.amount_paid = invoice.amount_due
