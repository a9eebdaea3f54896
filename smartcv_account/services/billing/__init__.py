"""Subscriptions: create, change, cancel, renew, and keep in step with the payment provider.

Money moves only through the gateway (`payments/`); this package decides what may happen and
mirrors the provider's answer into our `subscriptions` table:

- `create`: a new subscription; `changes`: the PUT actions and their previews;
- `provider_state`: the provider's answers and errors mirrored into our rows (every path that
  hears from the provider goes through it); `webhooks`: the provider's events;
- `reads`: the subscription as the API shows it, and invoices;
- `operations`: the scheduler's renewals, operator-assigned plans, the seeded catalogue;
- `trials`: the notice three days before a trial ends.

Its public names are imported here. Gateways only add and flush rows (the local provider's
books live in the same session); the request's COMMIT follows its answer (transaction.py).
The commit points:

- create: (1) the placeholder row is committed before any money moves: the one-live-subscription
  index lets one of several concurrent creates through; (2) after the provider answers, its
  answer is committed with the request, or, when it refused, the placeholder's removal is
  committed together with what the provider kept (the customer, the attached card).
- every change (PUT): one transaction. It starts by locking the live subscription's row
  (`_lock`), re-reads it, calls the provider with an idempotency key derived from the intent
  and the row's version and mirrors the answer; the request commits it. A refused payment
  rolls it all back, except where the contract keeps something (a new card whose payment of
  the open invoice was declined is kept: committed, then 402).
- webhooks and `advance`: one transaction per subscription brought up to date.
"""

from ..plans import get_plan
from .changes import ACTIONS, cancel_immediately, change_subscription, preview_change
from .create import create_subscription, preview_create
from .operations import advance_due_subscriptions, assign_plan, refund_invoice, seed_plans
from .provider_state import live_subscription
from .reads import list_invoices, subscription_view
from .trials import send_trial_notice, send_trial_notices
from .webhooks import handle_webhook

__all__ = [
    "ACTIONS",
    "advance_due_subscriptions",
    "assign_plan",
    "cancel_immediately",
    "change_subscription",
    "create_subscription",
    "get_plan",
    "handle_webhook",
    "list_invoices",
    "live_subscription",
    "preview_change",
    "preview_create",
    "refund_invoice",
    "seed_plans",
    "send_trial_notice",
    "send_trial_notices",
    "subscription_view",
]
