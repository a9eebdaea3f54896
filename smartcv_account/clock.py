"""The one seam through which the service reads the time.

Billing periods and prorations are computed from `now()`, so tests can pin the clock and
assert amounts to the cent and periods to the second.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

_frozen: datetime | None = None


def now() -> datetime:
    """Return the current time as an aware UTC datetime with second precision."""
    current = _frozen if _frozen is not None else datetime.now(UTC)
    return current.replace(microsecond=0)


def freeze(moment: datetime | None) -> None:
    """Pin the clock to `moment` (aware), or release it with None. Tests only."""
    global _frozen
    if moment is not None and moment.tzinfo is None:
        raise ValueError("freeze() needs an aware datetime")
    _frozen = moment.astimezone(UTC) if moment is not None else None


def isoformat(moment: datetime | None) -> str | None:
    """Render a datetime as the contract's `YYYY-MM-DDTHH:MM:SSZ`, or None."""
    if moment is None:
        return None
    return _isoformat(moment)


@lru_cache(maxsize=4096)
def _isoformat(moment: datetime) -> str:
    """`isoformat` of an aware datetime (remembered: a user's timestamps recur on every read)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
