"""The time a request may spend waiting on the payment provider, all calls and retries included.

A web request starts its budget (`http.start_timer`, PROVIDER_TIME_BUDGET_SECONDS, set below
gunicorn's worker timeout); each provider HTTP call then waits at most what is left, and no call
or retry starts once it is spent, so the request answers 503 SERVICE_UNAVAILABLE instead of being
killed with its worker. Commands (no request) have no budget: each call keeps its own timeout.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("provider_deadline", default=None)


class BudgetSpent(Exception):
    """The request's time for the provider is used up."""


def start(seconds: float | None) -> None:
    """Give the current request `seconds` for the provider from now (None or 0: no budget)."""
    _deadline.set(time.monotonic() + seconds if seconds else None)


def remaining() -> float | None:
    """Return the seconds left, or None when there is no budget."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
