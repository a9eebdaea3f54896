"""Local dunning: a failed renewal is PAST_DUE, retried 1, 3 and 5 days later, then CANCELED."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.payments import get_gateway
from smartcv_account.payments.local.models import LocalInvoice, LocalSubscription
from smartcv_account.services import renewals

from .billing_helpers import SUBSCRIPTION_URL, change, paid_invoices, subscribe

RENEWAL = datetime(2025, 2, 1, tzinfo=UTC)


def at(day: int, hour: int = 0) -> datetime:
    """Return a moment in February 2025."""
    return datetime(2025, 2, day, hour, tzinfo=UTC)


def run_at(moment: datetime) -> None:
    """Move the frozen clock to `moment` and run what fell due, as cron does."""
    clock.freeze(moment)
    renewals.run_due_work()


def renewal_invoice() -> LocalInvoice:
    """The renewal invoice of the only local subscription."""
    return db.session.scalar(
        sa.select(LocalInvoice).where(LocalInvoice.billing_reason == "subscription_cycle")
    )


@pytest.fixture
def failing_renewal(auth_client, plans, frozen_clock):
    """A monthly subscription whose card declines from now on, renewed (and declined) on Feb 1."""
    assert subscribe(auth_client).status_code == 201
    response = change(
        auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail"
    )
    assert response.status_code == 200, response.json
    run_at(RENEWAL)
    return auth_client


def status(client) -> str:
    """The subscription status GET shows."""
    return client.get(SUBSCRIPTION_URL).json["data"]["status"]


def test_failed_renewal_is_past_due_with_an_open_invoice(failing_renewal):
    assert status(failing_renewal) == "PAST_DUE"
    invoice = renewal_invoice()
    assert (invoice.status, invoice.attempt_count) == ("open", 1)
    assert invoice.next_payment_attempt == at(2)


def test_past_due_keeps_free_limits(failing_renewal):
    assert failing_renewal.get("/api/account").json["data"]["resumesLimit"] == 5


def test_no_retry_before_its_day(failing_renewal):
    run_at(at(1, 23))
    assert renewal_invoice().attempt_count == 1


@pytest.mark.parametrize(("day", "attempts", "next_day"), [(2, 2, 4), (4, 3, 6)])
def test_retries_follow_the_schedule(failing_renewal, day, attempts, next_day):
    for moment in (at(2), at(4))[: attempts - 1]:
        run_at(moment)
    invoice = renewal_invoice()
    assert (invoice.attempt_count, invoice.next_payment_attempt) == (attempts, at(next_day))
    assert status(failing_renewal) == "PAST_DUE"


def test_last_failed_retry_cancels_and_returns_the_user_to_free(failing_renewal):
    for moment in (at(2), at(4), at(6)):
        run_at(moment)
    view = failing_renewal.get(SUBSCRIPTION_URL).json["data"]
    assert (view["id"], view["type"], view["plan"]["id"]) == (None, "FREE", "plan_free")
    invoice = renewal_invoice()
    assert (invoice.status, invoice.attempt_count, invoice.next_payment_attempt) == (
        "uncollectible",
        4,
        None,
    )
    assert db.session.scalar(sa.select(LocalSubscription.ended_at)) == at(6)


def test_a_late_cron_runs_one_overdue_retry_and_spaces_the_rest(failing_renewal):
    # Days without the job: the overdue retry runs once, the next keeps its gap from it
    # (not every retry back to back, which would cancel at once).
    run_at(at(20))
    invoice = renewal_invoice()
    assert (invoice.attempt_count, invoice.next_payment_attempt) == (2, at(22))
    assert status(failing_renewal) == "PAST_DUE"
    for moment in (at(22), at(24)):
        run_at(moment)
    assert failing_renewal.get(SUBSCRIPTION_URL).json["data"]["type"] == "FREE"
    assert renewal_invoice().attempt_count == 4


def test_a_retry_with_a_working_card_pays_and_reactivates(failing_renewal, user):
    gateway = get_gateway()
    card = gateway.attach_payment_method(user.billing_customer_id, "pm_card_visa")
    local = db.session.scalar(sa.select(LocalSubscription))
    local.default_payment_method_id = card.payment_method_id  # the customer fixed it at Stripe
    db.session.commit()
    run_at(at(2))
    assert status(failing_renewal) == "ACTIVE"
    invoice = renewal_invoice()
    assert (invoice.status, invoice.amount_paid, invoice.next_payment_attempt) == (
        "paid",
        2999,
        None,
    )
    assert len(paid_invoices()) == 2


def test_a_new_card_pays_the_open_invoice(failing_renewal):
    response = change(failing_renewal, "update_payment_method", paymentMethodId="pm_card_visa")
    assert (response.status_code, response.json["data"]["status"]) == (200, "ACTIVE")
    assert renewal_invoice().status == "paid"
    run_at(at(10))
    assert status(failing_renewal) == "ACTIVE"
