"""Disputes (chargebacks): a disputed payment cancels the subscription at once, is recorded and
logged; on the local gateway pm_card_createDispute is disputed right after its payment."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import ActivityEvent
from smartcv_account.payments import get_gateway
from smartcv_account.payments.local.models import LocalInvoice

from .billing_helpers import deliver, paid_invoices, subscribe
from .test_subscription_money import view


def disputes() -> list[dict]:
    """The payment_disputed events' details."""
    return list(
        db.session.scalars(
            sa.select(ActivityEvent.details).where(ActivityEvent.type == "payment_disputed")
        )
    )


def test_a_payment_disputed_right_after_it_ends_the_subscription(
    auth_client, plans, frozen_clock, caplog
):
    caplog.set_level(logging.WARNING)
    response = subscribe(auth_client, payment_method="pm_card_createDispute")
    assert response.status_code == 201, response.json
    shown = view(auth_client)
    assert (shown["id"], shown["type"]) == (None, "FREE")
    assert auth_client.get("/api/account").json["data"]["subscriptionStatus"] == "CANCELED"
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999]  # it was paid
    [details] = disputes()
    assert details["subscriptionId"] == response.json["data"]["subscriptionId"]
    assert "payment disputed" in caplog.text


def test_the_dispute_event_cancels_at_once_and_only_once(premium_client, client):
    invoice = db.session.scalar(sa.select(LocalInvoice))
    gateway = get_gateway()
    dispute = {"id": "dp_1", "object": "dispute", "payment_intent": invoice.payment_intent_id}
    for _ in range(2):
        body = gateway.event_body("charge.dispute.created", dispute)
        assert deliver(client, body, gateway.signed_event(body)).status_code == 200
    shown = view(premium_client)
    assert (shown["id"], shown["type"]) == (None, "FREE")
    assert [details["disputeId"] for details in disputes()] == ["dp_1"]


def test_a_dispute_closed_changes_nothing_further(premium_client, client):
    invoice = db.session.scalar(sa.select(LocalInvoice))
    gateway = get_gateway()
    won = {"id": "dp_2", "object": "dispute", "payment_intent": invoice.payment_intent_id}
    body = gateway.event_body("charge.dispute.closed", {**won, "status": "won"})
    assert deliver(client, body, gateway.signed_event(body)).status_code == 200
    assert view(premium_client)["status"] == "ACTIVE"
    assert disputes() == []
