"""The signed-in user's invoices, as the payment provider keeps them."""

from flask import Blueprint
from flask_login import login_required

from ..openapi import endpoint
from ..schemas.invoices import invoices_schema
from ..services import billing
from ..session_cookie import signed_in

bp = Blueprint("invoices", __name__)


@bp.get("")
@login_required
@endpoint(invoices_schema)
def list_invoices():
    """List the user's invoices, newest first.

    Needs a session. Changes nothing. Every invoice of the user's subscriptions except drafts,
    with Stripe's meanings of the amounts.
    """
    return billing.list_invoices(signed_in())
