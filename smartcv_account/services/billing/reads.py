"""What the subscription endpoints read: the subscription as the API shows it, plans, invoices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ... import clock
from ...catalogue import FREE_PLAN_ID
from ...extensions import db
from ...models import (
    LIVE_STATUSES,
    Subscription,
    User,
)
from ...payments import get_gateway
from ...payments.base import (
    InvoiceSummary,
)
from ...principal import Principal
from ...rules.entitlement import status_at
from ..locking import load_user
from ..plans import PlanSnapshot, plan_for_display
from ..usage import current_usage
from .provider_state import call_gateway


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """What GET /api/account/subscription shows (the free plan when nothing is paid)."""

    id: str | None
    type: str
    status: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None
    plan: PlanSnapshot | None
    usage: dict
    payment_method: dict | None
    next_billing: dict | None
    pending_change: dict | None = None
    latest_payment: dict | None = None


def subscription_view(user: Principal, client_secret: bool = True) -> SubscriptionView:
    """Assemble the user's subscription, plan, usage, card and next bill.

    The plan comes from the in-process snapshot (services/plans.py): showing it costs no query.
    Nothing here calls the provider or writes: an ended period shows as ended (`status_at`).
    """

    subscription = user.current_subscription
    if subscription is None or status_at(subscription, clock.now()) not in LIVE_STATUSES:
        return SubscriptionView(
            id=None,
            type="FREE",
            status="ACTIVE",
            current_period_start=None,
            current_period_end=None,
            cancel_at_period_end=False,
            trial_end=None,
            plan=plan_for_display(FREE_PLAN_ID),
            usage=current_usage(user),
            payment_method=None,
            next_billing=None,
        )
    plan = plan_for_display(subscription.plan_id)
    card = None
    if subscription.card_last4 is not None:
        card = {
            "type": subscription.payment_method_type,
            "last4": subscription.card_last4,
            "brand": subscription.card_brand,
            "expiry_month": subscription.card_exp_month,
            "expiry_year": subscription.card_exp_year,
        }
    billed = (
        subscription.provider_subscription_id is not None
        and subscription.status in ("ACTIVE", "TRIALING", "PAST_DUE")
        and not subscription.cancel_at_period_end
    )
    next_billing = None
    if billed:
        amount = subscription.next_invoice_amount_cents
        next_billing = {
            "date": subscription.current_period_end,
            # What the provider's upcoming invoice charges; the list price until it has said.
            "amount_cents": plan.price_cents if amount is None else amount,
            "currency": plan.currency,
        }
    pending_change = None
    lapse = subscription.pending_expires_at
    if subscription.pending_plan_id is not None and (lapse is None or lapse > clock.now()):
        pending_change = {
            "plan_id": subscription.pending_plan_id,
            "expires_at": subscription.pending_expires_at,
        }
    return SubscriptionView(
        latest_payment=_latest_payment(subscription, plan.currency, client_secret),
        id=subscription.public_id,
        type=plan.type,
        status=subscription.status,
        current_period_start=subscription.current_period_start,
        current_period_end=subscription.current_period_end,
        cancel_at_period_end=subscription.cancel_at_period_end,
        trial_end=subscription.trial_end,
        plan=plan,
        usage=current_usage(user),
        payment_method=card,
        next_billing=next_billing,
        pending_change=pending_change,
    )


def _latest_payment(subscription, currency: str, client_secret: bool) -> dict | None:
    """What is owed and how to finish paying it, or None when nothing is owed.

    The client secret is read only then (the session check never loads secrets), and never for
    the data export (`client_secret=False`).
    """
    if subscription.latest_payment_status is None:
        return None
    secret = None
    if client_secret:
        secret = db.session.scalar(
            sa.select(Subscription.client_secret).where(Subscription.id == subscription.id)
        )
    return {
        "status": subscription.latest_payment_status,
        "amount_cents": subscription.latest_payment_cents or 0,
        "currency": currency,
        "client_secret": secret,
        "hosted_invoice_url": subscription.hosted_invoice_url,
    }


def list_invoices(user: User) -> list[InvoiceSummary]:
    """Return the user's invoices at the provider, newest first (none before a first create)."""
    customer_id = load_user(user.id).billing_customer_id
    if customer_id is None:
        return []
    return call_gateway(get_gateway().list_invoices, customer_id)
