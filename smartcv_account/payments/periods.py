"""Billing periods as Stripe counts them: calendar months from the anchor (both gateways)."""

from __future__ import annotations

import calendar
from datetime import datetime


def add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months, clamping the day as Stripe does (Jan 31 + 1 month = Feb 28/29)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def period_end(anchor: datetime, interval: str, cycles: int) -> datetime:
    """Return the end of billing cycle number `cycles` (1-based) counted from `anchor`."""
    return add_months(anchor, cycles * (12 if interval == "year" else 1))
