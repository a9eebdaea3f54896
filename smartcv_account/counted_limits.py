"""What the limits counted in the database share: a setting's budget, the switch, the 429.

The guessing limit (services/guessing.py) and the confirmation mails per address
(mail/quota.py) count in the database, so that they are exact across workers and instances
whatever `RATELIMIT_STORAGE_URI` is; they read their budgets in Flask-Limiter's notation and
answer as its limits do.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from flask import current_app
from limits import parse

from . import clock
from .errors import ApiError


def enabled() -> bool:
    """Tell whether limits apply (`RATELIMIT_ENABLED=0` turns these off with the others)."""
    return bool(current_app.config.get("RATELIMIT_ENABLED", True))


def budget(setting: str) -> tuple[int, timedelta]:
    """Return how many a window of `setting` ("10 per 15 minutes") allows, and its length."""
    limit = parse(current_app.config[setting])
    return limit.amount, timedelta(seconds=limit.get_expiry())


def refusal(reason: str, window_ends: datetime) -> ApiError:
    """The 429 of a spent budget: `reason` and when to try again, with `Retry-After`."""
    seconds = max(1, math.ceil((window_ends - clock.now()).total_seconds()))
    return ApiError(
        "RATE_LIMITED",
        f"{reason}; try again in {seconds} second{'s' * (seconds != 1)}.",
        {"retryAfter": seconds},
        headers={"Retry-After": str(seconds)},
    )
