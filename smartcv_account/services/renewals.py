"""Time-driven billing work: renewals, dunning retries, period ends, expiries, the test clock.

Nothing here runs on a read. `flask advance-subscriptions` (cron) and `flask clock advance` (the
test clock) call `run_due_work`; webhooks bring the rest in step with the provider.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import current_app

from .. import clock
from . import billing

# The test clock moves in steps of at most a day, doing what fell due after each step, so a
# long jump (`31d`) runs renewals and retries in the order, and at the times, they fall due.
CLOCK_STEP = timedelta(days=1)
DURATION = re.compile(r"([1-9][0-9]{0,5})([mhd])")
UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
# Ten years: far enough for any billing cycle, near enough that dates stay representable.
MAX_OFFSET = timedelta(days=3660)


class ClockRefused(Exception):
    """The test clock cannot be used here (production, the Stripe gateway, bad input)."""


def run_due_work() -> int:
    """Do every renewal, retry, period end, expiry and trial notice now due; return how many
    subscriptions were advanced.

    Monthly usage resets need no work here: usage is shown and limited with the reset applied
    from the clock (services/usage.py), whether or not the counter has been zeroed yet.
    """
    advanced = billing.advance_due_subscriptions()
    billing.send_trial_notices()
    return advanced


def parse_duration(text: str) -> timedelta:
    """Parse a test-clock duration such as `90m`, `12h` or `31d`."""
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise ClockRefused(f"invalid duration {text!r}: use minutes, hours or days (90m, 12h, 31d)")
    return int(match.group(1)) * UNITS[match.group(2)]


def check_clock_allowed() -> None:
    """Refuse the test clock in production and with any gateway but the local one."""
    if current_app.config["ENV_NAME"] == "production":
        raise ClockRefused("the test clock is not available in production")
    if current_app.config["BILLING_PROVIDER"] != "local":
        raise ClockRefused("the test clock needs BILLING_PROVIDER=local (Stripe runs its own)")
    if clock.offset_file() is None:
        raise ClockRefused("the test clock is disabled (TEST_CLOCK_FILE is empty)")


def advance_clock(duration: timedelta) -> tuple[datetime, int]:
    """Move the shared test clock forward, doing what falls due on the way.

    Returns the new time and how many subscriptions were advanced.
    """
    check_clock_allowed()
    if clock.offset() + duration > MAX_OFFSET:
        raise ClockRefused("the test clock moves at most ten years ahead of real time")
    advanced = 0
    remaining = duration
    while remaining > timedelta(0):
        step = min(CLOCK_STEP, remaining)
        clock.move_forward(step)
        advanced += run_due_work()
        remaining -= step
    return clock.now(), advanced


def reset_clock() -> datetime:
    """Put the test clock back to real time."""
    check_clock_allowed()
    clock.reset()
    return clock.now()
