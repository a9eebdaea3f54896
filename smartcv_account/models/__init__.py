"""The service's models; importing this package registers every table."""

# The local gateway's tables live beside ours so migrations and tests see them.
from ..payments.local_models import (  # noqa: E402
    LocalCustomer,
    LocalIdempotencyKey,
    LocalInvoice,
    LocalInvoiceItem,
    LocalPaymentMethod,
    LocalSubscription,
)
from .account import AuthSession, BackupCode, User
from .activity import ACTIVITY_TYPES, ActivityEvent
from .billing import (
    LIVE_STATUSES,
    Coupon,
    CouponRedemption,
    Plan,
    Subscription,
    UnreconciledSubscription,
    WebhookEvent,
)
from .idempotency import IdempotencyKey
from .mail import (
    ConfirmationMailCount,
    EmailToken,
    OutboxMessage,
    PasswordResetRequest,
    RenewalReminder,
)

__all__ = [
    "ACTIVITY_TYPES",
    "ActivityEvent",
    "LIVE_STATUSES",
    "AuthSession",
    "BackupCode",
    "ConfirmationMailCount",
    "Coupon",
    "CouponRedemption",
    "IdempotencyKey",
    "EmailToken",
    "LocalCustomer",
    "LocalIdempotencyKey",
    "LocalInvoice",
    "LocalInvoiceItem",
    "LocalPaymentMethod",
    "LocalSubscription",
    "OutboxMessage",
    "PasswordResetRequest",
    "Plan",
    "RenewalReminder",
    "Subscription",
    "UnreconciledSubscription",
    "User",
    "WebhookEvent",
]
