"""The exact requests StripeGateway sends for saved cards: a confirmed off-session SetupIntent
(not a bare attach), the customer's default, a detach, and the list with its default; and how a
dispute event is traced to its subscription."""

from __future__ import annotations

import json

import pytest

from smartcv_account.payments.base import PaymentDeclined, sign_payload

from .test_stripe_gateway_requests import gateway, payment_method, stub

pytestmark = pytest.mark.slow
__all__ = ["gateway", "stub"]


def setup_intent(status="succeeded", **fields) -> dict:
    """A SetupIntent with its payment method expanded."""
    return {
        "id": "seti_1",
        "object": "setup_intent",
        "status": status,
        "client_secret": "seti_1_secret_x",
        "payment_method": payment_method("pm_mc", "mastercard", "4444"),
        **fields,
    }


def test_saving_a_card_confirms_an_off_session_setup_intent(gateway, stub):
    stub.answer("POST", "/v1/setup_intents", setup_intent())

    saved = gateway.save_card("cus_1", "pm_mc", "usr_1:save-card:pm_mc:0")

    (request,) = stub.sent("POST", "/v1/setup_intents")
    assert request.form == {
        "customer": "cus_1",
        "payment_method": "pm_mc",
        "payment_method_types[0]": "card",
        "usage": "off_session",
        "confirm": "true",
        "expand[0]": "payment_method",
    }
    assert request.headers["idempotency-key"] == "usr_1:save-card:pm_mc:0"
    assert stub.sent("POST", "/v1/payment_methods/pm_mc/attach") == []
    assert (saved.card.last4, saved.client_secret, saved.next_action) == ("4444", None, None)


def test_a_card_that_needs_authentication_to_be_saved_waits_for_it(gateway, stub):
    action = {"type": "use_stripe_sdk"}
    stub.answer("POST", "/v1/setup_intents", setup_intent("requires_action", next_action=action))

    saved = gateway.save_card("cus_1", "pm_mc", "k")

    assert (saved.client_secret, saved.next_action) == ("seti_1_secret_x", action)


def test_a_declined_setup_is_payment_declined(gateway, stub):
    error = {"code": "card_declined", "decline_code": "insufficient_funds", "message": "No."}
    stub.answer(
        "POST", "/v1/setup_intents", setup_intent("requires_payment_method", last_setup_error=error)
    )

    with pytest.raises(PaymentDeclined) as raised:
        gateway.save_card("cus_1", "pm_mc", "k")

    assert raised.value.decline_code == "insufficient_funds"


def test_the_list_marks_the_customers_default(gateway, stub):
    listed = {"object": "list", "data": [payment_method("pm_a"), payment_method("pm_b")]}
    stub.answer("GET", "/v1/payment_methods", listed)
    customer = {"id": "cus_1", "invoice_settings": {"default_payment_method": "pm_b"}}
    stub.answer("GET", "/v1/customers/cus_1", customer)

    cards, default = gateway.list_cards("cus_1")

    assert ([card.payment_method_id for card in cards], default) == (["pm_a", "pm_b"], "pm_b")
    (request,) = stub.sent("GET", "/v1/payment_methods")
    assert (request.query["customer"], request.query["type"]) == ("cus_1", "card")


def test_default_and_detach(gateway, stub):
    stub.answer("POST", "/v1/customers/cus_1", {"id": "cus_1"})
    stub.answer("POST", "/v1/payment_methods/pm_a/detach", payment_method("pm_a"))

    gateway.set_default_card("cus_1", "pm_a", "usr_1:default-card:pm_b:pm_a")
    gateway.remove_card("cus_1", "pm_a")

    (update,) = stub.sent("POST", "/v1/customers/cus_1")
    assert update.form == {"invoice_settings[default_payment_method]": "pm_a"}
    assert update.headers["idempotency-key"] == "usr_1:default-card:pm_b:pm_a"
    assert len(stub.sent("POST", "/v1/payment_methods/pm_a/detach")) == 1


# Disputes (in this file for the fixtures)


def test_a_dispute_event_is_traced_to_its_subscription(gateway, stub):
    stub.answer("GET", "/v1/payment_intents/pi_1", {"id": "pi_1", "invoice": "in_1"})
    stub.answer("GET", "/v1/invoices/in_1", {"id": "in_1", "subscription": "sub_1"})
    dispute = {"id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": "pi_1"}
    body = json.dumps(
        {"id": "evt_1", "type": "charge.dispute.created", "data": {"object": dispute}}
    ).encode()

    event = gateway.parse_event(body, sign_payload(body, "whsec_request_tests"))

    assert (event.type, event.subscription_id) == ("charge.dispute.created", "sub_1")


# Refunds (in this file for the fixtures)


def test_a_refund_goes_to_the_invoices_payment_intent(gateway, stub):
    stub.answer(
        "GET",
        "/v1/invoices/in_1",
        {"id": "in_1", "status": "paid", "payment_intent": "pi_1", "charge": "ch_1"},
    )
    stub.answer("GET", "/v1/charges/ch_1", {"id": "ch_1", "amount_refunded": 0})
    stub.answer("GET", "/v1/charges/ch_1", {"id": "ch_1", "amount_refunded": 1000})
    stub.answer("POST", "/v1/refunds", {"id": "re_1", "amount": 1000})

    refunded = gateway.refund_invoice("in_1", 1000, "requested_by_customer", "refund:in_1:1000")

    (request,) = stub.sent("POST", "/v1/refunds")
    assert request.form == {
        "payment_intent": "pi_1",
        "amount": "1000",
        "reason": "requested_by_customer",
    }
    assert request.headers["idempotency-key"] == "refund:in_1:1000:after:0"
    assert refunded == 1000


def test_the_invoice_list_shows_what_was_refunded_however_it_was(gateway, stub):
    listed = {
        "object": "list",
        "data": [
            {
                "id": "in_1",
                "status": "paid",
                "created": 1700000000,
                "total": 2999,
                "amount_paid": 2999,
                "charge": {"id": "ch_1", "amount_refunded": 999},
            }
        ],
    }
    stub.answer("GET", "/v1/invoices", listed)

    (invoice,) = gateway.list_invoices("cus_1")

    assert invoice.amount_refunded == 999
    assert stub.sent("GET", "/v1/invoices")[0].query["expand[0]"] == "data.charge"
