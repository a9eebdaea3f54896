"""A create retried after the provider timed out finds the first (Stripe's idempotent requests).

The whole service runs on the Stripe gateway, pointed at the recording server: the first
`POST /v1/subscriptions` fails as a timeout would (a 500 Stripe may have acted on), the user
retries, and the retry carries the same idempotency key, so Stripe answers with what it did the
first time and no second subscription is made.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from smartcv_account import catalogue
from smartcv_account.extensions import db
from smartcv_account.models import Coupon, Plan

from ..factories import PASSWORD, UserFactory
from .test_stripe_gateway_requests import payment_method, stripe_error, stub, subscription

pytestmark = pytest.mark.slow
__all__ = ["stub"]

SUBSCRIBE = {"planId": "plan_premium_monthly", "paymentMethodId": "pm_visa"}


@contextmanager
def service_on(app_factory, stub, **config):
    """The service on the Stripe gateway at the recording server, plans in its tables."""
    app = app_factory(
        **{
            "BILLING_PROVIDER": "stripe",
            "STRIPE_SECRET_KEY": "sk_test_stub",
            "STRIPE_API_BASE": stub.url,
            "STRIPE_WEBHOOK_SECRET": "whsec_retry",
            **config,
        }
    )
    with app.app_context():
        try:
            db.session.add_all(Plan(**values) for values in catalogue.PLANS)
            db.session.add_all(Coupon(**values) for values in catalogue.COUPONS)
            user = UserFactory()
            client = app.test_client()
            login = {"email": user.email, "password": PASSWORD}
            assert client.post("/api/auth/login", json=login).status_code == 200
            yield client
        finally:
            app.extensions["smartcv_gateway"].close()


def answer_customer_and_card(stub) -> None:
    """The customer and the card the create makes first (the same on every attempt)."""
    stub.answer("POST", "/v1/customers", {"id": "cus_1", "object": "customer"})
    stub.answer("POST", "/v1/payment_methods/pm_visa/attach", payment_method())
    stub.answer("POST", "/v1/customers/cus_1", {"id": "cus_1", "object": "customer"})


def test_a_retried_create_sends_the_first_attempts_key(app_factory, stub):
    answer_customer_and_card(stub)
    stub.answer("POST", "/v1/subscriptions", stripe_error("api_error", "Timed out"), 500)
    stub.answer("POST", "/v1/subscriptions", subscription())
    with service_on(app_factory, stub) as client:
        first = client.post("/api/account/subscription", json=SUBSCRIBE)
        retried = client.post("/api/account/subscription", json=SUBSCRIBE)
        shown = client.get("/api/account/subscription").json["data"]

    assert (first.status_code, retried.status_code) == (503, 201)
    keys = [
        request.headers["idempotency-key"] for request in stub.sent("POST", "/v1/subscriptions")
    ]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert (shown["status"], shown["id"]) == ("ACTIVE", retried.json["data"]["subscriptionId"])


def test_another_card_or_plan_is_another_intent(app_factory, stub):
    answer_customer_and_card(stub)
    stub.answer("POST", "/v1/payment_methods/pm_other/attach", payment_method("pm_other"))
    stub.answer("POST", "/v1/subscriptions", stripe_error("api_error", "Timed out"), 500)
    with service_on(app_factory, stub) as client:
        client.post("/api/account/subscription", json=SUBSCRIBE)
        client.post("/api/account/subscription", json={**SUBSCRIBE, "paymentMethodId": "pm_other"})
        client.post(
            "/api/account/subscription", json={**SUBSCRIBE, "planId": "plan_premium_yearly"}
        )

    keys = [
        request.headers["idempotency-key"] for request in stub.sent("POST", "/v1/subscriptions")
    ]
    assert len(keys) == len(set(keys)) == 3
