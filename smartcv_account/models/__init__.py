"""The service's models; importing this package registers every table."""

# The local gateway's tables live beside ours so migrations and tests see them.
from ..payments.local_models import (  # noqa: E402
    LocalCustomer,
    LocalInvoice,
    LocalPaymentMethod,
    LocalSubscription,
)
from .account import AuthSession, BackupCode, User
from .billing import (
    ENTITLED_STATUSES,
    LIVE_STATUSES,
    Coupon,
    Plan,
    Subscription,
    WebhookEvent,
)
from .mail import EmailToken, OutboxMessage, PasswordResetRequest, RenewalReminder

__all__ = [
    "ENTITLED_STATUSES",
    "LIVE_STATUSES",
    "AuthSession",
    "BackupCode",
    "Coupon",
    "EmailToken",
    "LocalCustomer",
    "LocalInvoice",
    "LocalPaymentMethod",
    "LocalSubscription",
    "OutboxMessage",
    "PasswordResetRequest",
    "Plan",
    "RenewalReminder",
    "Subscription",
    "User",
    "WebhookEvent",
]
