"""The signed-in user's invoices, as the payment provider keeps them."""

from flask import Blueprint
from flask_login import current_user, login_required

from ..schemas.subscription import invoice_schema
from ..services import billing
from . import ok

bp = Blueprint("invoices", __name__)


@bp.get("")
@login_required
def list_invoices():
    """List the user's invoices, newest first."""
    invoices = billing.list_invoices(current_user._get_current_object())
    return ok(invoice_schema.dump(invoices, many=True))
