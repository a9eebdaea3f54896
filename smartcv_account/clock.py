"""The one seam through which the service reads the time.

Billing periods and prorations are computed from `now()`, so tests can pin the clock and
assert amounts to the cent and periods to the second.

Outside production the time can also be moved forward, as Stripe's test clocks move a
customer's time: the offset is kept in a small file (`TEST_CLOCK_FILE`, in the instance folder
by default) that every worker and instance on the machine reads. A worker `stat`s it at most
once per RECHECK_SECONDS and re-reads it only when it was replaced, so the hot paths stay as
they were.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

ZERO = timedelta(0)
# A worker looks at the offset file at most this often: a burst of reads shares one `stat`, and
# a `flask clock advance` in another process takes far longer than this to finish.
RECHECK_SECONDS = 0.01

_frozen: datetime | None = None
_offset_file: Path | None = None
# (inode, mtime, size) of the offset file when it was last read, and the offset it held.
_seen: tuple[tuple[int, int, int] | None, timedelta] = (None, ZERO)
_checked_at = float("-inf")


def now() -> datetime:
    """Return the current time as an aware UTC datetime with second precision."""
    current = _frozen if _frozen is not None else datetime.now(UTC) + offset()
    return current.replace(microsecond=0)


def freeze(moment: datetime | None) -> None:
    """Pin the clock to `moment` (aware), or release it with None. Tests only."""
    global _frozen
    if moment is not None and moment.tzinfo is None:
        raise ValueError("freeze() needs an aware datetime")
    _frozen = moment.astimezone(UTC) if moment is not None else None


def use_offset_file(path: Path | None) -> None:
    """Read the moved time from `path` (None: real time only, as in production)."""
    global _offset_file, _seen, _checked_at
    _offset_file = path
    _seen, _checked_at = (None, ZERO), float("-inf")


def offset_file() -> Path | None:
    """Return the file the moved time is kept in, or None when the clock cannot be moved."""
    return _offset_file


def offset() -> timedelta:
    """Return how far the test clock has been moved forward (zero when it never was)."""
    global _seen, _checked_at
    if _offset_file is None:
        return ZERO
    checked_at = time.monotonic()
    if checked_at - _checked_at < RECHECK_SECONDS:
        return _seen[1]
    _checked_at = checked_at
    try:
        stat = os.stat(_offset_file)
    except FileNotFoundError:
        _seen = (None, ZERO)
        return ZERO
    key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    if _seen[0] != key:
        _seen = (key, _read_offset(_offset_file))
    return _seen[1]


def _current_offset() -> timedelta:
    """Return the offset in the file now, ignoring the recheck interval (for a writer)."""
    global _checked_at
    _checked_at = float("-inf")
    return offset()


def _read_offset(path: Path) -> timedelta:
    """Return the offset stored in `path` (zero if it vanished in between)."""
    try:
        return timedelta(seconds=int(json.loads(path.read_text())["offset_seconds"]))
    except FileNotFoundError:
        return ZERO


def move_forward(delta: timedelta) -> datetime:
    """Move the shared test clock forward by `delta` and return the new time."""
    global _seen
    if _offset_file is None:
        raise RuntimeError("the test clock is not enabled")
    total = _current_offset() + delta
    previous = _seen[0][1] if _seen[0] is not None else 0
    # Replace, never rewrite in place: a reader sees the old file or the new one, not half.
    temporary = _offset_file.with_name(f".{_offset_file.name}.{os.getpid()}")
    temporary.write_text(json.dumps({"offset_seconds": int(total.total_seconds())}))
    # A strictly newer mtime, so readers notice even a write within one timestamp tick.
    stamp = max(time.time_ns(), previous + 1)
    os.utime(temporary, ns=(stamp, stamp))
    os.replace(temporary, _offset_file)
    stat = os.stat(_offset_file)
    _seen = ((stat.st_ino, stat.st_mtime_ns, stat.st_size), total)
    return now()


def reset() -> None:
    """Go back to real time."""
    global _seen
    if _offset_file is not None:
        _offset_file.unlink(missing_ok=True)
        _seen = (None, ZERO)


def isoformat(moment: datetime | None) -> str | None:
    """Render a datetime as the contract's `YYYY-MM-DDTHH:MM:SSZ`, or None."""
    if moment is None:
        return None
    return _isoformat(moment)


@lru_cache(maxsize=4096)
def _isoformat(moment: datetime) -> str:
    """`isoformat` of an aware datetime (remembered: a user's timestamps recur on every read)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
