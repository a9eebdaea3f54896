"""Saved cards over HTTP on the local gateway: list, save (SetupIntent), default, remove."""

from __future__ import annotations

import pytest

from .billing_helpers import at, change, paid_invoices, subscribe
from .factories import UserFactory
from .helpers import signed_in
from .test_subscription_money import view

URL = "/api/account/payment-methods"


def save(client, payment_method="pm_card_mastercard"):
    """POST a card to save."""
    return client.post(URL, json={"paymentMethodId": payment_method})


def cards(client) -> list[dict]:
    """GET the saved cards."""
    response = client.get(URL)
    assert response.status_code == 200, response.json
    return response.json["data"]


def test_no_cards_before_the_first(auth_client, plans):
    assert cards(auth_client) == []


def test_a_saved_card_is_listed_and_not_yet_the_default(premium_client):
    response = save(premium_client)
    assert response.status_code == 201, response.json
    data = response.json["data"]
    assert (data["requiresAction"], data["clientSecret"]) == (False, None)
    assert data["paymentMethod"]["last4"] == "4444"
    listed = cards(premium_client)
    assert {card["last4"]: card["default"] for card in listed} == {"4242": True, "4444": False}
    assert set(listed[0]) == {"id", "brand", "last4", "expMonth", "expYear", "default"}


def test_a_card_that_needs_authentication_to_be_saved_asks_for_it(auth_client, plans):
    response = save(auth_client, "pm_card_authenticationRequired")
    assert response.status_code == 201, response.json
    data = response.json["data"]
    assert data["requiresAction"] is True
    assert data["clientSecret"].startswith("seti_")


def test_a_declined_card_is_not_saved(auth_client, plans, assert_error):
    assert_error(save(auth_client, "pm_card_chargeDeclined"), 402, "PAYMENT_FAILED")
    assert cards(auth_client) == []


def test_an_unknown_card_is_a_validation_error(auth_client, plans, assert_error):
    assert_error(save(auth_client, "pm_nope"), 400, "VALIDATION_ERROR", "paymentMethodId")


def test_at_most_five_cards(auth_client, plans, assert_error):
    for _ in range(5):
        assert save(auth_client, "pm_card_visa").status_code == 201
    assert_error(save(auth_client), 409, "PAYMENT_METHOD_LIMIT_REACHED", "paymentMethodId")
    assert len(cards(auth_client)) == 5


def test_the_default_card_is_the_one_renewals_charge(auth_client, plans, frozen_clock):
    premium_client = auth_client
    assert subscribe(premium_client).status_code == 201
    mastercard = save(premium_client).json["data"]["paymentMethod"]["id"]
    response = premium_client.put(f"{URL}/{mastercard}/default")
    assert response.status_code == 200, response.json
    shown = {card["last4"]: card["default"] for card in response.json["data"]}
    assert shown == {"4242": False, "4444": True}
    assert view(premium_client)["paymentMethod"]["last4"] == "4444"
    at(2025, 2, 1)
    assert view(premium_client)["status"] == "ACTIVE"
    renewal = paid_invoices()[-1]
    assert (len(paid_invoices()), renewal.billing_reason) == (2, "subscription_cycle")


def test_switching_back_and_forth_ends_on_the_last_choice(premium_client):
    visa = cards(premium_client)[0]["id"]
    mastercard = save(premium_client).json["data"]["paymentMethod"]["id"]
    for card_id in (mastercard, visa, mastercard, visa):
        assert premium_client.put(f"{URL}/{card_id}/default").status_code == 200
    shown = {card["last4"]: card["default"] for card in cards(premium_client)}
    assert shown == {"4242": True, "4444": False}
    assert view(premium_client)["paymentMethod"]["last4"] == "4242"


def test_the_default_card_of_a_live_subscription_cannot_be_removed(premium_client, assert_error):
    visa = cards(premium_client)[0]["id"]
    assert_error(premium_client.delete(f"{URL}/{visa}"), 409, "PAYMENT_METHOD_IN_USE", "id")
    mastercard = save(premium_client).json["data"]["paymentMethod"]["id"]
    assert premium_client.delete(f"{URL}/{mastercard}").status_code == 200
    assert [card["last4"] for card in cards(premium_client)] == ["4242"]


def test_a_card_may_be_removed_once_nothing_is_live(auth_client, plans, frozen_clock):
    assert subscribe(auth_client).status_code == 201
    assert change(auth_client, "cancel").status_code == 200
    at(2025, 3, 1)
    visa = cards(auth_client)[0]["id"]
    assert auth_client.delete(f"{URL}/{visa}").status_code == 200
    assert cards(auth_client) == []


@pytest.mark.parametrize("method", ["put", "delete"])
def test_another_users_or_an_unknown_card_is_not_found(premium_client, app, method, assert_error):

    theirs = cards(premium_client)[0]["id"]
    other = signed_in(app, UserFactory().email)
    for card_id in (theirs, "pm_unknown"):
        path = f"{URL}/{card_id}/default" if method == "put" else f"{URL}/{card_id}"
        assert_error(getattr(other, method)(path), 404, "PAYMENT_METHOD_NOT_FOUND", "id")
