"""Schemas of GET /api/account/subscription/preview: what a change or a create would bill."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from ..payments.base import PRORATION_BEHAVIORS
from .base import BaseSchema, Money, Timestamp, Trimmed, about
from .subscription import CURRENCY, ID_LENGTH, PRORATION


class PreviewQuerySchema(BaseSchema):
    """The query of GET /api/account/subscription/preview."""

    action = fields.String(
        required=True,
        validate=validate.OneOf(("upgrade", "downgrade", "create")),
        metadata=about("The change to preview, or create for a new subscription.", "upgrade"),
    )
    plan_id = Trimmed(
        data_key="planId",
        required=True,
        validate=ID_LENGTH,
        metadata=about("The plan to move to (or subscribe to).", "plan_premium_yearly"),
    )
    proration_behavior = fields.String(
        data_key="prorationBehavior",
        validate=validate.OneOf(PRORATION_BEHAVIORS),
        metadata=about(PRORATION, "create_prorations"),
    )
    trial = fields.Boolean(
        metadata=about("With create: preview the plan's trial (nothing due now).", False)
    )
    coupon_code = Trimmed(
        data_key="couponCode",
        validate=ID_LENGTH,
        metadata=about("With create: the coupon to preview.", "WELCOME20"),
    )

    @validates_schema
    def _fields_of_the_action(self, data: dict, **kwargs) -> None:
        """`trial` and `couponCode` go with create; `prorationBehavior` with a plan change."""
        creating = data.get("action") == "create"
        for key, name in (("trial", "trial"), ("coupon_code", "couponCode")):
            if key in data and not creating:
                raise ValidationError("Only with action create.", name)
        if creating and "proration_behavior" in data:
            raise ValidationError("Only with upgrade or downgrade.", "prorationBehavior")


class PreviewBillingSchema(BaseSchema):
    """The next invoice after the previewed change."""

    date = Timestamp(attribute="next_billing_date", allow_none=True)
    amount = Money(attribute="next_billing_cents", allow_none=True)


class PreviewSchema(BaseSchema):
    """What a plan change would bill, as GET /api/account/subscription/preview shows it."""

    amount_due_now = Money(
        attribute="amount_due_cents",
        data_key="amountDueNow",
        metadata=about("What the change would charge now.", 12.5),
    )
    proration_amount = Money(
        attribute="proration_cents",
        data_key="prorationAmount",
        metadata=about("The change's proration (negative is credit).", 12.5),
    )
    currency = fields.Constant(
        "USD", metadata={"type": "string", "enum": ["USD"], **about(CURRENCY, "USD")}
    )
    next_billing = fields.Function(
        lambda preview: PreviewBillingSchema().dump(preview),
        data_key="nextBilling",
        metadata={
            "type": "object",
            "required": ["date", "amount"],
            "properties": {
                "date": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "When it is charged, or null when the provider does not say.",
                    "example": "2026-02-15T10:00:00Z",
                },
                "amount": {
                    "type": ["number", "null"],
                    "description": "What it charges, or null when the provider does not say.",
                    "example": 49.99,
                },
            },
            **about("The next invoice after the change."),
        },
    )


preview_query_schema = PreviewQuerySchema()
preview_schema = PreviewSchema()
