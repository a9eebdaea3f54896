"""Webhooks refuse every malformed signature header and every signed payload of the wrong shape.

A bad header is 400 INVALID_SIGNATURE; a correctly signed body that is not a well-formed Stripe
event is 400 VALIDATION_ERROR. Neither is ever a 500, and neither records or changes anything.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import WebhookEvent
from smartcv_account.payments.base import InvalidSignature, MalformedEvent, sign_payload
from smartcv_account.payments.stripe import StripeGateway

from .billing_helpers import SUBSCRIPTION_URL, deliver

SECRET = "whsec_test_secret"  # conftest.TEST_CONFIG
VALID_BODY = json.dumps(
    {"id": "evt_ok", "type": "invoice.paid", "data": {"object": {"object": "invoice"}}}
).encode()

MALFORMED_HEADERS = {
    "superscript_timestamp": "t=²,v1=" + "0" * 64,
    "timestamp_of_4301_digits": "t=" + "1" * 4301 + ",v1=" + "0" * 64,
    "garbage": "garbage",
    "empty_timestamp": "t=,v1=abc",
    "negative_timestamp": "t=-5,v1=abc",
    "no_v1": "t=1700000000",
    "only_v1": "v1=abc",
    "two_timestamps": "t=1,t=2,v1=abc",
    "non_ascii_signature": "t=1700000000,v1=é" + "0" * 63,
    "separators_only": ",,,==,",
    "fullwidth_digits": "t=１７００,v1=abc",
}


def _nested(depth: int) -> dict:
    """Return an event whose data.object holds `depth` nested lists."""
    return {
        "id": "evt_deep",
        "type": "invoice.paid",
        "data": {"object": {"object": "invoice", "x": json.loads("[" * depth + "]" * depth)}},
    }


def _event(**fields) -> dict:
    """Return a minimal subscription event with `fields` replaced."""
    event = {
        "id": "evt_shape",
        "type": "customer.subscription.updated",
        "data": {"object": {"object": "subscription", "id": "sub_x", "customer": "cus_x"}},
    }
    event.update(fields)
    return event


MALFORMED_BODIES = {
    "id_is_a_dict": json.dumps(_event(id={"nested": "evt"})).encode(),
    "id_is_a_number": json.dumps(_event(id=7)).encode(),
    "id_too_long": json.dumps(_event(id="evt_" + "x" * 300)).encode(),
    "type_is_a_list": json.dumps(_event(type=["invoice.paid"])).encode(),
    "no_data": json.dumps({"id": "evt_1", "type": "invoice.paid"}).encode(),
    "object_is_a_list": json.dumps(_event(data={"object": []})).encode(),
    "subscription_id_is_a_dict": json.dumps(
        _event(data={"object": {"object": "subscription", "id": {"id": "sub_x"}}})
    ).encode(),
    "invoice_subscription_is_a_dict": json.dumps(
        _event(
            type="invoice.paid",
            data={"object": {"object": "invoice", "id": "in_1", "subscription": {"a": 1}}},
        )
    ).encode(),
    "customer_is_a_number": json.dumps(
        _event(data={"object": {"object": "subscription", "id": "sub_x", "customer": 5}})
    ).encode(),
    "lone_surrogate_in_id": b'{"id": "evt_\\ud800", "type": "t", "data": {"object": {}}}',
    "lone_surrogate_in_key": b'{"id": "evt_1", "type": "x", "data": {"object": {"\\udfff": 1}}}',
    "nested_deeply": json.dumps(_nested(40)).encode(),
    "nested_past_the_parser": b'{"id":"e","type":"t","data":{"object":{"x":'
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}}}",
    "not_utf8": b'{"id": "evt_\xff", "type": "t", "data": {"object": {}}}',
    "not_json": b"not json at all",
    "a_json_array": b"[1, 2, 3]",
    "a_json_string": b'"evt_1"',
}


def _webhook_rows() -> int:
    """Count recorded webhook events."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent))


@pytest.mark.parametrize("header", MALFORMED_HEADERS.values(), ids=MALFORMED_HEADERS.keys())
def test_malformed_signature_header_is_invalid_signature(client, header):
    response = deliver(client, VALID_BODY, header)
    assert (response.status_code, response.json["code"]) == (400, "INVALID_SIGNATURE")
    assert _webhook_rows() == 0


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_signed_body_of_the_wrong_shape_is_400_and_records_nothing(auth_client, body):
    before = auth_client.get(SUBSCRIPTION_URL).json["data"]
    response = deliver(auth_client, body, sign_payload(body, SECRET))
    assert (response.status_code, response.json["code"]) == (400, "VALIDATION_ERROR")
    assert _webhook_rows() == 0
    assert auth_client.get(SUBSCRIPTION_URL).json["data"] == before


def test_well_formed_event_is_still_accepted(client):
    response = deliver(client, VALID_BODY, sign_payload(VALID_BODY, SECRET))
    assert response.status_code == 200
    assert _webhook_rows() == 1


@pytest.fixture
def stripe_gateway():
    """A Stripe gateway that is never asked to reach Stripe (signature checks are local)."""
    gateway = StripeGateway("sk_test_unused", "http://127.0.0.1:9", SECRET)
    yield gateway
    gateway.close()


@pytest.mark.parametrize("header", MALFORMED_HEADERS.values(), ids=MALFORMED_HEADERS.keys())
def test_stripe_gateway_refuses_malformed_headers(stripe_gateway, header):
    with pytest.raises(InvalidSignature):
        stripe_gateway.parse_event(VALID_BODY, header)


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_stripe_gateway_refuses_signed_bodies_of_the_wrong_shape(stripe_gateway, body):
    with pytest.raises((MalformedEvent, InvalidSignature)):
        stripe_gateway.parse_event(body, sign_payload(body, SECRET))


def test_stripe_gateway_reads_a_well_formed_subscription_event(stripe_gateway):
    body = json.dumps(_event()).encode()
    event = stripe_gateway.parse_event(body, sign_payload(body, SECRET))
    assert (event.id, event.subscription_id) == ("evt_shape", "sub_x")
