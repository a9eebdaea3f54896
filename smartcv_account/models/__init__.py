"""The service's models; importing this package registers every table."""

from .account import AuthSession, BackupCode, User
from .billing import (
    ENTITLED_STATUSES,
    LIVE_STATUSES,
    Coupon,
    Invoice,
    Plan,
    Subscription,
    WebhookEvent,
)

__all__ = [
    "ENTITLED_STATUSES",
    "LIVE_STATUSES",
    "AuthSession",
    "BackupCode",
    "Coupon",
    "Invoice",
    "Plan",
    "Subscription",
    "User",
    "WebhookEvent",
]
