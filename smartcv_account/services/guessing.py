"""The guessing limit: answers to an account's secrets, counted per account in the database.

Every endpoint that asks for the password or a second-factor code (login, password reset,
the security settings, the email change, deletion) counts against one budget per account:
`RATELIMIT_SECURITY_FAILURES_PER_USER` wrong answers (10 per 15 minutes by default) in a window
that starts with the first answer counted. Once the budget is spent every further try is 429
`RATE_LIMITED`, even with the right answer, until the window has passed.

The count lives on the user's row (`secret_attempts`, `secret_attempts_since`), so it is exact
across workers and instances whatever the rate limiter's storage. The caller holds the row
locked (`locking.lock_*`) for the whole check: concurrent answers for one account are judged
one after another, never two on the same count. An answer is counted *before* it is judged
(`reserve`); a right answer gives its count back (`accept`), a wrong one keeps it and is
recorded in the activity, committed on its own (`refuse`). A try refused for any other reason
rolls the whole transaction back, its count included.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .. import clock, counted_limits
from ..errors import ApiError, field_error
from ..extensions import db
from ..models import User
from . import activity, credentials
from .second_factor import accept_second_factor, invalid_two_factor_code, two_factor_required


def reserve(user: User) -> None:
    """Count one answer of the locked `user` before it is judged, or refuse with 429."""
    if not counted_limits.enabled():
        return
    amount, window = counted_limits.budget("RATELIMIT_SECURITY_FAILURES_PER_USER")
    now = clock.now()
    since = user.secret_attempts_since
    if since is None or since + window <= now:
        user.secret_attempts, user.secret_attempts_since = 0, now
    elif user.secret_attempts >= amount:
        raise counted_limits.refusal("Too many wrong answers for this account", since + window)
    user.secret_attempts += 1


def accept(user: User) -> None:
    """Give back the count of an answer that was right (the caller commits with its change)."""
    if counted_limits.enabled() and user.secret_attempts > 0:
        user.secret_attempts -= 1


def refuse(user: User, event: str, details: dict[str, Any], error: ApiError) -> NoReturn:
    """Keep the wrong answer's count, record it, commit that alone, and raise `error`."""
    activity.record(user.id, event, details)
    db.session.commit()
    raise error


def confirm_secrets(
    user: User,
    action: str,
    *,
    password: str | None = None,
    second_factor: bool = False,
    two_factor_code: str | None = None,
) -> None:
    """Check the answers a guarded change asks for, counted by the guessing limit.

    `password`, when given, must be the user's current one. With `second_factor` and two-factor
    on, `two_factor_code` must be a current TOTP code or an unused backup code. The caller holds
    `user` locked (`lock_user`); a wrong answer is recorded as `secret_refused` for `action`.
    """
    reserve(user)
    if password is not None and not credentials.check_password(password, user.password_hash):
        refuse(
            user,
            "secret_refused",
            {"action": action, "reason": "currentPassword"},
            field_error("INVALID_PASSWORD", "Current password is incorrect.", "currentPassword"),
        )
    if second_factor and user.two_factor_enabled:
        if not two_factor_code:
            accept(user)  # no code was offered, so none was guessed
            raise two_factor_required()
        if not accept_second_factor(user, two_factor_code):
            refuse(
                user,
                "secret_refused",
                {"action": action, "reason": "twoFactorCode"},
                invalid_two_factor_code(),
            )
    accept(user)
