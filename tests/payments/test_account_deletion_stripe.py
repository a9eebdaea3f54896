"""Account deletion with the Stripe gateway: localstripe cancels; an unreachable Stripe is a 503."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import Subscription, User

from ..factories import PASSWORD, UserFactory
from ..gunicorn_helpers import free_port
from .conftest import LOCALSTRIPE_KEY, WEBHOOK_SECRET

pytestmark = pytest.mark.slow

VISA = "4242424242424242"


def stripe_app(app_factory, api_base: str):
    """An app whose gateway is Stripe at `api_base`."""
    return app_factory(
        BILLING_PROVIDER="stripe",
        STRIPE_SECRET_KEY=LOCALSTRIPE_KEY,
        STRIPE_API_BASE=api_base,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )


def signed_in(app, email):
    """A client of `app` signed in as `email`."""
    client = app.test_client()
    assert (
        client.post("/api/auth/login", json={"email": email, "password": PASSWORD}).status_code
        == 200
    )
    return client


@pytest.fixture
def subscribed(app_factory, localstripe, localstripe_api):
    """(app on localstripe, its client, the user) with an active yearly subscription."""
    app = stripe_app(app_factory, localstripe)
    with app.app_context():
        try:
            assert app.test_cli_runner().invoke(args=["seed-plans"]).exit_code == 0
            user = UserFactory()
            client = signed_in(app, user.email)
            body = {"planId": "plan_premium_yearly", "paymentMethodId": localstripe_api.card(VISA)}
            assert client.post("/api/account/subscription", json=body).status_code == 201
            yield app, client, user
        finally:
            app.extensions["smartcv_gateway"].close()


def provider_status(localstripe_api) -> str:
    """The status of the only subscription localstripe holds."""
    [subscription] = localstripe_api.call("GET", "/v1/subscriptions?status=all")["data"]
    return subscription["status"]


def test_deletion_cancels_the_subscription_at_stripe(subscribed, localstripe_api):
    _app, client, user = subscribed
    response = client.delete("/api/account", json={"currentPassword": PASSWORD})
    assert response.status_code == 200, response.json
    assert provider_status(localstripe_api) == "canceled"
    [customer] = localstripe_api.call("GET", "/v1/customers")["data"]
    assert customer["email"] in ("", None) and customer["name"] in ("", None)
    assert customer["metadata"]["user_id"].startswith("deleted_")
    db.session.expire_all()
    assert db.session.scalar(sa.select(Subscription.status)) == "CANCELED"
    assert db.session.get(User, user.id).deleted_at is not None


def test_unreachable_stripe_leaves_the_account_intact_and_answers_503(
    subscribed, app_factory, localstripe_api, assert_error
):
    _app, _client, user = subscribed
    offline = stripe_app(app_factory, f"http://127.0.0.1:{free_port()}")
    with offline.app_context():
        try:
            client = signed_in(offline, user.email)
            response = client.delete("/api/account", json={"currentPassword": PASSWORD})
            assert_error(response, 503, "SERVICE_UNAVAILABLE")
            assert client.get("/api/account").json["data"]["email"] == user.email
            db.session.expire_all()
            assert db.session.get(User, user.id).deleted_at is None
            assert db.session.scalar(sa.select(Subscription.status)) == "ACTIVE"
        finally:
            offline.extensions["smartcv_gateway"].close()
    assert provider_status(localstripe_api) == "active"
