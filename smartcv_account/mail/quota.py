"""How many email-change confirmations and team invitations one address may receive: counted
in the database, together.

Anyone may ask to move their account to any address, and a team's owner may invite and revoke
an address again and again, so without a limit per address a few accounts could fill a
stranger's inbox. `RATELIMIT_EMAIL_CHANGE_MAILS_PER_ADDRESS` (3 per hour
by default) is a fixed window per address: it starts with the first confirmation counted, and
once it is full every further request for that address is 429 `RATE_LIMITED` until it is over.

The count is one row per address (`confirmation_mail_counts`, keyed by the address's SHA-256),
changed by a single `INSERT … ON CONFLICT DO UPDATE … WHERE` in the request's transaction: the
WHERE lets the row change only while the window has room or is over. PostgreSQL evaluates it on
the row's latest version after taking the row's lock, and SQLite runs the statement under its
one writer lock, so concurrent requests are counted one after another and a fourth never goes
through, across every worker and instance. A request that fails later rolls its count back.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .. import clock, counted_limits
from ..extensions import db
from ..models import ConfirmationMailCount

INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _budget() -> tuple[int, timedelta]:
    """Return how many confirmations a window allows and how long a window lasts."""
    return counted_limits.budget("RATELIMIT_EMAIL_CHANGE_MAILS_PER_ADDRESS")


def _key(address: str) -> str:
    """The row's key: the SHA-256 of the (normalised) address, never the address itself."""
    return hashlib.sha256(address.encode("utf-8")).hexdigest()


def reserve_confirmation(address: str) -> None:
    """Count one confirmation to `address` in the caller's transaction, or refuse with 429."""
    if not counted_limits.enabled():
        return
    amount, window = _budget()
    now = clock.now()
    counts = ConfirmationMailCount.__table__
    over = counts.c.window_start <= now - window
    insert = INSERTS[db.engine.dialect.name](counts).values(
        address_hash=_key(address), window_start=now, sent=1
    )
    counted = db.session.execute(
        insert.on_conflict_do_update(
            index_elements=[counts.c.address_hash],
            set_={
                "window_start": sa.case(
                    (over, insert.excluded.window_start), else_=counts.c.window_start
                ),
                "sent": sa.case((over, 1), else_=counts.c.sent + 1),
            },
            where=sa.or_(over, counts.c.sent < amount),
        ).returning(counts.c.sent)
    ).first()
    if counted is None:
        started = db.session.scalar(
            sa.select(counts.c.window_start).where(counts.c.address_hash == _key(address))
        )
        raise counted_limits.refusal(
            "Too many confirmation emails went to this address", started + window
        )


def prune() -> int:
    """Delete the counts whose window is over (the worker's scan; the caller commits)."""
    _, window = _budget()
    result = db.session.execute(
        sa.delete(ConfirmationMailCount).where(
            ConfirmationMailCount.window_start <= clock.now() - window
        )
    )
    return result.rowcount
