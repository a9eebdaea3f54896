"""Schemas of the sessions, activity, export and account deletion endpoints."""

from __future__ import annotations

from marshmallow import fields, validate

from .account import AccountSchema
from .base import BaseSchema, Timestamp, Trimmed
from .subscription import InvoiceSchema, PaymentMethodSchema, SubscriptionSchema

MAX_ACTIVITY_PAGE = 100
DEFAULT_ACTIVITY_PAGE = 50


class SessionSchema(BaseSchema):
    """One live session in GET /api/account/sessions."""

    id = fields.String()
    created_at = Timestamp(data_key="createdAt")
    last_seen_at = Timestamp(data_key="lastSeenAt")
    ip_address = fields.String(data_key="ipAddress", allow_none=True)
    user_agent = fields.String(data_key="userAgent", allow_none=True)
    current = fields.Boolean()


class SessionRecordSchema(SessionSchema):
    """A session record in the export: ended ones too, with when and how they ended."""

    expires_at = Timestamp(data_key="expiresAt")
    revoked_at = Timestamp(data_key="revokedAt")


class RevokedSchema(BaseSchema):
    """The `data` of DELETE /api/account/sessions."""

    revoked = fields.Integer()


class ActivityQuerySchema(BaseSchema):
    """GET /api/account/activity's query string."""

    limit = fields.Integer(
        load_default=DEFAULT_ACTIVITY_PAGE, validate=validate.Range(1, MAX_ACTIVITY_PAGE)
    )
    before = Trimmed(
        validate=validate.Regexp(
            r"evt_[0-9a-f]{24}\Z", error="Unknown cursor: pass a nextCursor as given."
        )
    )


class ActivityEventSchema(BaseSchema):
    """One event of the activity log."""

    id = fields.String(attribute="public_id")
    type = fields.String()
    created_at = Timestamp(data_key="createdAt")
    ip_address = fields.String(data_key="ipAddress", allow_none=True)
    user_agent = fields.String(data_key="userAgent", allow_none=True)
    details = fields.Dict()


class ActivityPageSchema(BaseSchema):
    """The `data` of GET /api/account/activity."""

    events = fields.List(fields.Nested(ActivityEventSchema))
    next_cursor = fields.String(data_key="nextCursor", allow_none=True)


class SecuritySummarySchema(BaseSchema):
    """The export's security settings, without a secret."""

    two_factor_enabled = fields.Boolean(data_key="twoFactorEnabled")
    backup_codes_remaining = fields.Integer(data_key="backupCodesRemaining")


class SubscriptionRecordSchema(BaseSchema):
    """A subscription the user has had, as the export lists it."""

    id = fields.String(attribute="public_id")
    plan_id = fields.String(data_key="planId")
    status = fields.String()
    current_period_start = Timestamp(data_key="currentPeriodStart")
    current_period_end = Timestamp(data_key="currentPeriodEnd")
    cancel_at_period_end = fields.Boolean(data_key="cancelAtPeriodEnd")
    canceled_at = Timestamp(data_key="canceledAt")
    trial_end = Timestamp(data_key="trialEnd")
    coupon_code = fields.String(data_key="couponCode", allow_none=True)
    payment_method = fields.Method("_card", data_key="paymentMethod")
    created_at = Timestamp(data_key="createdAt")
    updated_at = Timestamp(data_key="updatedAt")

    def _card(self, subscription) -> dict | None:
        """The card on file for this subscription (brand, last four digits, expiry)."""
        if subscription.card_last4 is None:
            return None
        return PaymentMethodSchema().dump(
            {
                "type": subscription.payment_method_type,
                "last4": subscription.card_last4,
                "brand": subscription.card_brand,
                "expiry_month": subscription.card_exp_month,
                "expiry_year": subscription.card_exp_year,
            }
        )


class ExportSchema(BaseSchema):
    """GET /api/account/export: everything the service holds about the user."""

    exported_at = Timestamp(data_key="exportedAt")
    account = fields.Nested(AccountSchema)
    security = fields.Nested(SecuritySummarySchema)
    sessions = fields.List(fields.Nested(SessionRecordSchema))
    activity = fields.List(fields.Nested(ActivityEventSchema))
    subscription = fields.Nested(SubscriptionSchema)
    subscriptions = fields.List(fields.Nested(SubscriptionRecordSchema))
    invoices = fields.List(fields.Nested(InvoiceSchema))


class AccountDeleteSchema(BaseSchema):
    """DELETE /api/account: the password, and the second factor when it is on."""

    current_password = fields.String(
        data_key="currentPassword",
        required=True,
        load_only=True,
        validate=validate.Length(max=1024),
    )
    two_factor_code = Trimmed(
        data_key="twoFactorCode", load_only=True, validate=validate.Length(max=16)
    )


session_schema = SessionSchema()
sessions_schema = SessionSchema(many=True)
revoked_schema = RevokedSchema()
activity_query_schema = ActivityQuerySchema()
activity_page_schema = ActivityPageSchema()
export_schema = ExportSchema()
account_delete_schema = AccountDeleteSchema()
