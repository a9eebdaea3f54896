"""Helpers of the passwordless sign-in tests: an account made by social sign-in, and its
browser signed in at a chosen time."""

from __future__ import annotations

import secrets

from flask import Flask
from flask.testing import FlaskClient

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import LinkedIdentity, Passkey, User
from smartcv_account.services import sessions
from smartcv_account.services.identity import new_public_id

from .factories import UserFactory


def passwordless_user(provider: str = "idp", identities: int = 1) -> User:
    """An account without a password, with `identities` linked identities (committed)."""
    user = UserFactory(password_hash=None, email_verified_at=clock.now())
    for number in range(identities):
        db.session.add(
            LinkedIdentity(
                public_id=new_public_id("idn"),
                user_id=user.id,
                provider=provider,
                issuer=f"https://{provider}.example",
                subject=f"{user.public_id}-{number}",
                email=user.email,
                created_at=clock.now(),
            )
        )
    db.session.commit()
    return user


def add_passkey(user_id: int, name: str = "Laptop") -> Passkey:
    """A passkey row for the user (committed), as a registration leaves it."""
    passkey = Passkey(
        public_id=new_public_id("pk"),
        user_id=user_id,
        credential_id=secrets.token_urlsafe(32),
        public_key=secrets.token_bytes(77),
        sign_count=0,
        name=name,
        backed_up=False,
        created_at=clock.now(),
    )
    db.session.add(passkey)
    db.session.commit()
    return passkey


def session_client(app: Flask, user: User) -> FlaskClient:
    """A browser holding a session of `user` that signed in now (by the clock)."""
    token = sessions.start_session(user)
    db.session.commit()
    client = app.test_client()
    client.set_cookie("smartcv_session", token, domain="localhost")
    return client
