"""Operator commands: `flask --app wsgi <command>`."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask

from .extensions import db
from .models import User
from .services import accounts, sessions


def register_cli(app: Flask) -> None:
    """Attach the commands to the app."""
    app.cli.add_command(revoke_sessions_command)


@click.command("revoke-sessions")
@click.argument("email")
def revoke_sessions_command(email: str) -> None:
    """Sign EMAIL out everywhere by revoking all of their sessions."""
    user = db.session.scalar(sa.select(User).where(User.email == accounts.normalise_email(email)))
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    count = sessions.revoke_user_sessions(user)
    db.session.commit()
    click.echo(f"revoked {count} session(s) of {user.email}")
