"""Operator commands: `flask --app wsgi <command>`."""

from __future__ import annotations

import json

import click
import sqlalchemy as sa
from flask import Flask

from . import catalogue
from .extensions import db
from .mail.cli import mail_status_command, mail_worker_command
from .models import User
from .payments import get_gateway
from .payments.local import LocalGateway
from .services import accounts, billing, sessions


def register_cli(app: Flask) -> None:
    """Attach the commands to the app."""
    for command in (
        revoke_sessions_command,
        seed_plans_command,
        assign_plan_command,
        advance_subscriptions_command,
        local_authenticate_command,
        mail_worker_command,
        mail_status_command,
    ):
        app.cli.add_command(command)


def _user_by_email(email: str) -> User:
    """Return the user with this email, or stop the command with a message."""
    user = db.session.scalar(sa.select(User).where(User.email == accounts.normalise_email(email)))
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


@click.command("seed-plans")
def seed_plans_command() -> None:
    """Create or update the plans and the WELCOME20 coupon (safe to run again)."""
    plans, coupons = billing.seed_plans(catalogue.PLANS, catalogue.COUPONS)
    click.echo(f"seeded {plans} plans and {coupons} coupon(s)")


@click.command("assign-plan")
@click.argument("email")
@click.argument("plan_id")
def assign_plan_command(email: str, plan_id: str) -> None:
    """Put EMAIL on PLAN_ID without billing (enterprise or comped); plan_free ends it."""
    user = _user_by_email(email)
    try:
        subscription = billing.assign_plan(user, plan_id)
    except (LookupError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    label = subscription.public_id if subscription else "the free plan"
    click.echo(f"{user.email} is now on {plan_id} ({label})")


@click.command("advance-subscriptions")
def advance_subscriptions_command() -> None:
    """Renew or end every subscription whose period is over (run it from cron)."""
    count = billing.advance_due_subscriptions()
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
