"""The plans anyone may look at before signing in."""

from flask import Blueprint

from ..openapi import endpoint
from ..schemas.subscription import public_plans_schema
from ..services.plans import public_plans

bp = Blueprint("plans", __name__)


@bp.get("")
@endpoint(public_plans_schema, security=None)
def list_plans():
    """List the free and self-serve plans, cheapest first (no sign-in).

    Anyone may call it. Changes nothing. Each plan a user can be on or subscribe to, with its
    price, interval, features and usage limits.
    """
    return public_plans()
