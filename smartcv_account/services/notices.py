"""The messages that tell an account's owner what happened: one function per notice.

Security notices go to the account's address whatever its preferences; billing notices only
while `preferences.emailNotifications` is on. None carries a secret or a link that signs
anyone in. Each writes to the outbox in the caller's transaction (the caller commits).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import clock
from ..extensions import db
from ..mail import outbox
from ..mail.names import third_party_name
from ..models import Plan, RenewalReminder, Subscription, User

log = logging.getLogger(__name__)

RENEWAL_NOTICE_AHEAD = timedelta(days=7)


def _security(user: User, template: str, **context) -> None:
    """Queue a security notice to the account's current address."""
    outbox.enqueue(
        user.email, template, user_id=user.id, name=user.name, email=user.email, **context
    )


# --- security: always ---------------------------------------------------------------------------


def password_changed(user: User) -> None:
    """Tell the owner their password was changed from the security settings."""
    _security(user, "notice_password_changed")


def password_reset(user: User) -> None:
    """Tell the owner their password was reset with an emailed link."""
    _security(user, "notice_password_reset")


def two_factor_enabled(user: User) -> None:
    """Tell the owner two-factor authentication was turned on."""
    _security(user, "notice_two_factor_enabled")


def two_factor_disabled(user: User) -> None:
    """Tell the owner two-factor authentication was turned off."""
    _security(user, "notice_two_factor_disabled")


def passkey_added(user: User, passkey_name: str) -> None:
    """Tell the owner a passkey was added (it signs in without the password)."""
    _security(user, "notice_passkey_added", passkey_name=passkey_name)


def passkey_removed(user: User, passkey_name: str) -> None:
    """Tell the owner a passkey was removed."""
    _security(user, "notice_passkey_removed", passkey_name=passkey_name)


def identity_linked(user: User, provider: str) -> None:
    """Tell the owner an account at an identity provider now signs in to theirs."""
    _security(user, "notice_identity_linked", provider=provider)


def identity_unlinked(user: User, provider: str) -> None:
    """Tell the owner an account at an identity provider no longer signs in to theirs."""
    _security(user, "notice_identity_unlinked", provider=provider)


def api_key_created(user: User, key_name: str, prefix: str, scopes: list[str]) -> None:
    """Tell the owner an API key was made (its name, prefix and scopes; never the secret)."""
    _security(
        user, "notice_api_key_created", key_name=key_name, prefix=prefix, scopes=", ".join(scopes)
    )


def email_change_requested(user: User, new_email: str) -> None:
    """Tell the current address that a change to `new_email` waits for confirmation."""
    _security(user, "notice_email_change_requested", new_email=new_email)


def email_changed(user: User, old_email: str) -> None:
    """Tell the old address that the account's email is now `user.email`."""
    outbox.enqueue(
        old_email,
        "notice_email_changed",
        user_id=user.id,
        name=user.name,
        email=old_email,
        new_email=user.email,
    )


def removed_from_team(user: User, team_name: str) -> None:
    """Tell a member that someone removed them from a team (its plan no longer applies).

    The team's name was chosen by another user, so it is shown as a name in third-party mail.
    """
    _security(user, "notice_team_removed", team_name=third_party_name(team_name))


def account_deleted(email: str) -> None:
    """Tell the old address the account was deleted (call before its data is erased).

    The one message left after the erasure: it names no one and belongs to no account.
    """
    outbox.enqueue(email, "notice_account_deleted", email=email)


# --- billing: only with preferences.emailNotifications ------------------------------------------


def _billing(subscription: Subscription, template: str, always: bool = False, **context) -> None:
    """Queue a billing notice to the subscriber, if they want billing email (or `always`)."""
    user = db.session.get(User, subscription.user_id)
    if user is None or not (always or user.email_notifications):
        return
    plan = db.session.get(Plan, subscription.plan_id)
    outbox.enqueue(
        user.email,
        template,
        user_id=user.id,
        name=user.name,
        email=user.email,
        plan_name=plan.name if plan else subscription.plan_id,
        **context,
    )


def payment_failed(subscription: Subscription) -> None:
    """Tell the subscriber a payment failed (the subscription is now past due)."""
    _billing(subscription, "notice_payment_failed")


def payment_needs_authentication(subscription: Subscription) -> None:
    """Tell the subscriber their bank asks them to confirm a payment."""
    _billing(subscription, "notice_payment_action_required")


def subscription_canceled(subscription: Subscription) -> None:
    """Tell the subscriber the subscription has ended."""
    _billing(subscription, "notice_subscription_canceled")


def trial_ending(subscription: Subscription, amount_cents: int | None, currency: str) -> None:
    """Tell the subscriber the trial ends soon: the charge to come, or that a card is needed.

    Sent whatever the preferences: it announces a charge, or the end of the paid features.
    """
    amount = None
    if amount_cents is not None:
        amount = f"{amount_cents // 100}.{amount_cents % 100:02d}"
    _billing(
        subscription,
        "notice_trial_ending",
        always=True,
        ends_on=subscription.trial_end.strftime("%Y-%m-%d"),
        amount=amount,
        currency=currency,
    )


def trial_canceled(subscription: Subscription) -> None:
    """Tell the subscriber the trial ended with no card and the account is on FREE again."""
    _billing(subscription, "notice_trial_canceled", always=True)


def renewal_upcoming(subscription: Subscription) -> None:
    """Tell the subscriber a yearly plan renews in about a week, and for how much (the
    provider's amount for the next invoice)."""
    plan = db.session.get(Plan, subscription.plan_id)
    # What the renewal will charge (credit balance, pending prorations), not the list price.
    cents = subscription.next_invoice_amount_cents
    if cents is None:
        cents = plan.price_cents or 0
    _billing(
        subscription,
        "notice_renewal_upcoming",
        renews_on=subscription.current_period_end.strftime("%Y-%m-%d"),
        amount=f"{cents // 100}.{cents % 100:02d}",
        currency=plan.currency,
    )


def remind_yearly_renewals(limit: int = 500) -> int:
    """Queue the renewal notice of every yearly subscription renewing within 7 days, once a period.

    A `renewal_reminders` row per subscription and period records the reminder, so a scan that
    runs again (or on another worker at the same time) writes no second one.
    """
    now = clock.now()
    already = sa.select(RenewalReminder.id).where(
        RenewalReminder.subscription_id == Subscription.id,
        RenewalReminder.period_end == Subscription.current_period_end,
    )
    due = db.session.scalars(
        sa.select(Subscription)
        .join(Plan, Plan.id == Subscription.plan_id)
        .where(
            Plan.interval == "year",
            Subscription.status.in_(("ACTIVE", "TRIALING")),
            Subscription.cancel_at_period_end.is_(False),
            Subscription.provider_subscription_id.is_not(None),
            Subscription.current_period_end > now,
            Subscription.current_period_end <= now + RENEWAL_NOTICE_AHEAD,
            ~already.exists(),
        )
        .limit(limit)
    ).all()
    written = 0
    for subscription in due:
        try:
            with db.session.begin_nested():
                db.session.add(
                    RenewalReminder(
                        subscription_id=subscription.id,
                        period_end=subscription.current_period_end,
                        created_at=now,
                    )
                )
                db.session.flush()
                renewal_upcoming(subscription)
        except IntegrityError:
            continue  # another worker wrote this period's reminder first
        written += 1
    db.session.commit()
    return written
