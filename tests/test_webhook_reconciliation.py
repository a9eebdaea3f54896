"""Webhooks reconcile subscriptions with no row, refresh the shown card; reads never call out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import (
    Plan,
    Subscription,
    UnreconciledSubscription,
    User,
    WebhookEvent,
)
from smartcv_account.payments import get_gateway
from smartcv_account.payments.local.models import LocalPaymentMethod, LocalSubscription

from .billing_helpers import SUBSCRIPTION_URL, change, deliver, paid_invoices, subscribe
from .factories import PASSWORD, UserFactory
from .helpers import subscribed


def send(client, event_type: str, obj: dict):
    """Deliver a signed local event about `obj`."""
    gateway = get_gateway()
    body = gateway.event_body(event_type, obj)
    return deliver(client, body, gateway.signed_event(body))


def orphan_for(user: User, payment_method: str = "pm_card_visa") -> str:
    """Make a paid provider subscription for `user` with no row here (a create that died)."""
    gateway = get_gateway()
    plan = db.session.get(Plan, "plan_premium_monthly")
    customer = gateway.ensure_customer(user.public_id, user.email, None)
    card = gateway.attach_payment_method(customer, payment_method)
    provider = gateway.create_subscription(customer, plan, card, None, f"orphan-{user.id}")
    # The provider's books stay; the dying request never linked the customer to the user.
    db.session.commit()
    return provider.id


def subscription_event(subscription_id: str) -> dict:
    """The object of a `customer.subscription.*` event."""
    return {"object": "subscription", "id": subscription_id}


def unreconciled() -> list[UnreconciledSubscription]:
    """The operator's list."""
    return list(db.session.scalars(sa.select(UnreconciledSubscription)))


def test_orphan_of_a_user_without_subscription_is_adopted(auth_client, user, plans):
    orphan = orphan_for(user)
    response = send(auth_client, "customer.subscription.updated", subscription_event(orphan))
    assert response.status_code == 200, response.json
    view = auth_client.get(SUBSCRIPTION_URL).json["data"]
    assert (view["type"], view["status"], view["paymentMethod"]["last4"]) == (
        "PREMIUM",
        "ACTIVE",
        "4242",
    )
    row = db.session.scalar(sa.select(Subscription))
    assert row.provider_subscription_id == orphan
    assert unreconciled() == []


def test_orphan_of_a_user_with_a_live_subscription_is_recorded_and_logged(
    auth_client, user, plans, caplog
):
    orphan = orphan_for(user)
    assert subscribe(auth_client).status_code == 201
    own = auth_client.get(SUBSCRIPTION_URL).json["data"]["id"]
    with caplog.at_level(logging.WARNING):
        response = send(auth_client, "invoice.paid", {"object": "invoice", "subscription": orphan})
    assert response.status_code == 200
    (record,) = unreconciled()
    assert (record.provider_subscription_id, record.reason, record.user_id) == (
        orphan,
        "user_has_live_subscription",
        user.id,
    )
    assert orphan in caplog.text
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["id"] == own


def test_orphan_of_an_unknown_customer_is_recorded(client, plans):
    stranger = UserFactory()
    orphan = orphan_for(stranger)
    db.session.delete(db.session.get(User, stranger.id))
    db.session.commit()
    send(client, "customer.subscription.updated", subscription_event(orphan))
    assert [(r.provider_subscription_id, r.reason) for r in unreconciled()] == [
        (orphan, "unknown_customer")
    ]


def test_subscription_the_provider_does_not_know_is_recorded_not_a_500(client, plans):
    response = send(client, "customer.subscription.updated", subscription_event("sub_nowhere"))
    assert response.status_code == 200
    assert [r.reason for r in unreconciled()] == ["provider_error"]


def test_orphan_while_a_create_is_running_asks_for_redelivery(auth_client, user, plans):
    orphan = orphan_for(user)
    now = clock.now()
    placeholder = Subscription(
        public_id="sub_placeholder",
        user_id=user.id,
        plan_id="plan_premium_monthly",
        status="INCOMPLETE",
        cancel_at_period_end=False,
        created_at=now,
        updated_at=now,
    )
    db.session.add(placeholder)
    db.session.commit()
    response = send(auth_client, "customer.subscription.created", subscription_event(orphan))
    assert (response.status_code, response.json["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert unreconciled() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 0


# --- the shown card -----------------------------------------------------------------------------


@pytest.fixture
def provider_sub(premium_client):
    """The premium subscription's row in the local provider's books (paid with pm_card_visa)."""
    return db.session.scalar(sa.select(LocalSubscription))


def test_payment_method_attached_elsewhere_refreshes_the_card(auth_client, user, provider_sub):
    customer = provider_sub.customer_id
    card = get_gateway().attach_payment_method(customer, "pm_card_mastercard")
    provider_sub.default_payment_method_id = card.payment_method_id  # changed at the provider
    db.session.commit()
    event = {"object": "payment_method", "id": card.payment_method_id, "customer": customer}
    assert send(auth_client, "payment_method.attached", event).status_code == 200
    shown = auth_client.get(SUBSCRIPTION_URL).json["data"]["paymentMethod"]
    assert (shown["brand"], shown["last4"]) == ("mastercard", "4444")


def test_customer_updated_refreshes_the_card(auth_client, user, provider_sub):
    customer = provider_sub.customer_id
    card = get_gateway().attach_payment_method(customer, "pm_card_amex")
    provider_sub.default_payment_method_id = card.payment_method_id
    db.session.commit()
    assert send(auth_client, "customer.updated", {"object": "customer", "id": customer})
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["paymentMethod"]["last4"] == "8431"


def test_automatically_updated_card_shows_its_new_expiry(auth_client, user, provider_sub):
    method = db.session.get(LocalPaymentMethod, provider_sub.default_payment_method_id)
    method.exp_year = 2040  # the card network sent the reissued card's details
    db.session.commit()
    event = {
        "object": "payment_method",
        "id": method.id,
        "customer": provider_sub.customer_id,
    }
    send(auth_client, "payment_method.automatically_updated", event)
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["paymentMethod"]["expiryYear"] == 2040


def test_detached_default_card_is_no_longer_shown(auth_client, user, provider_sub):
    detached = provider_sub.default_payment_method_id
    provider_sub.default_payment_method_id = None
    db.session.commit()
    event = {"object": "payment_method", "id": detached, "customer": None}
    assert send(auth_client, "payment_method.detached", event).status_code == 200
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["paymentMethod"] is None


# --- reads compute, never call ------------------------------------------------------------------


def test_read_after_a_period_end_does_not_renew(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    clock.freeze(datetime(2025, 2, 1, 1, tzinfo=UTC))
    assert auth_client.get(SUBSCRIPTION_URL).status_code == 200
    assert auth_client.get("/api/account").status_code == 200
    assert len(paid_invoices()) == 1


def test_ended_cancel_shows_free_on_read_without_writing(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "cancel")
    clock.freeze(datetime(2025, 2, 1, tzinfo=UTC))
    view = auth_client.get(SUBSCRIPTION_URL).json["data"]
    assert (view["id"], view["type"]) == (None, "FREE")
    account = auth_client.get("/api/account").json["data"]
    assert (account["subscriptionType"], account["resumesLimit"]) == ("FREE", 5)
    assert db.session.scalar(sa.select(Subscription.status)) == "ACTIVE"
    assert db.session.scalar(sa.select(LocalSubscription.status)) == "active"


def test_reads_never_reach_the_stripe_api(app_factory, plans, frozen_clock):
    app = app_factory(BILLING_PROVIDER="stripe", STRIPE_API_BASE="http://127.0.0.1:9")
    with app.app_context():
        user = UserFactory()
        now = clock.now()
        db.session.add(
            Subscription(
                public_id="sub_stripe",
                user_id=user.id,
                plan_id="plan_premium_monthly",
                status="ACTIVE",
                provider_subscription_id="sub_at_stripe",
                current_period_start=datetime(2024, 12, 1, tzinfo=UTC),
                current_period_end=datetime(2024, 12, 31, tzinfo=UTC),
                cancel_at_period_end=True,
                created_at=now,
                updated_at=now,
            )
        )
        db.session.flush()
        db.session.get(User, user.id).current_subscription = db.session.scalar(
            sa.select(Subscription)
        )
        db.session.commit()
        client = app.test_client()
        client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        subscription = client.get(SUBSCRIPTION_URL)
        account = client.get("/api/account")
    assert (subscription.status_code, subscription.json["data"]["type"]) == (200, "FREE")
    assert (account.status_code, account.json["data"]["subscriptionStatus"]) == (200, "CANCELED")


def test_incomplete_past_stripes_23_hours_shows_free_without_writing(
    auth_client, plans, frozen_clock
):
    subscribe(auth_client, payment_method="pm_card_authenticationRequired")
    clock.freeze(datetime(2025, 1, 1, 23, 0, 1, tzinfo=UTC))
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["type"] == "FREE"
    assert auth_client.get("/api/account").json["data"]["subscriptionStatus"] == "CANCELED"
    assert db.session.scalar(sa.select(Subscription.status)) == "INCOMPLETE"
