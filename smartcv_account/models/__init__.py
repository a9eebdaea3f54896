"""The service's models; importing this package registers every table."""

# The local gateway's tables live beside ours so migrations and tests see them.
from ..payments.local_models import (  # noqa: E402
    LocalCustomer,
    LocalInvoice,
    LocalPaymentMethod,
    LocalSubscription,
)
from .account import AuthSession, BackupCode, User
from .activity import ACTIVITY_TYPES, ActivityEvent
from .billing import (
    ENTITLED_STATUSES,
    LIVE_STATUSES,
    Coupon,
    Plan,
    Subscription,
    WebhookEvent,
)

__all__ = [
    "ACTIVITY_TYPES",
    "ActivityEvent",
    "ENTITLED_STATUSES",
    "LIVE_STATUSES",
    "AuthSession",
    "BackupCode",
    "Coupon",
    "LocalCustomer",
    "LocalInvoice",
    "LocalPaymentMethod",
    "LocalSubscription",
    "Plan",
    "Subscription",
    "User",
    "WebhookEvent",
]
