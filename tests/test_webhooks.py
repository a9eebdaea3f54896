"""Strong customer authentication and the signed webhook that completes it (local gateway)."""

import json
import threading

import pytest

from smartcv_account.payments import get_gateway
from smartcv_account.payments.base import sign_payload

from .billing_helpers import SUBSCRIPTION_URL, authenticate, deliver, paid_invoices, subscribe


@pytest.fixture
def incomplete(auth_client, plans):
    """A subscription created with a card that needs 3-D Secure."""
    response = subscribe(auth_client, payment_method="pm_card_authenticationRequired")
    assert response.status_code == 201
    return response.json["data"]


def test_card_needing_authentication_is_incomplete_with_next_action(incomplete):
    assert (incomplete["status"], incomplete["requiresAction"]) == ("INCOMPLETE", True)
    assert incomplete["nextAction"] == {"type": "use_stripe_sdk"}
    assert "_secret_" in incomplete["clientSecret"]


def test_incomplete_subscription_keeps_free_limits(auth_client, incomplete):
    account = auth_client.get("/api/account").json["data"]
    assert (account["subscriptionType"], account["subscriptionStatus"]) == ("PREMIUM", "INCOMPLETE")
    assert account["resumesLimit"] == 5
    view = auth_client.get(SUBSCRIPTION_URL).json["data"]
    assert (view["status"], view["plan"]["id"]) == ("INCOMPLETE", "plan_premium_monthly")


def test_incomplete_subscription_blocks_a_second_create(auth_client, incomplete):
    response = subscribe(auth_client)
    assert response.json["code"] == "SUBSCRIPTION_ALREADY_EXISTS"


def test_signed_event_after_authentication_activates(app, auth_client, incomplete):
    gateway = get_gateway()
    body = authenticate(gateway, incomplete["clientSecret"].split("_secret_")[0])
    response = deliver(auth_client, body, gateway.signed_event(body))
    assert response.status_code == 200, response.json
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "ACTIVE"
    assert auth_client.get("/api/account").json["data"]["resumesLimit"] == -1
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999]


def test_event_claiming_payment_without_authentication_changes_nothing(auth_client, incomplete):
    gateway = get_gateway()
    forged = gateway.event_body(
        "invoice.paid",
        {"object": "invoice", "id": "in_x", "subscription": _provider_id(), "status": "paid"},
    )
    assert deliver(auth_client, forged, gateway.signed_event(forged)).status_code == 200
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "INCOMPLETE"


def test_same_event_twice_is_applied_once(auth_client, incomplete):
    gateway = get_gateway()
    body = authenticate(gateway, incomplete["clientSecret"].split("_secret_")[0])
    first = deliver(auth_client, body, gateway.signed_event(body))
    second = deliver(auth_client, body, gateway.signed_event(body))
    assert (first.json["data"]["duplicate"], second.json["data"]["duplicate"]) == (False, True)


def test_concurrent_deliveries_of_one_event_apply_it_once(app, auth_client, incomplete):
    gateway = get_gateway()
    body = authenticate(gateway, incomplete["clientSecret"].split("_secret_")[0])
    signature = gateway.signed_event(body)
    results = []

    def post():
        with app.app_context():
            results.append(deliver(app.test_client(), body, signature).json["data"]["duplicate"])

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] + [True] * 7


@pytest.mark.parametrize("signature", [None, "t=1,v1=abc", "garbage"])
def test_bad_signature_is_refused_and_changes_nothing(auth_client, incomplete, signature):
    gateway = get_gateway()
    body = authenticate(gateway, incomplete["clientSecret"].split("_secret_")[0])
    response = deliver(auth_client, body, signature)
    assert (response.status_code, response.json["code"]) == (400, "INVALID_SIGNATURE")
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "INCOMPLETE"


def test_signature_with_another_secret_is_refused(auth_client, incomplete):
    body = json.dumps({"id": "evt_1", "type": "invoice.paid", "data": {"object": {}}}).encode()
    response = deliver(auth_client, body, sign_payload(body, "whsec_wrong"))
    assert response.json["code"] == "INVALID_SIGNATURE"


def test_failed_authentication_leaves_it_incomplete(auth_client, incomplete):
    gateway = get_gateway()
    body = authenticate(gateway, incomplete["clientSecret"].split("_secret_")[0], succeed=False)
    deliver(auth_client, body, gateway.signed_event(body))
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "INCOMPLETE"
    assert paid_invoices() == []


def test_cancel_abandons_an_incomplete_subscription_at_once(auth_client, incomplete):
    response = auth_client.put(SUBSCRIPTION_URL, json={"action": "cancel"})
    assert response.json["data"]["status"] == "CANCELED"
    assert subscribe(auth_client).status_code == 201


def test_local_authenticate_cli_completes_the_payment(runner, auth_client, incomplete):
    intent = incomplete["clientSecret"].split("_secret_")[0]
    result = runner.invoke(args=["local-authenticate", intent])
    assert result.exit_code == 0, result.output
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "ACTIVE"


def _provider_id() -> str:
    import sqlalchemy as sa

    from smartcv_account.extensions import db
    from smartcv_account.models import Subscription

    return db.session.scalar(sa.select(Subscription.provider_subscription_id))


def test_incomplete_subscription_expires_after_23_hours(auth_client, plans, frozen_clock):
    from datetime import timedelta

    from smartcv_account import clock

    subscribe(auth_client, payment_method="pm_card_authenticationRequired")
    clock.freeze(frozen_clock + timedelta(hours=22, minutes=59))
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "INCOMPLETE"
    clock.freeze(frozen_clock + timedelta(hours=23))
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["type"] == "FREE"
    assert auth_client.get("/api/account").json["data"]["subscriptionStatus"] == "CANCELED"
    assert subscribe(auth_client).status_code == 201
