"""Reading Stripe objects: StripeObjects or plain dicts, ids or expanded objects.

Shapes that moved between Stripe API versions (subscription periods, an invoice's subscription,
a line's proration flag) are read from wherever they are, so the gateway keeps working when a
webhook endpoint sends events in another version than the one pinned.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..base import GatewayError


def get(obj: Any, key: str, default: Any = None) -> Any:
    """Return obj[key] when present and not None; stripe 16 objects have no .get()."""
    if obj is None or key not in obj:
        return default
    value = obj[key]
    return default if value is None else value


def id_of(value: Any) -> str | None:
    """Return the id of a field that is either an id or an expanded object."""
    if value is None or isinstance(value, str):
        return value
    return value["id"]


def expanded(value: Any) -> Any | None:
    """Return an expanded object, or None when the field is only an id (or empty)."""
    return None if value is None or isinstance(value, str) else value


def as_dict(value: Any) -> dict[str, Any]:
    """Return a plain dict of a StripeObject (or a dict)."""
    return value.to_dict() if hasattr(value, "to_dict") else dict(value)


def timestamp(value: Any) -> datetime | None:
    """Turn a Unix timestamp into an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def item(subscription: Any) -> Any:
    """Return the subscription's one item (our subscriptions have exactly one)."""
    return subscription["items"]["data"][0]


def interval(subscription: Any) -> str | None:
    """Return the billing interval of the subscription's item (a plan, or a price's recurring)."""
    first = item(subscription)
    plan = get(first, "plan")
    if plan is not None:
        return get(plan, "interval")
    return get(get(get(first, "price"), "recurring"), "interval")


def period(subscription: Any) -> tuple[int, int]:
    """Return (start, end) of the current period: on the subscription up to API 2025-02-24,
    on its items from 2025-03-31 (basil) on."""
    for holder in (subscription, item(subscription)):
        start, end = get(holder, "current_period_start"), get(holder, "current_period_end")
        if start is not None and end is not None:
            return int(start), int(end)
    raise GatewayError(f"subscription {subscription['id']} has no current period")


def latest_intent(subscription: Any) -> Any | None:
    """Return the expanded payment intent of the subscription's latest invoice, if any."""
    invoice = expanded(get(subscription, "latest_invoice"))
    return expanded(get(invoice, "payment_intent")) if invoice is not None else None


def decline(intent: Any) -> tuple[str, str]:
    """Return the decline code and message of a payment intent whose payment failed."""
    error = get(intent, "last_payment_error") or {}
    code = get(error, "decline_code") or get(error, "code") or "card_declined"
    return code, get(error, "message") or "The card was declined."


def invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    """Return an invoice's subscription id (`subscription` before basil, `parent` after)."""
    if get(invoice, "subscription"):
        return id_of(invoice["subscription"])
    details = get(get(invoice, "parent"), "subscription_details")
    return id_of(get(details, "subscription"))


def is_proration(line: Any) -> bool:
    """Tell whether an invoice line is a proration (`proration`, or under `parent` since basil)."""
    if get(line, "proration"):
        return True
    details = get(get(line, "parent"), "subscription_item_details")
    return bool(get(details, "proration"))
