"""Schemas of the subscription endpoints."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from ..catalogue import PLAN_TYPE_ORDER, limits_for
from ..payments.base import PRORATION_BEHAVIORS
from ..services.billing import ACTIONS
from .account import SUBSCRIPTION_STATUSES
from .base import BaseSchema, Money, Timestamp, Trimmed, about
from .usage import UsageSchema

ID_LENGTH = validate.Length(min=1, max=100)
CURRENCY = "The ISO 4217 currency code, upper case."
CLIENT_SECRET = (
    "The PaymentIntent's client secret for Stripe.js to authenticate the payment (3-D Secure) "
    "when requiresAction is true; null otherwise."
)
PRORATION = (
    "How a plan change is billed: create_prorations (default) leaves the proration for the "
    "next invoice, always_invoice bills it now, none creates none."
)
NEXT_ACTION = "Stripe's next_action object when the payment needs the customer; null otherwise."
REQUIRES_ACTION = "Whether the customer must authenticate the payment before it completes."


class PlanSchema(BaseSchema):
    """A plan as the subscription shows it."""

    id = fields.String(metadata=about("The plan's id.", "plan_premium_monthly"))
    name = fields.String(metadata=about("The plan's name.", "Premium Monthly"))
    price = Money(
        attribute="price_cents",
        allow_none=True,
        metadata=about(
            "The price per interval, in major units; null for a plan arranged with sales.", 29.99
        ),
    )
    currency = fields.String(metadata=about(CURRENCY, "USD"))
    interval = fields.String(
        validate=validate.OneOf(("month", "year")),
        metadata=about("How often the price is charged.", "month"),
    )
    features = fields.List(
        fields.String(),
        metadata=about(
            "What the plan includes, for display.", ["Unlimited resumes", "AI features"]
        ),
    )


class PaymentMethodSchema(BaseSchema):
    """The card on file (never its number)."""

    type = fields.String(metadata=about("The kind of payment method.", "card"))
    last4 = fields.String(metadata=about("The card number's last four digits.", "4242"))
    brand = fields.String(metadata=about("The card brand, as Stripe names it.", "visa"))
    expiry_month = fields.Integer(
        data_key="expiryMonth", metadata=about("The expiry month, 1-12.", 12)
    )
    expiry_year = fields.Integer(data_key="expiryYear", metadata=about("The expiry year.", 2030))


class NextBillingSchema(BaseSchema):
    """The next renewal's date and amount."""

    date = Timestamp(metadata=about("When the next invoice is charged."))
    amount = Money(
        attribute="amount_cents",
        metadata=about("What it will charge, after credit, discounts and proration.", 29.99),
    )
    currency = fields.String(metadata=about(CURRENCY, "USD"))


class PendingChangeSchema(BaseSchema):
    """A plan change waiting for its payment to be authenticated."""

    plan_id = fields.String(
        data_key="planId", metadata=about("The plan the change is to.", "plan_premium_yearly")
    )
    expires_at = Timestamp(
        data_key="expiresAt",
        allow_none=True,
        metadata=about("When the change lapses if not authenticated, or null if unknown."),
    )


class LatestPaymentSchema(BaseSchema):
    """What the latest invoice still asks for, and how to finish paying it."""

    status = fields.String(
        validate=validate.OneOf(
            ("succeeded", "requires_action", "requires_payment_method", "processing")
        ),
        metadata=about(
            "The payment's state: requires_action (the customer must confirm it, with "
            "clientSecret or hostedInvoiceUrl), requires_payment_method (declined: give "
            "another card), processing.",
            "requires_action",
        ),
    )
    amount = Money(attribute="amount_cents", metadata=about("What is owed.", 29.99))
    currency = fields.String(metadata=about(CURRENCY, "USD"))
    client_secret = fields.String(
        data_key="clientSecret",
        allow_none=True,
        metadata=about("The payment's client secret for Stripe.js, or null.", "pi_3_secret_x"),
    )
    hosted_invoice_url = fields.String(
        data_key="hostedInvoiceUrl",
        allow_none=True,
        metadata=about("Stripe's page to pay the invoice; null with the local gateway."),
    )


class SubscriptionSchema(BaseSchema):
    """GET /api/account/subscription."""

    id = fields.String(
        allow_none=True,
        metadata=about("The subscription's id; null on the free plan.", "sub_3f1a9c0d2e4b6a8c"),
    )
    type = fields.String(
        validate=validate.OneOf(PLAN_TYPE_ORDER),
        metadata=about("The plan type whose limits apply.", "PREMIUM"),
    )
    status = fields.String(
        validate=validate.OneOf(SUBSCRIPTION_STATUSES),
        metadata=about("The subscription's status.", "ACTIVE"),
    )
    current_period_start = Timestamp(
        data_key="currentPeriodStart",
        allow_none=True,
        metadata=about("When the paid period began, or null."),
    )
    current_period_end = Timestamp(
        data_key="currentPeriodEnd",
        allow_none=True,
        metadata=about("When the paid period ends, or null."),
    )
    cancel_at_period_end = fields.Boolean(
        data_key="cancelAtPeriodEnd",
        metadata=about("Whether it ends at currentPeriodEnd instead of renewing.", False),
    )
    trial_end = Timestamp(
        data_key="trialEnd", allow_none=True, metadata=about("When the trial ends, or null.")
    )
    plan = fields.Nested(PlanSchema, metadata=about("The plan subscribed to."))
    usage = fields.Nested(UsageSchema, metadata=about("Usage counters and the plan's limits."))
    payment_method = fields.Nested(
        PaymentMethodSchema,
        data_key="paymentMethod",
        allow_none=True,
        metadata=about("The card on file, or null."),
    )
    next_billing = fields.Nested(
        NextBillingSchema,
        data_key="nextBilling",
        allow_none=True,
        metadata=about("The next renewal, or null when nothing renews."),
    )
    pending_change = fields.Nested(
        PendingChangeSchema,
        data_key="pendingChange",
        allow_none=True,
        metadata=about("A plan change waiting for payment authentication, or null."),
    )
    latest_payment = fields.Nested(
        LatestPaymentSchema,
        data_key="latestPayment",
        allow_none=True,
        metadata=about("What is owed and how to pay it, or null when nothing is owed."),
    )


class SubscriptionCreateSchema(BaseSchema):
    """POST /api/account/subscription."""

    plan_id = Trimmed(
        data_key="planId",
        required=True,
        validate=ID_LENGTH,
        metadata=about(
            "The paid plan to subscribe to (see GET /api/plans).", "plan_premium_monthly"
        ),
    )
    payment_method_id = Trimmed(
        data_key="paymentMethodId",
        validate=ID_LENGTH,
        metadata=about(
            "A Stripe PaymentMethod id made by Stripe.js; optional only with trial.",
            "pm_card_visa",
        ),
    )
    coupon_code = Trimmed(
        data_key="couponCode",
        allow_none=True,
        validate=ID_LENGTH,
        metadata=about("A coupon code, or null.", "WELCOME20"),
    )
    trial = fields.Boolean(
        load_default=False,
        metadata=about(
            "Start the plan's free trial (see trialDays) instead of paying now; the first "
            "invoice is charged at its end.",
            False,
        ),
    )

    @validates_schema
    def _card_unless_trial(self, data: dict, **kwargs) -> None:
        """A paid start needs a card; a trial may start without one."""
        if not data.get("trial") and not data.get("payment_method_id"):
            raise ValidationError("Required unless trial is true.", "paymentMethodId")


class SubscriptionCreatedSchema(BaseSchema):
    """The `data` of a created subscription."""

    subscription_id = fields.String(
        attribute="public_id",
        data_key="subscriptionId",
        metadata=about("The new subscription's id.", "sub_3f1a9c0d2e4b6a8c"),
    )
    status = fields.String(
        validate=validate.OneOf(SUBSCRIPTION_STATUSES),
        metadata=about("ACTIVE when paid, INCOMPLETE while authentication is needed.", "ACTIVE"),
    )
    client_secret = fields.String(
        data_key="clientSecret", allow_none=True, metadata=about(CLIENT_SECRET)
    )
    requires_action = fields.Boolean(
        data_key="requiresAction", metadata=about(REQUIRES_ACTION, False)
    )
    next_action = fields.Dict(data_key="nextAction", allow_none=True, metadata=about(NEXT_ACTION))


class SubscriptionUpdateSchema(BaseSchema):
    """PUT /api/account/subscription."""

    action = fields.String(
        required=True,
        validate=validate.OneOf(ACTIONS),
        metadata=about("What to change.", "upgrade"),
    )
    plan_id = Trimmed(
        data_key="planId",
        validate=ID_LENGTH,
        metadata=about(
            "The plan to move to; required for upgrade and downgrade.", "plan_premium_yearly"
        ),
    )
    proration_behavior = fields.String(
        data_key="prorationBehavior",
        validate=validate.OneOf(PRORATION_BEHAVIORS),
        metadata=about(PRORATION, "create_prorations"),
    )
    payment_method_id = Trimmed(
        data_key="paymentMethodId",
        validate=ID_LENGTH,
        metadata=about("The new card; required for update_payment_method.", "pm_card_mastercard"),
    )

    @validates_schema
    def _action_needs(self, data: dict, **kwargs) -> None:
        """Require the fields each action needs."""
        action = data.get("action")
        if action in ("upgrade", "downgrade") and not data.get("plan_id"):
            raise ValidationError(f"Required for {action}.", "planId")
        if action == "update_payment_method" and not data.get("payment_method_id"):
            raise ValidationError(f"Required for {action}.", "paymentMethodId")


class SubscriptionChangedSchema(BaseSchema):
    """The `data` of a changed subscription."""

    subscription_id = fields.String(
        data_key="subscriptionId", metadata=about("The subscription's id.", "sub_3f1a9c0d2e4b6a8c")
    )
    status = fields.String(
        validate=validate.OneOf(SUBSCRIPTION_STATUSES),
        metadata=about("The status after the change.", "ACTIVE"),
    )
    proration_amount = Money(
        data_key="prorationAmount",
        metadata=about(
            "The proration of a plan change, in major units (negative is credit).", 12.5
        ),
    )
    amount_due_now = Money(
        data_key="amountDueNow", metadata=about("What is charged now, in major units.", 12.5)
    )
    effective_date = Timestamp(
        data_key="effectiveDate",
        allow_none=True,
        metadata=about("When the change takes effect, or null when there is no date to give."),
    )
    requires_action = fields.Boolean(
        data_key="requiresAction", metadata=about(REQUIRES_ACTION, False)
    )
    client_secret = fields.String(
        data_key="clientSecret", allow_none=True, metadata=about(CLIENT_SECRET)
    )
    next_action = fields.Dict(data_key="nextAction", allow_none=True, metadata=about(NEXT_ACTION))


class PublicPlanSchema(PlanSchema):
    """A plan as GET /api/plans lists it, with its type and usage limits."""

    type = fields.String(
        validate=validate.OneOf(PLAN_TYPE_ORDER), metadata=about("The plan's type.", "PREMIUM")
    )
    # Only plans with a price are listed (free and self-serve).
    price = Money(
        attribute="price_cents", metadata=about("The price per interval, in major units.", 29.99)
    )
    trial_days = fields.Integer(
        data_key="trialDays",
        metadata=about("How many days a trial of this plan lasts (0: no trial).", 14),
    )
    limits = fields.Function(
        lambda plan: limits_for(plan.type),
        metadata={
            "type": "object",
            **about(
                "The plan type's limits (-1 is unlimited).",
                limits_for("PREMIUM"),
            ),
        },
    )


class WebhookReceiptSchema(BaseSchema):
    """The `data` of an accepted webhook delivery."""

    received = fields.Boolean(metadata=about("Always true: the event was accepted.", True))
    duplicate = fields.Boolean(
        metadata=about("Whether this event id had already been processed.", False)
    )


subscription_schema = SubscriptionSchema()
webhook_receipt_schema = WebhookReceiptSchema()
subscription_create_schema = SubscriptionCreateSchema()
subscription_created_schema = SubscriptionCreatedSchema()
subscription_update_schema = SubscriptionUpdateSchema()
subscription_changed_schema = SubscriptionChangedSchema()
public_plans_schema = PublicPlanSchema(many=True)
