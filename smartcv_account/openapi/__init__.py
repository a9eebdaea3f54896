"""The OpenAPI 3.1 document, generated from the routes and what each view declares.

- `endpoint.py`: `@endpoint`, a view's one declaration (response and request schemas, status,
  error codes, security, links), and what follows from it at run time: the input loaded with
  its schema, the view's result dumped into the success envelope.
- `document.py`: the route walker that turns every declared route into an operation.
- `postprocess.py`: what is completed once the routes are walked (required response fields,
  examples of every body and error code).
"""

from .document import build_spec, flask_path, honours_idempotency_key, spec_for
from .endpoint import Link, Operation, Reply, declaration, endpoint

__all__ = [
    "Link",
    "Operation",
    "Reply",
    "build_spec",
    "declaration",
    "endpoint",
    "flask_path",
    "honours_idempotency_key",
    "spec_for",
]
