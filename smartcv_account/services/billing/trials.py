"""Trials: the notice sent three days before a trial ends (Stripe's `trial_will_end`).

The scheduled job (and the test clock) sends every notice that fell due; with Stripe the
`customer.subscription.trial_will_end` event sends it too. Whichever comes first sends it, once:
`trial_notice_sent_at` is set by a conditional UPDATE before the notice is queued.
"""

from __future__ import annotations

import sqlalchemy as sa

from ... import clock
from ...extensions import db
from ...models import Subscription
from ...rules.due import trial_notice_due, trial_notice_due_sql
from .. import notices


def send_trial_notices(limit: int = 500) -> int:
    """Queue the notice of every trial ending within three days; return how many were sent."""
    now = clock.now()
    due = db.session.scalars(
        sa.select(Subscription).where(trial_notice_due_sql(now)).limit(limit)
    ).all()
    sent = sum(send_trial_notice(subscription) for subscription in due)
    db.session.commit()
    return sent


def send_trial_notice(subscription: Subscription) -> bool:
    """Queue this trial's ending notice unless it is not due or was sent (no commit).

    With a card it announces the first charge (the provider's amount for the next invoice);
    without one it asks for a card.
    """
    now = clock.now()
    if not trial_notice_due(subscription, now):
        return False
    claimed = db.session.execute(
        sa.update(Subscription)
        .where(Subscription.id == subscription.id, Subscription.trial_notice_sent_at.is_(None))
        .values(trial_notice_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return False  # another worker sent it
    subscription.trial_notice_sent_at = now
    has_card = subscription.payment_method_id is not None
    amount = subscription.next_invoice_amount_cents
    if amount is None and has_card:
        amount = subscription.plan.price_cents
    notices.trial_ending(subscription, amount if has_card else None, subscription.plan.currency)
    return True
