"""The API's own description: the OpenAPI document."""

from flask import Blueprint, current_app, jsonify

from ..openapi import endpoint, spec_for

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
@endpoint(
    {
        "type": "object",
        "description": "An OpenAPI 3.1 document.",
        "example": {
            "openapi": "3.1.0",
            "info": {"title": "SmartCV Account API", "version": "0.1.0"},
            "paths": {},
        },
    },
    security=None,
    envelope=False,
)
def openapi_document():
    """Return the OpenAPI 3.1 document of every endpoint.

    Anyone may read it; it changes nothing. It is generated from the views' own declarations,
    so it always matches what the running service accepts and answers.
    """
    return jsonify(spec_for(current_app))
