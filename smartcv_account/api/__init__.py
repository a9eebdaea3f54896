"""HTTP endpoints: one blueprint per endpoint group."""

from flask import jsonify


def ok(data=None, status: int = 200, **extra):
    """Wrap `data` in the contract's success envelope."""
    body = {"success": True}
    body.update(extra)
    if data is not None:
        body["data"] = data
    response = jsonify(body)
    response.status_code = status
    return response
