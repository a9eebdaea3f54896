"""The API's own description: the OpenAPI document."""

from flask import Blueprint, current_app, jsonify

from ..openapi import endpoint, spec_for

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
@endpoint({"type": "object"}, security=None, envelope=False)
def openapi_document():
    """Return the OpenAPI 3.1 document of every endpoint."""
    return jsonify(spec_for(current_app))
