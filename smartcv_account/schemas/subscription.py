"""Schemas of the subscription endpoints."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from ..catalogue import limits_for
from ..payments.base import PRORATION_BEHAVIORS
from ..services.billing import ACTIONS
from .base import BaseSchema, Money, Timestamp, Trimmed
from .usage import UsageSchema

ID_LENGTH = validate.Length(min=1, max=100)


class PlanSchema(BaseSchema):
    """A plan as the subscription shows it."""

    id = fields.String()
    name = fields.String()
    price = Money(attribute="price_cents")
    currency = fields.String()
    interval = fields.String()
    features = fields.List(fields.String())


class PaymentMethodSchema(BaseSchema):
    """The card on file (never its number)."""

    type = fields.String()
    last4 = fields.String()
    brand = fields.String()
    expiry_month = fields.Integer(data_key="expiryMonth")
    expiry_year = fields.Integer(data_key="expiryYear")


class NextBillingSchema(BaseSchema):
    """The next renewal's date and amount."""

    date = Timestamp()
    amount = Money(attribute="amount_cents")
    currency = fields.String()


class PendingChangeSchema(BaseSchema):
    """A plan change waiting for its payment to be authenticated."""

    plan_id = fields.String(data_key="planId")
    expires_at = Timestamp(data_key="expiresAt")


class SubscriptionSchema(BaseSchema):
    """GET /api/account/subscription."""

    id = fields.String(allow_none=True)
    type = fields.String()
    status = fields.String()
    current_period_start = Timestamp(data_key="currentPeriodStart")
    current_period_end = Timestamp(data_key="currentPeriodEnd")
    cancel_at_period_end = fields.Boolean(data_key="cancelAtPeriodEnd")
    trial_end = Timestamp(data_key="trialEnd")
    plan = fields.Nested(PlanSchema)
    usage = fields.Nested(UsageSchema)
    payment_method = fields.Nested(PaymentMethodSchema, data_key="paymentMethod", allow_none=True)
    next_billing = fields.Nested(NextBillingSchema, data_key="nextBilling", allow_none=True)
    pending_change = fields.Nested(PendingChangeSchema, data_key="pendingChange", allow_none=True)


class SubscriptionCreateSchema(BaseSchema):
    """POST /api/account/subscription."""

    plan_id = Trimmed(data_key="planId", required=True, validate=ID_LENGTH)
    payment_method_id = Trimmed(data_key="paymentMethodId", required=True, validate=ID_LENGTH)
    coupon_code = Trimmed(data_key="couponCode", allow_none=True, validate=ID_LENGTH)


class SubscriptionCreatedSchema(BaseSchema):
    """The `data` of a created subscription."""

    subscription_id = fields.String(attribute="public_id", data_key="subscriptionId")
    status = fields.String()
    client_secret = fields.String(data_key="clientSecret", allow_none=True)
    requires_action = fields.Boolean(data_key="requiresAction")
    next_action = fields.Dict(data_key="nextAction", allow_none=True)


class SubscriptionUpdateSchema(BaseSchema):
    """PUT /api/account/subscription."""

    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    plan_id = Trimmed(data_key="planId", validate=ID_LENGTH)
    proration_behavior = fields.String(
        data_key="prorationBehavior", validate=validate.OneOf(PRORATION_BEHAVIORS)
    )
    payment_method_id = Trimmed(data_key="paymentMethodId", validate=ID_LENGTH)

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

    subscription_id = fields.String(data_key="subscriptionId")
    status = fields.String()
    proration_amount = Money(data_key="prorationAmount")
    amount_due_now = Money(data_key="amountDueNow")
    effective_date = Timestamp(data_key="effectiveDate")
    requires_action = fields.Boolean(data_key="requiresAction")
    client_secret = fields.String(data_key="clientSecret", allow_none=True)
    next_action = fields.Dict(data_key="nextAction", allow_none=True)


class PublicPlanSchema(PlanSchema):
    """A plan as GET /api/plans lists it, with its type and usage limits."""

    type = fields.String()
    limits = fields.Function(lambda plan: limits_for(plan.type))


class InvoiceSchema(BaseSchema):
    """An invoice as GET /api/account/invoices lists it (Stripe's meanings of the amounts)."""

    id = fields.String()
    number = fields.String(allow_none=True)
    status = fields.String()
    total = Money()
    amount_due = Money(data_key="amountDue")
    amount_paid = Money(data_key="amountPaid")
    amount_remaining = Money(data_key="amountRemaining")
    discount = Money()
    currency = fields.String()
    created_at = Timestamp(data_key="createdAt")
    period_start = Timestamp(data_key="periodStart")
    period_end = Timestamp(data_key="periodEnd")
    plan_id = fields.String(data_key="planId", allow_none=True)
    hosted_invoice_url = fields.String(data_key="hostedInvoiceUrl", allow_none=True)


class PreviewQuerySchema(BaseSchema):
    """The query of GET /api/account/subscription/preview."""

    action = fields.String(required=True, validate=validate.OneOf(("upgrade", "downgrade")))
    plan_id = Trimmed(data_key="planId", required=True, validate=ID_LENGTH)
    proration_behavior = fields.String(
        data_key="prorationBehavior", validate=validate.OneOf(PRORATION_BEHAVIORS)
    )


class PreviewBillingSchema(BaseSchema):
    """The next invoice after the previewed change."""

    date = Timestamp(attribute="next_billing_date")
    amount = Money(attribute="next_billing_cents")


class PreviewSchema(BaseSchema):
    """What a plan change would bill, as GET /api/account/subscription/preview shows it."""

    amount_due_now = Money(attribute="amount_due_cents", data_key="amountDueNow")
    proration_amount = Money(attribute="proration_cents", data_key="prorationAmount")
    currency = fields.Constant("USD")
    next_billing = fields.Function(
        lambda preview: PreviewBillingSchema().dump(preview), data_key="nextBilling"
    )


class WebhookReceiptSchema(BaseSchema):
    """The `data` of an accepted webhook delivery."""

    received = fields.Boolean()
    duplicate = fields.Boolean()


subscription_schema = SubscriptionSchema()
dump_subscription = subscription_schema.dump
webhook_receipt_schema = WebhookReceiptSchema()
subscription_create_schema = SubscriptionCreateSchema()
subscription_created_schema = SubscriptionCreatedSchema()
subscription_update_schema = SubscriptionUpdateSchema()
subscription_changed_schema = SubscriptionChangedSchema()
public_plans_schema = PublicPlanSchema(many=True)
invoices_schema = InvoiceSchema(many=True)
preview_query_schema = PreviewQuerySchema()
preview_schema = PreviewSchema()
