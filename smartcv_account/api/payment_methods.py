"""The signed-in user's saved cards."""

from flask import Blueprint
from flask_login import login_required

from ..openapi import endpoint
from ..schemas.payment_methods import card_save_schema, card_saved_schema, cards_schema
from ..services.billing import cards
from ..session_cookie import signed_in

bp = Blueprint("payment_methods", __name__)


@bp.get("")
@login_required
@endpoint(cards_schema)
def list_payment_methods():
    """List the user's saved cards, the default one marked.

    Needs a session. Changes nothing. The cards saved at the payment provider (brand, last four
    digits, expiry), with `default` on the one renewals charge.
    """
    return cards.list_cards(signed_in())


@bp.post("")
@login_required
@endpoint(
    card_saved_schema,
    body=card_save_schema,
    status=201,
    errors=("PAYMENT_FAILED", "PAYMENT_METHOD_LIMIT_REACHED"),
)
def save_payment_method(fields):
    """Save a card for later payments.

    Needs a session. Saves `paymentMethodId` for off-session use (a SetupIntent); a card that
    needs 3-D Secure to be saved answers `requiresAction` with a `clientSecret`. At most 5
    cards; a declined card is PAYMENT_FAILED.
    """
    return cards.save_card(signed_in(), fields["payment_method_id"])


@bp.put("/<card_id>/default")
@login_required
@endpoint(cards_schema, errors=("PAYMENT_METHOD_NOT_FOUND",))
def make_default_payment_method(card_id: str):
    """Make a saved card the one renewals charge.

    Needs a session. The card becomes the customer's default and the live subscription's card;
    returns the cards. PAYMENT_METHOD_NOT_FOUND for an id that is not one of the user's cards.
    """
    return cards.set_default_card(signed_in(), card_id)


@bp.delete("/<card_id>")
@login_required
@endpoint(None, errors=("PAYMENT_METHOD_NOT_FOUND", "PAYMENT_METHOD_IN_USE"))
def remove_payment_method(card_id: str):
    """Remove a saved card.

    Needs a session. Detaches the card; the default card of a live subscription cannot be
    removed (PAYMENT_METHOD_IN_USE: make another the default first).
    """
    return cards.remove_card(signed_in(), card_id)
