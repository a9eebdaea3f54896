"""The user's saved cards: listed, saved for off-session use, made default, removed.

Cards live at the provider; this service keeps none of them (only the card its subscription
shows). Every write locks the user first, as all writes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ... import clock
from ...errors import field_error
from ...payments import get_gateway
from ...payments.base import CardDetails
from ...principal import Principal
from ..locking import load_user, lock_user
from .provider_state import apply_provider_state, call_gateway, live_subscription

MAX_CARDS = 5


@dataclass(frozen=True, slots=True)
class CardSaved:
    """What POST /api/account/payment-methods reports."""

    payment_method: dict[str, Any]
    client_secret: str | None
    next_action: dict | None

    @property
    def requires_action(self) -> bool:
        """Tell whether saving the card waits for the customer (3-D Secure)."""
        return self.next_action is not None


def list_cards(principal: Principal) -> list[dict[str, Any]]:
    """Return the user's saved cards, the default one marked (none before a first card)."""
    customer_id = load_user(principal.id).billing_customer_id
    if customer_id is None:
        return []
    cards, default = call_gateway(get_gateway().list_cards, customer_id)
    return [_shown(card, default) for card in cards]


def save_card(principal: Principal, payment_method_id: str) -> CardSaved:
    """Save a card for later off-session use (a SetupIntent); at most MAX_CARDS."""
    user = lock_user(principal)
    gateway = get_gateway()
    customer_id = call_gateway(
        gateway.ensure_customer, user.public_id, user.email, user.billing_customer_id
    )
    user.billing_customer_id = customer_id
    cards, default = call_gateway(gateway.list_cards, customer_id)
    if len(cards) >= MAX_CARDS:
        raise field_error(
            "PAYMENT_METHOD_LIMIT_REACHED",
            f"You can save at most {MAX_CARDS} cards; remove one first.",
            "paymentMethodId",
        )
    key = f"{user.public_id}:save-card:{payment_method_id}:{len(cards)}"
    saved = call_gateway(gateway.save_card, customer_id, payment_method_id, key)
    return CardSaved(_shown(saved.card, default), saved.client_secret, saved.next_action)


def set_default_card(principal: Principal, card_id: str) -> list[dict[str, Any]]:
    """Make a saved card the one renewals charge; the subscription shows it at once."""
    user = lock_user(principal)
    gateway = get_gateway()
    cards, default = _cards_with(user, card_id)
    if default != card_id:
        # From what to what, and when (to the second): A -> B -> A -> B makes four keys, so
        # Stripe never replays an earlier switch; a retry later only sets the same default.
        moment = int(clock.now().timestamp())
        key = f"{user.public_id}:default-card:{default}:{card_id}:{moment}"
        call_gateway(gateway.set_default_card, user.billing_customer_id, card_id, key)
        subscription = live_subscription(user)
        if subscription is not None and subscription.provider_subscription_id is not None:
            provider = call_gateway(
                gateway.retrieve_subscription, subscription.provider_subscription_id
            )
            apply_provider_state(subscription, provider)  # the card it shows
    return [_shown(card, card_id) for card in cards]


def remove_card(principal: Principal, card_id: str) -> None:
    """Remove a saved card; the default card of a live subscription stays (409)."""
    user = lock_user(principal)
    _, default = _cards_with(user, card_id)
    subscription = live_subscription(user)
    if subscription is not None and card_id in (default, subscription.payment_method_id):
        raise field_error(
            "PAYMENT_METHOD_IN_USE",
            "This card pays your subscription; make another card the default before removing it.",
            "id",
        )
    call_gateway(get_gateway().remove_card, user.billing_customer_id, card_id)


def _cards_with(user, card_id: str) -> tuple[list[CardDetails], str | None]:
    """Return the user's cards and default, or 404 when `card_id` is not one of them."""
    cards: list[CardDetails] = []
    default = None
    if user.billing_customer_id is not None:
        cards, default = call_gateway(get_gateway().list_cards, user.billing_customer_id)
    if all(card.payment_method_id != card_id for card in cards):
        raise field_error("PAYMENT_METHOD_NOT_FOUND", "You have no saved card with this id.", "id")
    return cards, default


def _shown(card: CardDetails, default: str | None) -> dict[str, Any]:
    """A card as the API shows it."""
    return {
        "id": card.payment_method_id,
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "default": card.payment_method_id == default,
    }
