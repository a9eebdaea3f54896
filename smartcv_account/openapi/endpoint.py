"""`@endpoint`: what a view declares about itself, and the loading of its input that follows.

A view declares its request schema, response schema and error codes once:

    @bp.post("/register")
    @endpoint(account_schema, body=register_schema, status=201,
              errors=("EMAIL_TAKEN",), security=None)
    def register(fields): ...

The declaration is also what runs: `body=` loads and validates the JSON body with that schema
and passes the result to the view as its first argument (`query=` does the same for the query
string). `document.py` reads the same declaration to write the operation into the document.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request
from marshmallow import Schema

from ..errors import ERRORS
from ..schemas.base import load_body, load_query


@dataclass(frozen=True)
class Operation:
    """What one view declares about itself.

    `response` is the schema of the success envelope's `data` (a marshmallow schema, or a raw
    JSON Schema dict), or None when the envelope carries no data. With `envelope=False` the
    response is the body itself (health check, this document).
    """

    response: Schema | type[Schema] | dict[str, Any] | None
    body: Schema | None = None
    query: Schema | None = None
    status: int = 200
    errors: tuple[str, ...] = ()
    security: str | None = "session"
    envelope: bool = True
    message: bool = False  # the success envelope also carries a `message` string
    # A body that is not JSON (the reference page and its assets), with an example of it.
    media_type: str = "application/json"
    example: Any = None


def endpoint(
    response: Schema | type[Schema] | dict[str, Any] | None = None, **declared: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a view's schemas and error codes; load its body (or query) with the schema.

    Place it directly under the route decorator. Keywords are `Operation`'s fields.
    """
    operation = Operation(response, **declared)
    for code in operation.errors:
        ERRORS[code]  # noqa: B018 - an unknown code fails at import, not in production

    def declare(view: Callable[..., Any]) -> Callable[..., Any]:
        """Attach the declaration, and pass the loaded input when there is one to load."""
        if operation.body is None and operation.query is None:
            view.openapi = operation  # type: ignore[attr-defined]
            return view

        @functools.wraps(view)
        def loading(*args: Any, **kwargs: Any) -> Any:
            """Load the request's input with the declared schema, then run the view."""
            if operation.body is not None:
                loaded = load_body(operation.body)
            else:
                loaded = load_query(operation.query, request.args)
            return view(loaded, *args, **kwargs)

        loading.openapi = operation  # type: ignore[attr-defined]
        return loading

    return declare


def declaration(view: Callable[..., Any]) -> Operation | None:
    """Return what `view` declared with `endpoint`, or None."""
    return getattr(view, "openapi", None)
