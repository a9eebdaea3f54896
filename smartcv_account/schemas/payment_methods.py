"""Schemas of /api/account/payment-methods: the user's saved cards."""

from __future__ import annotations

from marshmallow import fields, validate

from .base import BaseSchema, Trimmed, about


class CardSchema(BaseSchema):
    """A saved card (never its number)."""

    id = fields.String(metadata=about("The card's id at the provider.", "pm_1Q2w3E4r5T6y"))
    brand = fields.String(metadata=about("The card brand, as Stripe names it.", "visa"))
    last4 = fields.String(metadata=about("The card number's last four digits.", "4242"))
    exp_month = fields.Integer(data_key="expMonth", metadata=about("The expiry month.", 12))
    exp_year = fields.Integer(data_key="expYear", metadata=about("The expiry year.", 2030))
    default = fields.Boolean(
        metadata=about("Whether renewals charge this card (the customer's default).", True)
    )


class CardSaveSchema(BaseSchema):
    """POST /api/account/payment-methods."""

    payment_method_id = Trimmed(
        data_key="paymentMethodId",
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata=about("A Stripe PaymentMethod id made by Stripe.js.", "pm_card_mastercard"),
    )


class CardSavedSchema(BaseSchema):
    """The `data` of a saved card."""

    payment_method = fields.Nested(
        CardSchema, data_key="paymentMethod", metadata=about("The card saved.")
    )
    requires_action = fields.Boolean(
        data_key="requiresAction",
        metadata=about("Whether the customer must authenticate the card to save it.", False),
    )
    client_secret = fields.String(
        data_key="clientSecret",
        allow_none=True,
        metadata=about("The SetupIntent's client secret for Stripe.js when requiresAction."),
    )
    next_action = fields.Dict(
        data_key="nextAction",
        allow_none=True,
        metadata=about("Stripe's next_action while the card waits for authentication."),
    )


cards_schema = CardSchema(many=True)
card_save_schema = CardSaveSchema()
card_saved_schema = CardSavedSchema()
