"""The request's transaction, committed in one place: after the answer is made.

A service changes rows and builds its answer from what its transaction holds; the view makes
the response from that answer; then `commit_request`, the first of the after-request steps,
commits. An answer of 400 or more rolls the transaction back instead, so a refusal, a 500 or
a 503 always means that nothing changed; a commit that fails is answered as its error would
be (503 while the database is away) and also changed nothing. Nothing is read after the
COMMIT (`tests/test_query_budget.py` checks that it is the last statement).

Commits elsewhere are deliberate and each says why: a request under an `Idempotency-Key`
commits its change together with the stored answer (idempotency.py); a refused answer to a
secret is counted and recorded on its own (services/guessing.py); billing commits the
placeholder of a create before any money moves and the provider's books it must keep
(services/billing). The verify call's count is one statement that commits itself, outside the
request's session, its answer made from the row it returned (services/key_check.py). Commands
and the mail worker commit their own batches.
"""

from __future__ import annotations

from flask import Flask, Response, current_app
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db


def commit_request(response: Response) -> Response:
    """Commit the request's change once its answer is made; roll back behind an error."""
    if not db.session.registry.has():
        return response  # no session was made: a read that ran on the session check alone
    session = db.session()
    if not session.in_transaction():
        return response
    if response.status_code >= 400:
        session.rollback()
        return response
    try:
        session.commit()
    except SQLAlchemyError as error:
        return current_app.make_response(current_app.handle_user_exception(error))
    return response


def register_transaction(app: Flask) -> None:
    """Commit each request's transaction after its answer (registered after the other
    after-request steps, so it runs before them: the headers and the log line see the final
    answer)."""
    app.after_request(commit_request)
