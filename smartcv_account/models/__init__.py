"""The service's models; importing this package registers its tables.

The local payment gateway's tables live with it (`payments/local/models.py`); the app factory
declares them (`payments.register_payments`).
"""

from .account import AuthSession, BackupCode, User
from .activity import ACTIVITY_TYPES, ActivityEvent
from .api_key import ApiKey
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
from .signin import LinkedIdentity, Passkey, WebAuthnChallenge
from .teams import (
    TEAM_ACTIVITY_TYPES,
    TEAM_ROLES,
    Team,
    TeamEvent,
    TeamInvitation,
    TeamMember,
)

__all__ = [
    "ACTIVITY_TYPES",
    "ActivityEvent",
    "ApiKey",
    "LIVE_STATUSES",
    "AuthSession",
    "BackupCode",
    "ConfirmationMailCount",
    "Coupon",
    "CouponRedemption",
    "IdempotencyKey",
    "LinkedIdentity",
    "Passkey",
    "WebAuthnChallenge",
    "EmailToken",
    "OutboxMessage",
    "PasswordResetRequest",
    "Plan",
    "RenewalReminder",
    "Subscription",
    "TEAM_ACTIVITY_TYPES",
    "TEAM_ROLES",
    "Team",
    "TeamEvent",
    "TeamInvitation",
    "TeamMember",
    "UnreconciledSubscription",
    "User",
    "WebhookEvent",
]
