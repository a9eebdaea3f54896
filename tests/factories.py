"""Test data factories (factory_boy) writing through the app's session."""

from __future__ import annotations

import factory

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import User
from smartcv_account.services import credentials
from smartcv_account.services.identity import new_public_id

PASSWORD = "correct horse battery staple"


class UserFactory(factory.alchemy.SQLAlchemyModelFactory):
    """A user with default preferences, zero usage and the password PASSWORD."""

    class Meta:
        model = User
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"

    public_id = factory.LazyFunction(lambda: new_public_id("user"))
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    password_hash = factory.LazyFunction(lambda: credentials.hash_password(PASSWORD))
    language = "en"
    timezone = "UTC"
    theme = "light"
    email_notifications = True
    marketing_emails = False
    resumes_created = 0
    api_requests_used = 0
    storage_used = 0
    two_factor_enabled = False
    created_at = factory.LazyFunction(clock.now)
    updated_at = factory.LazyFunction(clock.now)
