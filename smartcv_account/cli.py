"""Operator commands: `flask --app wsgi <command>`."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import click
import flask_migrate.cli
import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from . import catalogue, client, clock, idempotency
from .config import ConfigError
from .errors import ApiError
from .extensions import db
from .models import User
from .payments import get_gateway
from .payments.base import GatewayError
from .payments.local import LocalGateway
from .services import activity, api_keys, billing, identity, renewals, sessions
from .services.teams import plan as team_plan
from .worker import mail_status_command, mail_worker_command


def register_cli(app: Flask) -> None:
    """Attach the commands to the app."""
    for command in (
        revoke_sessions_command,
        revoke_api_keys_command,
        seed_plans_command,
        assign_plan_command,
        advance_subscriptions_command,
        refund_command,
        local_authenticate_command,
        prune_idempotency_command,
        clock_group,
        prune_activity_command,
        mail_worker_command,
        mail_status_command,
    ):
        app.cli.add_command(operator_errors(command))
    # Flask-Migrate's `db` commands reach the operator through the same `flask` entry point.
    for command in flask_migrate.cli.db.commands.values():
        operator_errors(command)


def operator_errors(command: click.Command) -> click.Command:
    """Make every failure of `command` one `Error: ...` line and exit status 1, no traceback."""
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            operator_errors(subcommand)
    if command.callback is None or getattr(command.callback, "reports_operator_errors", False):
        return command
    command.callback = _reporting(command.callback)
    return command


def _reporting(callback: Callable) -> Callable:
    """Wrap a command's callback so that its exceptions become click's one-line errors."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ApiError as error:
            raise click.ClickException(error.message) from None
        except (ConfigError, GatewayError, LookupError, ValueError) as error:
            raise click.ClickException(str(error)) from None
        except SQLAlchemyError as error:
            raise click.ClickException(_database_problem(error)) from None
        except Exception as error:  # noqa: BLE001 - an operator gets a line, the log the trace
            logging.getLogger(__name__).debug("command failed", exc_info=True)
            raise click.ClickException(f"{type(error).__name__}: {error}") from None

    run.reports_operator_errors = True  # type: ignore[attr-defined]
    return run


def _database_problem(error: SQLAlchemyError) -> str:
    """Say what an operator can do about a database error."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return (
            f"the database is missing or not migrated ({text}); check DATABASE_URL and run"
            " `flask --app wsgi db upgrade`"
        )
    return f"the database refused the command ({text}); check DATABASE_URL and that it is up"


def _user_by_email(email: str) -> User:
    """Return the user with this email, or stop the command with a message."""
    user = db.session.scalar(sa.select(User).where(User.email == identity.normalise_email(email)))
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    return user


@click.command("revoke-sessions")
@click.argument("email")
def revoke_sessions_command(email: str) -> None:
    """Sign EMAIL out everywhere by revoking all of their sessions."""
    user = _user_by_email(email)
    count = sessions.revoke_user_sessions(user)
    db.session.commit()
    click.echo(f"revoked {count} session(s) of {user.email}")


@click.command("revoke-api-keys")
@click.argument("email")
def revoke_api_keys_command(email: str) -> None:
    """Revoke every live API key of EMAIL (they stop working at once)."""
    user = _user_by_email(email)
    count = api_keys.revoke_all(user, "operator", client.NOBODY)
    db.session.commit()
    click.echo(f"revoked {count} API key(s) of {user.email}")


@click.command("seed-plans")
def seed_plans_command() -> None:
    """Create or update the plans and the WELCOME20 coupon (safe to run again)."""
    plans, coupons = billing.seed_plans(catalogue.PLANS, catalogue.COUPONS)
    click.echo(f"seeded {plans} plans and {coupons} coupon(s)")


@click.command("assign-plan")
@click.argument(
    "arguments", nargs=-1, required=True, metavar="EMAIL PLAN_ID | --team TEAM_ID PLAN_ID"
)
@click.option("--team", "team_id", help="Put this team on PLAN_ID instead of a user.")
@click.option("--seats", type=click.IntRange(min=1), help="With --team plan_enterprise: seats.")
def assign_plan_command(arguments: tuple[str, ...], team_id: str | None, seats: int | None) -> None:
    """Put EMAIL on PLAN_ID without billing (enterprise or comped); plan_free ends it.

    With --team TEAM_ID: plan_enterprise --seats N gives every member ENTERPRISE limits (N at
    least its members plus pending invitations); plan_free ends it (one seat, invitations
    revoked).
    """
    if team_id is not None:
        if len(arguments) != 1:
            raise click.ClickException("with --team give only PLAN_ID")
        click.echo(team_plan.assign_team_plan(team_id, arguments[0], seats))
        return
    if len(arguments) != 2 or seats is not None:
        raise click.ClickException("give EMAIL PLAN_ID (--seats goes with --team)")
    email, plan_id = arguments
    user = _user_by_email(email)
    before = user.current_subscription
    subscription = billing.assign_plan(user, plan_id)
    if subscription is not None and subscription is before:
        click.echo(f"{user.email} is already on {plan_id} ({subscription.public_id}); no change")
        return
    label = subscription.public_id if subscription else "the free plan"
    click.echo(f"{user.email} is now on {plan_id} ({label})")


@click.command("refund")
@click.argument("invoice_id")
@click.option("--amount", help="Major units to refund (12.34); the whole payment by default.")
@click.option(
    "--reason",
    type=click.Choice(("duplicate", "fraudulent", "requested_by_customer")),
    help="The reason the provider records.",
)
def refund_command(invoice_id: str, amount: str | None, reason: str | None) -> None:
    """Refund all or part of the paid invoice INVOICE_ID (the subscription is not changed)."""
    cents = None
    if amount is not None:
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise click.ClickException(
                f"invalid amount {amount!r}: use major units, 12.34"
            ) from None
        if value <= 0 or value != value.quantize(Decimal("0.01")):
            raise click.ClickException(f"invalid amount {amount!r}: a positive amount, 12.34")
        cents = int(value * 100)
    refunded = billing.refund_invoice(invoice_id, cents, reason)
    click.echo(f"refunded {invoice_id}: {refunded // 100}.{refunded % 100:02d} in all")


@click.command("advance-subscriptions")
def advance_subscriptions_command() -> None:
    """Renew or end every subscription whose period is over (run it from cron)."""
    count = renewals.run_due_work()
    click.echo(f"advanced {count} subscription(s)")


@click.command("local-authenticate")
@click.argument("payment_intent_id")
@click.option("--fail", is_flag=True, help="Fail the challenge instead of passing it.")
def local_authenticate_command(payment_intent_id: str, fail: bool) -> None:
    """Local gateway only: finish a 3-D Secure challenge and deliver the signed event."""
    gateway = get_gateway()
    if not isinstance(gateway, LocalGateway):
        raise click.ClickException("local-authenticate needs BILLING_PROVIDER=local")
    body = gateway.authenticate_payment(payment_intent_id, succeed=not fail)
    billing.handle_webhook(body, gateway.signed_event(body))
    click.echo(f"delivered {json.loads(body)['type']} for {payment_intent_id}")


@click.command("prune-idempotency")
def prune_idempotency_command() -> None:
    """Delete the Idempotency-Key answers older than 24 hours (run it from cron)."""
    count = idempotency.prune()
    db.session.commit()
    click.echo(f"deleted {count} expired idempotency key(s)")


@contextmanager
def _clock_refusals() -> Iterator[None]:
    """Report a refused test-clock command as one `Error: ...` line and exit status 1."""
    try:
        yield
    except renewals.ClockRefused as error:
        raise click.ClickException(str(error)) from None


@click.group("clock")
def clock_group() -> None:
    """Move the local test clock, as Stripe's test clocks do (never in production)."""


@clock_group.command("advance")
@click.argument("duration")
def clock_advance_command(duration: str) -> None:
    """Move time forward by DURATION (90m, 12h, 31d) and do what fell due."""
    with _clock_refusals():
        moment, count = renewals.advance_clock(renewals.parse_duration(duration))
    click.echo(f"the clock is at {clock.isoformat(moment)}; advanced {count} subscription(s)")


@clock_group.command("show")
def clock_show_command() -> None:
    """Print the time the service sees and how far it was moved."""
    with _clock_refusals():
        renewals.check_clock_allowed()
    click.echo(f"{clock.isoformat(clock.now())} (moved {clock.offset()} ahead of real time)")


@clock_group.command("reset")
def clock_reset_command() -> None:
    """Go back to real time."""
    with _clock_refusals():
        moment = renewals.reset_clock()
    click.echo(f"the clock is back at real time: {clock.isoformat(moment)}")


@click.command("prune-activity")
@click.option("--days", type=click.IntRange(min=1), help="Keep this many days (default: config).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True)
def prune_activity_command(days: int | None, batch_size: int) -> None:
    """Delete activity events older than ACTIVITY_RETENTION_DAYS (365), in small batches."""
    keep = days or current_app.config["ACTIVITY_RETENTION_DAYS"]
    count = activity.prune(timedelta(days=keep), batch_size)
    click.echo(f"deleted {count} activity event(s) older than {keep} days")
