"""Payments that wait on the customer never dead-end. A plan change left unpaid lapses at its
`expiresAt` (invoice voided, `pendingChange` gone, a new change allowed), over HTTP and with the
scheduled job only (no direct gateway calls)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import OutboxMessage
from smartcv_account.payments import get_gateway
from smartcv_account.payments.base import UnknownPaymentMethod
from smartcv_account.payments.local.models import LocalInvoice, LocalSubscription

from .billing_helpers import at, authenticate, change, deliver, subscribe
from .helpers import login
from .test_subscription_money import view


@pytest.fixture
def pending_upgrade(auth_client, plans, frozen_clock):
    """An ACTIVE monthly subscription (3-D Secure card) with an upgrade waiting for payment."""
    created = subscribe(auth_client, payment_method="pm_card_authenticationRequired").json["data"]
    gateway = get_gateway()
    body = authenticate(gateway, created["clientSecret"].split("_secret_")[0])
    assert deliver(auth_client, body, gateway.signed_event(body)).status_code == 200
    response = change(auth_client, "upgrade", planId="plan_premium_yearly")
    assert response.json["data"]["requiresAction"] is True
    assert view(auth_client)["pendingChange"]["expiresAt"] == "2025-01-01T23:00:00Z"
    return auth_client


def update_invoice() -> LocalInvoice:
    """The invoice of the pending upgrade."""
    return db.session.scalar(
        sa.select(LocalInvoice).where(LocalInvoice.billing_reason == "subscription_update")
    )


def test_a_pending_change_blocks_another_until_it_lapses(pending_upgrade, assert_error):
    assert_error(
        change(pending_upgrade, "upgrade", planId="plan_premium_yearly"), 409, "INVALID_PLAN_CHANGE"
    )


def test_at_its_expiry_a_read_no_longer_shows_it(pending_upgrade):
    clock.freeze(datetime(2025, 1, 1, 23, tzinfo=UTC))
    shown = view(pending_upgrade)
    assert (shown["pendingChange"], shown["plan"]["id"]) == (None, "plan_premium_monthly")


def test_the_scheduled_job_voids_a_lapsed_change(pending_upgrade):
    at(2025, 1, 1, 23)
    db.session.expire_all()
    assert update_invoice().status == "void"
    shown = view(pending_upgrade)
    assert (shown["pendingChange"], shown["plan"]["id"]) == (None, "plan_premium_monthly")
    # Its payment can no longer be completed: nothing applies later.
    with pytest.raises(UnknownPaymentMethod):
        authenticate(get_gateway(), update_invoice().payment_intent_id)


def test_after_it_lapses_a_new_change_is_allowed(pending_upgrade):
    clock.freeze(datetime(2025, 1, 2, tzinfo=UTC))  # no job has run: the writer brings it up
    response = change(pending_upgrade, "upgrade", planId="plan_premium_yearly")
    assert response.status_code == 200, response.json
    assert response.json["data"]["requiresAction"] is True
    assert view(pending_upgrade)["pendingChange"]["expiresAt"] == "2025-01-02T23:00:00Z"


# --- a create's idempotency key is derived from the intent ----------------------------------------


def local_subscriptions() -> int:
    """How many subscriptions the local provider holds."""
    return db.session.scalar(sa.select(sa.func.count(LocalSubscription.id)))


def test_the_same_declined_create_again_is_the_same_request(auth_client, plans, frozen_clock):
    first = subscribe(auth_client, payment_method="pm_card_chargeCustomerFail")
    again = subscribe(auth_client, payment_method="pm_card_chargeCustomerFail")
    assert (first.status_code, again.status_code) == (402, 402)
    assert again.json["details"]["declineCode"] == "card_declined"
    assert local_subscriptions() == 1  # the provider made one, replayed the second time
    assert subscribe(auth_client).status_code == 201  # another card is another request
    assert local_subscriptions() == 2


def test_a_later_subscription_is_a_new_request(auth_client, plans, frozen_clock):
    assert subscribe(auth_client).status_code == 201
    assert change(auth_client, "cancel").status_code == 200
    at(2025, 2, 2)
    email = db.session.scalar(sa.text("SELECT email FROM users"))
    assert login(auth_client, email).status_code == 200
    assert subscribe(auth_client).status_code == 201
    assert local_subscriptions() == 2


# --- a payment waiting on the customer: latestPayment, requiresAction, never 402 ----------------


def test_nothing_owed_shows_no_latest_payment(premium_client, frozen_clock):
    assert view(premium_client)["latestPayment"] is None


def test_an_incomplete_subscription_shows_how_to_finish_it(auth_client, plans, frozen_clock):
    created = subscribe(auth_client, payment_method="pm_card_authenticationRequired").json["data"]
    latest = view(auth_client)["latestPayment"]
    assert latest == {
        "status": "requires_action",
        "amount": 29.99,
        "currency": "USD",
        "clientSecret": created["clientSecret"],
        "hostedInvoiceUrl": None,
    }


def test_a_renewal_needing_authentication_is_past_due_to_confirm(auth_client, plans, frozen_clock):
    created = subscribe(auth_client, payment_method="pm_card_authenticationRequired").json["data"]
    gateway = get_gateway()
    body = authenticate(gateway, created["clientSecret"].split("_secret_")[0])
    assert deliver(auth_client, body, gateway.signed_event(body)).status_code == 200
    at(2025, 2, 1)
    shown = view(auth_client)
    assert shown["status"] == "PAST_DUE"
    latest = shown["latestPayment"]
    assert (latest["status"], latest["amount"]) == ("requires_action", 29.99)
    kinds = list(db.session.scalars(sa.select(OutboxMessage.kind)))
    assert kinds.count("notice_payment_action_required") == 2  # the create's, the renewal's
    assert "notice_payment_failed" not in kinds
    # The customer confirms it (flask local-authenticate): ACTIVE again, nothing owed.
    renewal = db.session.scalar(
        sa.select(LocalInvoice).where(LocalInvoice.billing_reason == "subscription_cycle")
    )
    body = authenticate(gateway, renewal.payment_intent_id)
    assert deliver(auth_client, body, gateway.signed_event(body)).status_code == 200
    shown = view(auth_client)
    assert (shown["status"], shown["latestPayment"]) == ("ACTIVE", None)


def test_a_new_card_that_needs_authentication_answers_requires_action(
    auth_client, plans, frozen_clock
):
    assert subscribe(auth_client).status_code == 201
    change(auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    at(2025, 2, 1)
    assert view(auth_client)["status"] == "PAST_DUE"
    response = change(
        auth_client, "update_payment_method", paymentMethodId="pm_card_authenticationRequired"
    )
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert (data["requiresAction"], data["nextAction"]) == (True, {"type": "use_stripe_sdk"})
    assert view(auth_client)["latestPayment"]["clientSecret"] == data["clientSecret"]


def test_local_authenticate_completes_a_waiting_payment(auth_client, plans, frozen_clock, runner):
    created = subscribe(auth_client, payment_method="pm_card_authenticationRequired").json["data"]
    intent_id = created["clientSecret"].split("_secret_")[0]
    result = runner.invoke(args=["local-authenticate", intent_id])
    assert result.exit_code == 0, result.output
    assert view(auth_client)["status"] == "ACTIVE"
