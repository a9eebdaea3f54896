"""`@endpoint`: what a view declares about itself, and the loading and answering that follow.

A view declares its response schema, request schema and error codes once:

    @bp.put("")
    @login_required
    @endpoint(account_schema, body=account_update_schema)
    def update_account(changes):
        return accounts.update_account(signed_in(), changes)

The declaration is also what runs. `body=` loads and validates the JSON body with that schema
and passes the result to the view as its first argument (`query=` does the same for the query
string). What the view returns is dumped with the response schema and wrapped in the success
envelope with the declared status; a view that must also set or clear a cookie returns a
`Reply`. `document.py` reads the same declaration to write the operation into the document.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Response, jsonify, request
from marshmallow import Schema

from ..error_codes import ERRORS
from ..schemas.base import load_body, load_query

JSON = "application/json"


@dataclass(frozen=True)
class Link:
    """What a client may call next with values from this answer (an OpenAPI link).

    `view` is the function name of the view it leads to; `parameters` map that operation's
    parameters to runtime expressions (`$response.body#/data/id`); `body` is a request body
    whose string values may be such expressions.
    """

    view: str
    description: str
    parameters: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Operation:
    """What one view declares about itself.

    `response` is the schema of the success envelope's `data` (a marshmallow schema, or a raw
    JSON Schema dict for a value the view returns as it is), or None when the envelope carries
    no data. With `envelope=False` the response is the body itself (health check, this
    document). `message` is the sentence a success envelope carries beside the data, if any.
    """

    response: Schema | dict[str, Any] | None
    body: Schema | None = None
    query: Schema | None = None
    status: int = 200
    errors: tuple[str, ...] = ()
    security: str | None = "session"
    envelope: bool = True
    message: str | None = None
    links: tuple[Link, ...] = ()
    # A body that is not JSON (the reference page and its assets), with an example of it.
    media_type: str = JSON
    example: Any = None


@dataclass(frozen=True)
class Reply:
    """A view's answer plus something to do to the response: `finish` sets or clears a cookie.

    The data is dumped and enveloped like any answer; `finish(response)` runs on that response
    inside the view, so an answer replaced by an error afterwards (a commit that fails, an
    Idempotency-Key taken over) carries no cookie.
    """

    data: Any
    finish: Callable[[Response], Response]


def endpoint(
    response: Schema | dict[str, Any] | None = None, **declared: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a view's schemas and error codes; load its input and answer with its result.

    Place it directly above the view function, under `login_required` and the rate limits, so
    a request is authenticated and rate-limited before its body is read. Keywords are
    `Operation`'s fields.
    """
    operation = Operation(response, **declared)
    for code in operation.errors:
        ERRORS[code]  # noqa: B018 - an unknown code fails at import, not in production

    def declare(view: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap the view: load its input, run it, and turn its result into the response."""

        @functools.wraps(view)
        def answering(*args: Any, **kwargs: Any) -> Any:
            """Load the request's input with the declared schema, run the view, answer."""
            if operation.body is not None:
                args = (load_body(operation.body), *args)
            elif operation.query is not None:
                args = (load_query(operation.query, request.args), *args)
            result = view(*args, **kwargs)
            if operation.media_type != JSON:
                return result  # a file of the reference page, sent by the view itself
            return answer(operation, result)

        answering.openapi = operation  # type: ignore[attr-defined]
        return answering

    return declare


def declaration(view: Callable[..., Any]) -> Operation | None:
    """Return what `view` declared with `endpoint`, or None."""
    return getattr(view, "openapi", None)


def answer(operation: Operation, result: Any) -> Response:
    """Dump `result` with the declared schema into the declared body and status."""
    finish = None
    if isinstance(result, Reply):
        result, finish = result.data, result.finish
    response = jsonify(body_of(operation, result))
    response.status_code = operation.status
    return finish(response) if finish is not None else response


def body_of(operation: Operation, result: Any) -> Any:
    """The JSON body of a success: the dumped result, in the envelope unless told otherwise."""
    if operation.response is None:
        if result is not None:
            raise TypeError("this view declares no response data; it must return None")
        data = None
    elif isinstance(operation.response, Schema):
        data = operation.response.dump(result)
    else:
        data = result  # a value described by a raw JSON Schema (the document, the health check)
    if not operation.envelope:
        return data
    body: dict[str, Any] = {"success": True}
    if operation.message is not None:
        body["message"] = operation.message
    if operation.response is not None:
        body["data"] = data
    return body
