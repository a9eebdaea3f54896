"""What a new subscription would bill: the same arithmetic for both gateways' create previews.

Stripe's rules: the first invoice is the plan's price less the coupon (rounded to the cent),
then the customer's credit balance is applied (`amount_due`); a trial charges nothing now and
bills that invoice at `trial_end`. The next invoice after a paid first one is the list price,
less what credit is left.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .base import ChangePreview, CouponLike, PlanLike
from .periods import period_end


def coupon_discount(price_cents: int, coupon: CouponLike) -> int:
    """Return the coupon's discount on `price_cents`, rounded half up to the cent."""
    return (2 * price_cents * coupon.percent_off + 100) // 200


def create_preview(
    plan: PlanLike, coupon: CouponLike | None, trial_days: int, balance_cents: int, now: datetime
) -> ChangePreview:
    """Return what creating the subscription now bills now and next (`balance_cents` < 0 is
    credit)."""
    price = plan.price_cents or 0
    first = price - (coupon_discount(price, coupon) if coupon is not None else 0)
    if trial_days > 0:
        return ChangePreview(0, 0, now + timedelta(days=trial_days), max(0, first + balance_cents))
    applied = first + balance_cents
    return ChangePreview(
        0,
        max(0, applied),
        period_end(now, plan.interval, 1),
        max(0, price + min(0, applied)),
    )
