"""A provider call never outlasts the request: with its retries it gives up in time for a 503.

Stripe's library retries a failed call up to `max_network_retries` times with back-off, each
try waiting up to its timeout; the request's budget (PROVIDER_TIME_BUDGET_SECONDS, below
gunicorn's 30 s worker timeout) caps them all together.
"""

from __future__ import annotations

import time

import pytest

from smartcv_account.payments import budget
from smartcv_account.payments.base import GatewayUnavailable
from smartcv_account.payments.stripe import StripeGateway

from .test_stripe_create_retry import SUBSCRIBE, service_on
from .test_stripe_gateway_requests import stripe_error, stub

pytestmark = pytest.mark.slow
__all__ = ["stub"]


@pytest.fixture
def retrying_gateway(stub):
    """A gateway that retries twice with a 3-second timeout per call, as against Stripe."""
    gateway = StripeGateway("sk_test_stub", stub.url, "whsec", max_network_retries=2)
    gateway._http._timeout = 3  # the per-call timeout, shortened for the test
    yield gateway
    gateway.close()
    budget.start(None)


def test_without_a_budget_retries_add_up(retrying_gateway, stub):
    stub.answer("GET", "/v1/customers/cus_1", stripe_error("api_error", "Down"), 500)
    with pytest.raises(GatewayUnavailable):
        retrying_gateway.customer_user_id("cus_1")
    assert len(stub.sent("GET", "/v1/customers/cus_1")) == 3  # the library's two retries ran


def test_a_spent_budget_starts_no_retry(retrying_gateway, stub):
    stub.answer("GET", "/v1/customers/cus_1", stripe_error("api_error", "Down"), 500)
    budget.start(2)
    with pytest.raises(GatewayUnavailable):
        retrying_gateway.customer_user_id("cus_1")
    assert len(stub.sent("GET", "/v1/customers/cus_1")) == 1


def test_a_slow_provider_is_cut_off_at_the_budget(retrying_gateway, stub):
    stub.answer("GET", "/v1/customers/cus_1", {"id": "cus_1"}, delay=2.5)
    budget.start(1.2)
    started = time.monotonic()
    with pytest.raises(GatewayUnavailable):
        retrying_gateway.customer_user_id("cus_1")
    assert time.monotonic() - started < 2.0


def test_a_request_answers_503_within_its_budget(app_factory, stub):
    stub.answer("POST", "/v1/customers", {"id": "cus_1", "object": "customer"}, delay=4)
    with service_on(
        app_factory, stub, STRIPE_MAX_NETWORK_RETRIES="2", PROVIDER_TIME_BUDGET_SECONDS=2
    ) as client:
        started = time.monotonic()
        response = client.post("/api/account/subscription", json=SUBSCRIBE)
        took = time.monotonic() - started
        shown = client.get("/api/account/subscription").json["data"]

    assert response.status_code == 503, response.json
    assert response.json["code"] == "SERVICE_UNAVAILABLE"
    assert took < 3.0
    assert shown["id"] is None  # nothing was kept
