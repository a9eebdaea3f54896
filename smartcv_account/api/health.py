"""Liveness and readiness."""

import sqlalchemy as sa
from flask import Blueprint

from ..errors import ApiError
from ..extensions import db
from ..openapi import endpoint

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@endpoint(
    {
        "type": "object",
        "description": "The service is ready.",
        "required": ["status"],
        "properties": {"status": {"const": "ok", "description": "Always `ok`."}},
    },
    security=None,
    envelope=False,
)
def healthz():
    """Answer 200 when the database answers, 503 when it does not.

    For load balancers and orchestrators: anyone may call it, it changes nothing, and it runs one
    `SELECT 1` so that a worker without its database is taken out of rotation.
    """
    try:
        db.session.execute(sa.text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure to reach the database is "not ready"
        db.session.rollback()
        raise ApiError("SERVICE_UNAVAILABLE", "The database is not answering.") from None
    return {"status": "ok"}
