"""Billing over time, black-box: gunicorn with two workers, moved by `flask clock advance`.

Each test runs the service as deployed on a migrated database (temporary SQLite, or the
PostgreSQL database of DATABASE_URL), moves the shared test clock with the operator's CLI in
another process, and watches the result over HTTP: renewals, a cancel at period end, a failed
renewal paid by a new card, dunning that runs out, and the monthly usage reset.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
import sqlalchemy as sa

from .gunicorn_helpers import flask_cli, gunicorns, service_env

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
INTERNAL_TOKEN = "multi-instance-internal-token"  # gunicorn_helpers.service_env


@dataclass
class Service:
    """A running service, its environment (for the CLI) and its database."""

    url: str
    env: dict[str, str]
    engine: sa.Engine

    def cli(self, *args: str) -> str:
        """Run `flask --app wsgi ARGS` against the same database and clock."""
        return flask_cli(self.env, *args, timeout=120).stdout

    def invoices(self, customer: Customer, reason: str | None = None) -> list[tuple[str, int]]:
        """(status, amount paid) of a customer's invoices at the local provider, oldest first."""
        query = (
            "SELECT i.status, i.amount_paid FROM local_invoices i"
            " JOIN local_customers c ON c.id = i.customer_id WHERE c.email = :email"
            + (" AND i.billing_reason = :reason" if reason else "")
            + " ORDER BY i.created_at, i.id"
        )
        with self.engine.connect() as connection:
            rows = connection.execute(sa.text(query), {"email": customer.email, "reason": reason})
            return [tuple(row) for row in rows]


@pytest.fixture
def service(served_database, tmp_path) -> Iterator[Service]:
    """The service under gunicorn with a test clock of its own, plans seeded."""
    env = service_env(served_database, TEST_CLOCK_FILE=str(tmp_path / "clock.json"))
    engine = sa.create_engine(served_database.replace("postgresql://", "postgresql+psycopg://"))
    flask_cli(env, "seed-plans")
    with gunicorns(env, count=1, workers=2) as (instance,):
        yield Service(instance.url, env, engine)
    engine.dispose()


class Customer:
    """A user of the service, signed in through a cookie jar of their own."""

    def __init__(self, service: Service) -> None:
        self.base = service.url
        self.http = requests.Session()
        self.email = f"clock-{uuid.uuid4().hex[:12]}@example.com"
        body = {"email": self.email, "password": PASSWORD, "name": "Clock Test"}
        response = self.http.post(self.base + "/api/auth/register", json=body, timeout=10)
        assert response.status_code == 201, response.text

    def sign_in(self) -> None:
        """Sign in again (a 30-day session does not outlive a month of moved time)."""
        body = {"email": self.email, "password": PASSWORD}
        response = self.http.post(self.base + "/api/auth/login", json=body, timeout=10)
        assert response.status_code == 200, response.text

    def subscription(self) -> dict:
        """GET the subscription."""
        response = self.http.get(self.base + "/api/account/subscription", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def account(self) -> dict:
        """GET the account."""
        return self.http.get(self.base + "/api/account", timeout=10).json()["data"]

    def subscribe(self) -> dict:
        """Subscribe to Premium Monthly with pm_card_visa."""
        body = {"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa"}
        response = self.http.post(self.base + "/api/account/subscription", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["data"]

    def change(self, action: str, **fields) -> requests.Response:
        """PUT a subscription action."""
        body = {"action": action, **fields}
        return self.http.put(self.base + "/api/account/subscription", json=body, timeout=30)


@pytest.fixture
def monthly(service) -> Customer:
    """A customer on Premium Monthly, paid with pm_card_visa."""
    customer = Customer(service)
    customer.subscribe()
    return customer


@pytest.fixture
def failed_renewal(service, monthly) -> Customer:
    """A monthly customer whose card declines from now on, a month (and a day) later."""
    response = monthly.change("update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    assert response.status_code == 200, response.text
    service.cli("clock", "advance", "31d")
    monthly.sign_in()
    return monthly


def test_a_monthly_renewal_bills_again(service, monthly):
    first = monthly.subscription()
    service.cli("clock", "advance", "31d")
    monthly.sign_in()
    renewed = monthly.subscription()
    assert (renewed["status"], renewed["currentPeriodStart"]) == (
        "ACTIVE",
        first["currentPeriodEnd"],
    )
    assert service.invoices(monthly) == [("paid", 2999), ("paid", 2999)]


def test_a_cancel_at_period_end_returns_the_user_to_free(service, monthly):
    assert monthly.change("cancel").status_code == 200
    service.cli("clock", "advance", "31d")
    monthly.sign_in()
    view = monthly.subscription()
    assert (view["id"], view["type"], view["status"]) == (None, "FREE", "ACTIVE")
    assert monthly.account()["subscriptionStatus"] == "CANCELED"
    assert service.invoices(monthly) == [("paid", 2999)]


def test_a_failed_renewal_is_past_due(service, failed_renewal):
    assert failed_renewal.subscription()["status"] == "PAST_DUE"
    assert failed_renewal.account()["resumesLimit"] == 5
    assert service.invoices(failed_renewal, "subscription_cycle") == [("open", 0)]


def test_a_new_card_pays_the_past_due_invoice(service, failed_renewal):
    response = failed_renewal.change("update_payment_method", paymentMethodId="pm_card_visa")
    assert response.status_code == 200, response.text
    assert failed_renewal.subscription()["status"] == "ACTIVE"
    assert service.invoices(failed_renewal, "subscription_cycle") == [("paid", 2999)]


def test_retries_that_run_out_end_in_canceled(service, failed_renewal):
    service.cli("clock", "advance", "5d")
    view = failed_renewal.subscription()
    assert (view["id"], view["type"]) == (None, "FREE")
    assert failed_renewal.account()["subscriptionStatus"] == "CANCELED"
    assert service.invoices(failed_renewal, "subscription_cycle") == [("uncollectible", 0)]


def test_the_monthly_usage_reset_happens(service):
    customer = Customer(service)
    user_id = customer.account()["id"]
    response = requests.post(
        f"{service.url}/api/internal/users/{user_id}/usage",
        json={"metric": "apiRequests", "delta": 7},
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    reset_date = customer.subscription()["usage"]["resetDate"]
    assert customer.subscription()["usage"]["apiRequestsUsed"] == 7
    service.cli("clock", "advance", "32d")
    customer.sign_in()
    usage = customer.subscription()["usage"]
    assert usage["apiRequestsUsed"] == 0
    assert usage["resetDate"] > reset_date


def test_a_trial_is_noticed_then_billed_as_the_clock_moves(service):
    customer = Customer(service)
    body = {
        "planId": "plan_premium_monthly",
        "paymentMethodId": "pm_card_visa",
        "couponCode": "WELCOME20",
        "trial": True,
    }
    response = customer.http.post(service.url + "/api/account/subscription", json=body, timeout=30)
    assert response.status_code == 201, response.text
    assert customer.subscription()["status"] == "TRIALING"
    notices = (
        "SELECT count(*) FROM mail_outbox WHERE kind = 'notice_trial_ending' AND to_address = :to"
    )

    service.cli("clock", "advance", "11d")
    with service.engine.connect() as connection:
        assert connection.execute(sa.text(notices), {"to": customer.email}).scalar() == 1
    assert service.invoices(customer, "subscription_cycle") == []

    service.cli("clock", "advance", "3d")
    customer.sign_in()
    view = customer.subscription()
    assert (view["status"], view["currentPeriodStart"]) == ("ACTIVE", view["trialEnd"])
    assert service.invoices(customer, "subscription_cycle") == [("paid", 2399)]


def test_a_trial_without_a_card_ends_on_free(service):
    customer = Customer(service)
    body = {"planId": "plan_premium_yearly", "trial": True}
    response = customer.http.post(service.url + "/api/account/subscription", json=body, timeout=30)
    assert response.status_code == 201, response.text

    service.cli("clock", "advance", "15d")
    customer.sign_in()
    view = customer.subscription()
    assert (view["id"], view["type"]) == (None, "FREE")
    assert customer.account()["subscriptionStatus"] == "CANCELED"


def test_payments_waiting_on_the_customer_as_the_clock_moves(service):
    """A 3-D Secure card: the upgrade left unpaid lapses a day later (a new one is allowed),
    and the renewal a month later waits on the customer (PAST_DUE, requires_action)."""
    customer = Customer(service)
    body = {"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_authenticationRequired"}
    response = customer.http.post(service.url + "/api/account/subscription", json=body, timeout=30)
    assert response.status_code == 201, response.text
    intent = response.json()["data"]["clientSecret"].split("_secret_")[0]
    service.cli("local-authenticate", intent)
    assert customer.subscription()["status"] == "ACTIVE"
    upgrade = {"planId": "plan_premium_yearly"}
    assert customer.change("upgrade", **upgrade).json()["data"]["requiresAction"] is True
    assert customer.change("upgrade", **upgrade).status_code == 409  # one change at a time

    service.cli("clock", "advance", "1d")
    view = customer.subscription()
    assert (view["pendingChange"], view["plan"]["id"]) == (None, "plan_premium_monthly")
    assert customer.change("upgrade", **upgrade).status_code == 200

    service.cli("clock", "advance", "31d")
    customer.sign_in()
    view = customer.subscription()
    assert view["status"] == "PAST_DUE"
    assert view["latestPayment"]["status"] == "requires_action"
