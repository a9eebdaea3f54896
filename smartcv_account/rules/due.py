"""Due: whether the provider has work for a subscription now (a period over, a retry, expiry),
and whether a trial's "ends in 3 days" notice is due.

Writers (`billing.live_subscription`) ask it of one loaded row in Python; the scheduled job
(`billing.advance_due_subscriptions`) finds every due row with its SQL form. Both are here;
`tests/test_rules.py` checks that they agree on every case.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..models import LIVE_STATUSES, Subscription
from .entitlement import INCOMPLETE_EXPIRY

# Stripe sends `customer.subscription.trial_will_end` three days before a trial ends.
TRIAL_NOTICE_AHEAD = timedelta(days=3)


def is_due(subscription: Any, now: datetime) -> bool:
    """Tell whether the provider has work for this subscription at `now`.

    An INCOMPLETE subscription is due once the provider would have expired it, and a pending
    plan change (Stripe's `pending_update`) once its `expires_at` has passed.
    """
    if subscription.provider_subscription_id is None or subscription.status not in LIVE_STATUSES:
        return False
    end = subscription.current_period_end
    if end is not None and end <= now:
        return True
    retry = subscription.next_payment_attempt
    if subscription.status == "PAST_DUE" and retry is not None and retry <= now:
        return True
    lapse = subscription.pending_expires_at
    if lapse is not None and lapse <= now:
        return True  # a plan change left unpaid lapses: its invoice is voided
    return (
        subscription.status == "INCOMPLETE" and subscription.created_at <= now - INCOMPLETE_EXPIRY
    )


def due_sql(now: datetime) -> sa.ColumnElement[bool]:
    """`is_due` in SQL over the `subscriptions` row."""
    row = Subscription.__table__.c
    return sa.and_(
        row.status.in_(LIVE_STATUSES),
        row.provider_subscription_id.is_not(None),
        sa.or_(
            row.current_period_end <= now,
            sa.and_(row.status == "PAST_DUE", row.next_payment_attempt <= now),
            row.pending_expires_at <= now,
            sa.and_(row.status == "INCOMPLETE", row.created_at <= now - INCOMPLETE_EXPIRY),
        ),
    )


def trial_notice_due(subscription: Any, now: datetime) -> bool:
    """Tell whether the trial ends within TRIAL_NOTICE_AHEAD and its notice was not sent.

    Not for a trial already over (its end is recorded first) or canceled within the trial
    (no charge and no card to ask for).
    """
    end = subscription.trial_end
    return (
        subscription.status == "TRIALING"
        and subscription.provider_subscription_id is not None
        and not subscription.cancel_at_period_end
        and subscription.trial_notice_sent_at is None
        and end is not None
        and now < end <= now + TRIAL_NOTICE_AHEAD
    )


def trial_notice_due_sql(now: datetime) -> sa.ColumnElement[bool]:
    """`trial_notice_due` in SQL over the `subscriptions` row."""
    row = Subscription.__table__.c
    return sa.and_(
        row.status == "TRIALING",
        row.provider_subscription_id.is_not(None),
        sa.not_(row.cancel_at_period_end),
        row.trial_notice_sent_at.is_(None),
        row.trial_end > now,
        row.trial_end <= now + TRIAL_NOTICE_AHEAD,
    )
