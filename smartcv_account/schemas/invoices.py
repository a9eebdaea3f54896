"""Schemas of the invoices endpoint."""

from __future__ import annotations

from marshmallow import fields, validate

from .base import BaseSchema, Money, Timestamp, about
from .subscription import CURRENCY

# Invoices as Stripe keeps them (drafts are not listed).
INVOICE_STATUSES = ("paid", "open", "void", "uncollectible")


class InvoiceSchema(BaseSchema):
    """An invoice as GET /api/account/invoices lists it (Stripe's meanings of the amounts)."""

    id = fields.String(metadata=about("The invoice's id.", "in_1Q2w3E4r5T6y7U8i"))
    number = fields.String(
        allow_none=True, metadata=about("The invoice number, or null.", "A1B2C3D4-0001")
    )
    status = fields.String(
        validate=validate.OneOf(INVOICE_STATUSES), metadata=about("The invoice's status.", "paid")
    )
    total = Money(metadata=about("The total after discounts, in major units.", 29.99))
    amount_due = Money(
        data_key="amountDue", metadata=about("What was to be paid after credit balance.", 29.99)
    )
    amount_paid = Money(data_key="amountPaid", metadata=about("What was paid.", 29.99))
    amount_remaining = Money(data_key="amountRemaining", metadata=about("What is still owed.", 0))
    amount_refunded = Money(
        data_key="amountRefunded", metadata=about("What was refunded of its payment.", 0)
    )
    discount = Money(metadata=about("The discount applied, in major units.", 0))
    currency = fields.String(metadata=about(CURRENCY, "USD"))
    created_at = Timestamp(data_key="createdAt", metadata=about("When it was issued."))
    period_start = Timestamp(
        data_key="periodStart",
        allow_none=True,
        metadata=about("The billed period's start, or null."),
    )
    period_end = Timestamp(
        data_key="periodEnd", allow_none=True, metadata=about("The billed period's end, or null.")
    )
    plan_id = fields.String(
        data_key="planId",
        allow_none=True,
        metadata=about("The plan billed, or null.", "plan_premium_monthly"),
    )
    hosted_invoice_url = fields.String(
        data_key="hostedInvoiceUrl",
        allow_none=True,
        metadata=about(
            "Stripe's page for the invoice, or null.", "https://invoice.stripe.com/i/acct_1/inv_1"
        ),
    )


invoices_schema = InvoiceSchema(many=True)
