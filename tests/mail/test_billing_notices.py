"""Billing notices: sent only with preferences.emailNotifications, each once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smartcv_account import clock
from smartcv_account.services import notices

from ..billing_helpers import at, change, subscribe
from ..factories import PASSWORD
from ..helpers import subscribed

EMAIL = "ann@example.com"


@pytest.fixture
def client(plans, mail_app):
    """A signed-up browser of the mailing app, with the plans seeded, then the clock pinned.

    It signs up at the real time, so its session outlives the months the tests move through.
    """
    browser = mail_app.test_client()
    body = {"email": EMAIL, "password": PASSWORD, "name": "Ann"}
    assert browser.post("/api/auth/register", json=body).status_code == 201
    clock.freeze(datetime(2025, 1, 1, tzinfo=UTC))
    return browser


def subjects(deliver, inbox) -> list[str]:
    """Deliver the outbox; return the subjects Ann got, the verification link left out."""
    deliver()
    return [m["Subject"] for m in inbox.to(EMAIL) if "Confirm" not in m["Subject"]]


def notifications(client, on: bool) -> None:
    """Turn billing email on or off."""
    client.put("/api/account", json={"preferences": {"emailNotifications": on}})


def test_failed_renewal_sends_payment_failed(client, deliver, inbox):
    subscribed(client)
    change(client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    at(2025, 2, 1)
    assert client.get("/api/account/subscription").json["data"]["status"] == "PAST_DUE"
    assert subjects(deliver, inbox) == ["A payment for your SmartCV subscription failed"]


def test_no_billing_notice_without_email_notifications(client, deliver, inbox):
    notifications(client, False)
    subscribed(client)
    change(client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    at(2025, 3, 1)
    assert client.get("/api/account").json["data"]["subscriptionStatus"] == "CANCELED"
    assert subjects(deliver, inbox) == []


def test_subscription_ending_sends_subscription_canceled(client, deliver, inbox):
    subscribed(client)
    change(client, "cancel")
    assert subjects(deliver, inbox) == []  # a pending cancel has not ended anything yet
    at(2025, 2, 1)
    assert subjects(deliver, inbox) == ["Your SmartCV subscription has ended"]


def test_payment_needing_authentication_sends_a_notice(client, deliver, inbox):
    response = subscribe(client, payment_method="pm_card_authenticationRequired")
    assert response.json["data"]["requiresAction"] is True
    assert subjects(deliver, inbox) == ["Your SmartCV payment needs your confirmation"]


def test_yearly_renewal_reminder_goes_once_a_week_ahead(client, deliver, inbox, mail_app):
    subscribed(client, "plan_premium_yearly")
    end = datetime.fromisoformat(
        client.get("/api/account/subscription").json["data"]["currentPeriodEnd"]
    )
    clock.freeze(end - timedelta(days=8))
    assert notices.remind_yearly_renewals() == 0
    clock.freeze(end - timedelta(days=7))
    assert notices.remind_yearly_renewals() == 1
    assert notices.remind_yearly_renewals() == 0
    clock.freeze(end - timedelta(days=2))
    result = mail_app.test_cli_runner().invoke(args=["mail-worker", "--once"])
    assert result.exit_code == 0, result.output
    [reminder] = subjects(deliver, inbox)
    assert reminder == f"Your SmartCV yearly subscription renews on {end:%Y-%m-%d}"
    assert "299.99 USD" in inbox.to(EMAIL)[-1].get_content()


def test_monthly_plans_get_no_renewal_reminder(client, mail_app):
    subscribed(client)
    clock.freeze(datetime(2025, 1, 28, tzinfo=UTC))
    assert notices.remind_yearly_renewals() == 0
