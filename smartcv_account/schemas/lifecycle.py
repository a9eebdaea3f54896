"""Schemas of the sessions, activity, export and account deletion endpoints."""

from __future__ import annotations

from marshmallow import fields, validate

from ..models import ACTIVITY_TYPES
from .account import SUBSCRIPTION_STATUSES, AccountSchema, MembershipSchema
from .api_keys import ApiKeyRecordSchema
from .base import (
    BaseSchema,
    Timestamp,
    Trimmed,
    about,
    current_password_field,
    next_cursor_field,
)
from .invoices import InvoiceSchema
from .signin import IdentitySchema, PasskeySchema
from .subscription import PaymentMethodSchema, SubscriptionSchema

MAX_ACTIVITY_PAGE = 100
DEFAULT_ACTIVITY_PAGE = 50
IP_ADDRESS = "The client address it came from, or null when unknown."
USER_AGENT = "The browser's User-Agent, or null when unknown."
USER_AGENT_EXAMPLE = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Firefox/128.0"


class SessionSchema(BaseSchema):
    """One live session in GET /api/account/sessions."""

    id = fields.String(metadata=about("The session's id.", "ses_4b7d1e9a2c6f8e30"))
    created_at = Timestamp(data_key="createdAt", metadata=about("When it signed in."))
    last_seen_at = Timestamp(data_key="lastSeenAt", metadata=about("When it was last used."))
    ip_address = fields.String(
        data_key="ipAddress", allow_none=True, metadata=about(IP_ADDRESS, "203.0.113.7")
    )
    user_agent = fields.String(
        data_key="userAgent", allow_none=True, metadata=about(USER_AGENT, USER_AGENT_EXAMPLE)
    )
    current = fields.Boolean(
        metadata=about("Whether this is the session making the request.", True)
    )


class SessionRecordSchema(SessionSchema):
    """A session record in the export: ended ones too, with when and how they ended."""

    expires_at = Timestamp(data_key="expiresAt", metadata=about("When it expires or expired."))
    revoked_at = Timestamp(
        data_key="revokedAt",
        allow_none=True,
        metadata=about("When it was signed out or revoked, or null."),
    )


class RevokedSchema(BaseSchema):
    """The `data` of DELETE /api/account/sessions."""

    revoked = fields.Integer(metadata=about("How many other sessions were ended.", 2))


class ActivityQuerySchema(BaseSchema):
    """GET /api/account/activity's query string."""

    limit = fields.Integer(
        load_default=DEFAULT_ACTIVITY_PAGE,
        validate=validate.Range(1, MAX_ACTIVITY_PAGE),
        metadata=about("How many events to return (1-100, default 50).", 50),
    )
    before = Trimmed(
        # `$` would also match before a final newline, but Trimmed has removed any by now;
        # the pattern stays one that JavaScript (the document's readers) understands.
        validate=validate.Regexp(
            r"^evt_[0-9a-f]{24}$", error="Unknown cursor: pass a nextCursor as given."
        ),
        metadata=about(
            "The nextCursor of the previous page: events older than it.",
            "evt_0123456789abcdef01234567",
        ),
    )


class ActivityEventSchema(BaseSchema):
    """One event of the activity log."""

    id = fields.String(
        attribute="public_id",
        metadata=about("The event's id.", "evt_0123456789abcdef01234567"),
    )
    type = fields.String(
        validate=validate.OneOf(ACTIVITY_TYPES),
        metadata=about("What happened.", "login_succeeded"),
    )
    created_at = Timestamp(data_key="createdAt", metadata=about("When it happened."))
    ip_address = fields.String(
        data_key="ipAddress", allow_none=True, metadata=about(IP_ADDRESS, "203.0.113.7")
    )
    user_agent = fields.String(
        data_key="userAgent", allow_none=True, metadata=about(USER_AGENT, USER_AGENT_EXAMPLE)
    )
    details = fields.Dict(
        metadata=about(
            "More about the event, by type (e.g. subscriptionId and planId for subscription "
            "events); {} when there is nothing more.",
            {},
        )
    )


class ActivityPageSchema(BaseSchema):
    """The `data` of GET /api/account/activity."""

    events = fields.List(
        fields.Nested(ActivityEventSchema), metadata=about("Events, newest first.")
    )
    next_cursor = next_cursor_field()


class SecuritySummarySchema(BaseSchema):
    """The export's security settings, without a secret."""

    two_factor_enabled = fields.Boolean(
        data_key="twoFactorEnabled", metadata=about("Whether two-factor is on.", True)
    )
    backup_codes_remaining = fields.Integer(
        data_key="backupCodesRemaining", metadata=about("Unused backup codes.", 8)
    )


class SubscriptionRecordSchema(BaseSchema):
    """A subscription the user has had, as the export lists it."""

    id = fields.String(
        attribute="public_id", metadata=about("The subscription's id.", "sub_3f1a9c0d2e4b6a8c")
    )
    plan_id = fields.String(
        data_key="planId", metadata=about("The plan subscribed to.", "plan_premium_monthly")
    )
    status = fields.String(
        validate=validate.OneOf(SUBSCRIPTION_STATUSES),
        metadata=about("Its status.", "CANCELED"),
    )
    current_period_start = Timestamp(
        data_key="currentPeriodStart",
        allow_none=True,
        metadata=about("The last paid period's start, or null if it never had one."),
    )
    current_period_end = Timestamp(
        data_key="currentPeriodEnd",
        allow_none=True,
        metadata=about("The last paid period's end, or null if it never had one."),
    )
    cancel_at_period_end = fields.Boolean(
        data_key="cancelAtPeriodEnd", metadata=about("Whether it was set to end then.", False)
    )
    canceled_at = Timestamp(
        data_key="canceledAt", allow_none=True, metadata=about("When it ended, or null.")
    )
    trial_end = Timestamp(
        data_key="trialEnd", allow_none=True, metadata=about("When its trial ended, or null.")
    )
    coupon_code = fields.String(
        data_key="couponCode",
        allow_none=True,
        metadata=about("The coupon used, or null.", "WELCOME20"),
    )
    payment_method = fields.Method(
        "_card",
        data_key="paymentMethod",
        metadata={
            "anyOf": [{"$ref": "#/components/schemas/PaymentMethod"}, {"type": "null"}],
            **about("The card it was paid with, or null."),
        },
    )
    created_at = Timestamp(data_key="createdAt", metadata=about("When it was created."))
    updated_at = Timestamp(data_key="updatedAt", metadata=about("When it last changed."))

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


class MembershipRecordSchema(MembershipSchema):
    """A membership in the export, with when it began."""

    joined_at = Timestamp(data_key="joinedAt", metadata=about("When the user joined."))


class ExportSchema(BaseSchema):
    """GET /api/account/export: everything the service holds about the user."""

    exported_at = Timestamp(data_key="exportedAt", metadata=about("When the export was made."))
    account = fields.Nested(AccountSchema, metadata=about("The account, as GET /api/account."))
    teams = fields.List(
        fields.Nested(MembershipRecordSchema), metadata=about("The teams the user belongs to.")
    )
    security = fields.Nested(
        SecuritySummarySchema, metadata=about("Security settings, without secrets.")
    )
    sessions = fields.List(
        fields.Nested(SessionRecordSchema), metadata=about("Every session, ended ones too.")
    )
    activity = fields.List(
        fields.Nested(ActivityEventSchema), metadata=about("The activity log, newest first.")
    )
    subscription = fields.Nested(SubscriptionSchema, metadata=about("The current subscription."))
    subscriptions = fields.List(
        fields.Nested(SubscriptionRecordSchema),
        metadata=about("Every subscription the user has had."),
    )
    invoices = fields.List(fields.Nested(InvoiceSchema), metadata=about("Every invoice."))
    passkeys = fields.List(
        fields.Nested(PasskeySchema), metadata=about("The passkeys (no key material).")
    )
    identities = fields.List(
        fields.Nested(IdentitySchema), metadata=about("The linked identities at providers.")
    )
    api_keys = fields.List(
        fields.Nested(ApiKeyRecordSchema),
        data_key="apiKeys",
        metadata=about("Every API key kept, revoked ones too (no secret, no hash)."),
    )


class AccountDeleteSchema(BaseSchema):
    """DELETE /api/account: the password, and the second factor when it is on."""

    current_password = current_password_field()
    two_factor_code = Trimmed(
        data_key="twoFactorCode",
        load_only=True,
        validate=validate.Length(max=16),
        metadata=about(
            "Required when two-factor is on: an authenticator or backup code.", "123456"
        ),
    )


session_schema = SessionSchema()
sessions_schema = SessionSchema(many=True)
revoked_schema = RevokedSchema()
activity_query_schema = ActivityQuerySchema()
activity_page_schema = ActivityPageSchema()
export_schema = ExportSchema()
account_delete_schema = AccountDeleteSchema()
