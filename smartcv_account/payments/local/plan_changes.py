"""Plan swaps at the local provider, as Stripe makes them with `pending_if_incomplete`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ... import clock
from ...extensions import db
from ..base import ChangePreview, PlanChange, PlanLike
from ..periods import period_end
from .idempotency import decode, encode, once
from .invoices import add_invoice, pay_on_session
from .models import LocalInvoiceItem, LocalSubscription, new_id
from .prorations import quote
from .views import get_subscription, show

# Stripe discards a pending update whose payment was not completed within 23 hours.
PENDING_UPDATE_EXPIRY = timedelta(hours=23)


def preview_change(
    subscription_id: str, new_plan: PlanLike, proration_behavior: str
) -> ChangePreview:
    """Return what a swap to `new_plan` now would create, bill now and bill next."""
    worked_out = quote(get_subscription(subscription_id), new_plan, proration_behavior, clock.now())
    return ChangePreview(
        worked_out.proration_cents,
        worked_out.amount_due_cents,
        worked_out.next_billing_date,
        worked_out.next_billing_cents,
    )


def change_plan(
    subscription_id: str, new_plan: PlanLike, proration_behavior: str, idempotency_key: str
) -> PlanChange:
    """Swap plans as Stripe does with `payment_behavior=pending_if_incomplete`.

    Same interval keeps the period; a new interval starts one now and bills it now. A
    declined payment voids the invoice and changes nothing; a payment needing 3-D Secure
    leaves the swap pending until it is paid.
    """
    params = {"plan": new_plan.id, "proration_behavior": proration_behavior}

    def run() -> dict[str, Any]:
        change = _change_plan(subscription_id, new_plan, proration_behavior)
        return {
            "subscription": encode(change.subscription),
            "proration_cents": change.proration_cents,
            "amount_due_cents": change.amount_due_cents,
        }

    stored = once(idempotency_key, "change_plan", subscription_id, params, run)
    return PlanChange(
        decode(stored["subscription"]), stored["proration_cents"], stored["amount_due_cents"]
    )


def _change_plan(subscription_id: str, new_plan: PlanLike, proration_behavior: str) -> PlanChange:
    """Do the swap `change_plan` describes (without its idempotency)."""
    subscription = get_subscription(subscription_id)
    now = clock.now()
    worked_out = quote(subscription, new_plan, proration_behavior, now)
    if worked_out.now_lines:
        invoice = add_invoice(subscription, "subscription_update", worked_out.now_lines, now)
        if worked_out.new_period:
            # It pays for the new period, which starts now (as Stripe's invoice does).
            invoice.period_start = now
            invoice.period_end = period_end(now, new_plan.interval, 1)
        pay_on_session(invoice, subscription)
        if invoice.payment_status == "requires_action":
            subscription.pending_plan_id = new_plan.id
            subscription.pending_expires_at = now + PENDING_UPDATE_EXPIRY
            db.session.flush()
            return PlanChange(show(subscription), worked_out.proration_cents, 0)
        amount_due = invoice.amount_paid
    else:
        amount_due = 0
    for later in worked_out.later_lines:
        db.session.add(
            LocalInvoiceItem(
                id=new_id("ii"),
                subscription_id=subscription.id,
                description=later["description"],
                amount=later["amount"],
                created_at=now,
            )
        )
    apply_swap(subscription, new_plan, worked_out.new_period, now)
    db.session.flush()
    return PlanChange(show(subscription), worked_out.proration_cents, amount_due)


def apply_swap(
    subscription: LocalSubscription, new_plan: PlanLike, new_period: bool, now: datetime
) -> None:
    """Put the subscription on `new_plan`; a new interval starts a new period at `now`."""
    subscription.plan_id = new_plan.id
    subscription.pending_plan_id = None
    subscription.pending_expires_at = None
    subscription.cancel_at_period_end = False
    if new_period:
        subscription.billing_anchor = now
        subscription.current_period_start = now
        subscription.current_period_end = period_end(now, new_plan.interval, 1)
