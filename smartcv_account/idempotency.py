"""Safe retries: the `Idempotency-Key` header on the operations that change money or counters.

A request sent with a key runs at most once per caller and key. The flow, in three steps:

1. Claim (its own short transaction, committed at once): a row for (caller, key) with the
   request's fingerprint, a random owner token and a lease. A second request with the same key
   finds that row: another body is 422 `IDEMPOTENCY_KEY_REUSED`; a stored answer is replayed
   with `Idempotent-Replayed: true`; a running owner within its lease is 409
   `IDEMPOTENCY_KEY_IN_USE`.
2. The view runs. Its service ends with `commit_change()`, which under a key only flushes.
3. The answer (status and body) is written to the row, conditionally on still owning it, and
   committed in the SAME transaction as the change. A crash before that commit leaves neither
   the change nor the answer: the row stays claimed with no answer, and once its lease has
   passed (the owner is dead: its connection and transaction are gone) a repeat runs the
   request again. A crash after it leaves both, and a repeat replays the answer.

Which answers are kept (a decision, as Stripe does): every answer below 500, a 4xx included,
so a retry of a refused payment or an exceeded limit gets the same refusal (send a new key to
try again). A 5xx is not kept: it means nothing changed, the claim is released and a retry with
the same key runs again. Answers given before the operation starts (401, 415, a malformed key,
409/422 of the key itself) are not kept either.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, g, request
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from . import clock
from .errors import ApiError, validation_error
from .extensions import db
from .models import IdempotencyKey

HEADER = "Idempotency-Key"
# The answers an operation that honours the header may give about the key itself.
IDEMPOTENCY_ERRORS = ("IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_IN_USE")
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_FOR = timedelta(hours=24)
# Marks the request's session while an idempotent view runs: its final commit is deferred.
_DEFERRED = "smartcv.idempotency.deferred"
# Set on `g` while a view runs under a claimed key.
_KEYED = "idempotency_key_held"


def key_held() -> bool:
    """Tell whether this request runs under a claimed Idempotency-Key: its change must then
    share one transaction (and connection) with the stored answer."""
    return bool(g.get(_KEYED))


def commit_change() -> None:
    """Commit the service's change; under an Idempotency-Key only flush it, so that the key's
    answer is committed with it in one transaction."""
    if db.session.info.get(_DEFERRED):
        db.session.flush()
    else:
        db.session.commit()


def session_caller() -> str:
    """Name the signed-in user as the owner of keys sent with a session cookie."""
    return f"user:{current_user.public_id}"


def token_caller() -> str:
    """Name the internal API token (by its digest) as the owner of keys sent with it."""
    _, _, token = request.headers.get("Authorization", "").partition(" ")
    return "internal:" + hashlib.sha256(token.strip().encode()).hexdigest()[:32]


def idempotent(caller: Callable[[], str]) -> Callable:
    """Make a view honour `Idempotency-Key` for the caller that `caller()` names."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            key = request.headers.get(HEADER)
            if key is None:
                return _answer_then_commit(view, args, kwargs)
            row, owner = claim(caller(), _valid_key(key), _fingerprint())
            if owner is None:
                return _replay(row)
            return _run(view, row.id, owner, args, kwargs)

        # Read by openapi.py to document the header; functools.wraps carries it to outer wrappers.
        wrapper.honours_idempotency_key = True  # type: ignore[attr-defined]
        return wrapper

    return decorate


def answer_then_commit(view: Callable) -> Callable:
    """Build a view's answer before its change is committed, so that no failure can follow
    the commit: an error answer then always means that nothing changed."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        return _answer_then_commit(view, args, kwargs)

    return wrapper


def _answer_then_commit(view: Callable, args: tuple, kwargs: dict) -> Response:
    """Run the view with its service's final commit deferred, then commit."""
    db.session.info[_DEFERRED] = True
    try:
        response = current_app.make_response(view(*args, **kwargs))
    finally:
        db.session.info.pop(_DEFERRED, None)
    db.session.commit()
    return response


def _valid_key(key: str) -> str:
    """Return the key if it has 1-255 printable ASCII characters, else raise VALIDATION_ERROR."""
    if 1 <= len(key) <= 255 and all(" " <= char <= "~" for char in key):
        return key
    raise validation_error({HEADER: ["Must be 1 to 255 printable ASCII characters."]})


def _fingerprint() -> str:
    """Fingerprint the request being served."""
    return fingerprint(request.method, request.path, request.get_data(cache=True))


def fingerprint(method: str, path: str, raw: bytes) -> str:
    """Digest the method, path and body; JSON bodies by content, not by their spacing."""
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        body = raw
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def claim(caller: str, key: str, fingerprint: str) -> tuple[IdempotencyKey, str | None]:
    """Claim (caller, key) for this request and commit the claim.

    Returns the row and this request's owner token, or the row and None when its stored answer
    is to be replayed. Raises 422 for another body under the key and 409 while it runs.
    """
    owner = secrets.token_hex(16)
    for _attempt in range(2):
        row = _find(caller, key)
        if row is None:
            if _insert(caller, key, fingerprint, owner):
                return _find(caller, key), owner
            continue  # a concurrent request inserted it first: judge its row
        return _judge(row, fingerprint, owner)
    raise _in_use()


def _find(caller: str, key: str) -> IdempotencyKey | None:
    """Read the row of (caller, key), fresh from the database."""
    statement = sa.select(IdempotencyKey).where(
        IdempotencyKey.caller == caller, IdempotencyKey.key == key
    )
    return db.session.scalar(statement.execution_options(populate_existing=True))


def _insert(caller: str, key: str, fingerprint: str, owner: str) -> bool:
    """Insert a claimed row and commit; False when the key was taken meanwhile."""
    now = clock.now()
    db.session.add(
        IdempotencyKey(
            caller=caller,
            key=key,
            fingerprint=fingerprint,
            owner=owner,
            locked_until=now + _lease(),
            created_at=now,
            expires_at=now + KEPT_FOR,
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def _judge(row: IdempotencyKey, fingerprint: str, owner: str) -> tuple[IdempotencyKey, str | None]:
    """Decide what a request finding an existing row gets: replay, take over, 409 or 422."""
    now = clock.now()
    if row.expires_at <= now:
        return row, _take_over(row, fingerprint, owner, reset=True)
    if row.fingerprint != fingerprint:
        raise ApiError(
            "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was already used with another request body; use a new key.",
            {"field": HEADER},
        )
    if row.response_status is not None:
        return row, None
    if row.locked_until is not None and row.locked_until > now:
        raise _in_use()
    # The owner's lease passed without an answer: it died, and its change rolled back with it.
    return row, _take_over(row, fingerprint, owner, reset=False)


def _take_over(row: IdempotencyKey, fingerprint: str, owner: str, *, reset: bool) -> str:
    """Make this request the row's owner, unless another request did so first (409)."""
    now = clock.now()
    values: dict[str, Any] = {"owner": owner, "locked_until": now + _lease()}
    if reset:
        values |= {
            "fingerprint": fingerprint,
            "response_status": None,
            "response_body": None,
            "created_at": now,
            "expires_at": now + KEPT_FOR,
        }
    statement = (
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.id == row.id, _unchanged(row))
        .values(values)
        .execution_options(synchronize_session=False)
    )
    taken = db.session.execute(statement).rowcount == 1
    db.session.commit()
    if not taken:
        raise _in_use()
    return owner


def _unchanged(row: IdempotencyKey):
    """A condition that holds while the row is as this request read it."""
    if row.owner is None:
        return IdempotencyKey.owner.is_(None)
    return IdempotencyKey.owner == row.owner


def _lease() -> timedelta:
    """How long a running request holds its key before a repeat may presume it dead."""
    return timedelta(seconds=current_app.config["IDEMPOTENCY_LOCK_SECONDS"])


def _in_use() -> ApiError:
    """The 409 for a key whose first request is still running."""
    return ApiError(
        "IDEMPOTENCY_KEY_IN_USE",
        "A request with this Idempotency-Key is still running; retry it in a moment.",
        {"field": HEADER},
        headers={"Retry-After": "1"},
    )


def _run(view: Callable, row_id: int, owner: str, args: tuple, kwargs: dict) -> Response:
    """Run the view with its final commit deferred, then commit its answer with its change."""
    db.session.info[_DEFERRED] = True
    g.setdefault(_KEYED, True)
    try:
        response = current_app.make_response(view(*args, **kwargs))
    except (ApiError, ValidationError, HTTPException) as error:
        db.session.rollback()  # a refusal changed nothing; store it in a transaction of its own
        response = current_app.make_response(current_app.handle_user_exception(error))
    except BaseException:
        _release(row_id, owner)
        raise
    finally:
        db.session.info.pop(_DEFERRED, None)
    if response.status_code >= 500:
        _release(row_id, owner)
        return response
    _store(row_id, owner, response)
    return response


def _store(row_id: int, owner: str, response: Response) -> None:
    """Write the answer on the row this request still owns, and commit it with the change."""
    statement = (
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.id == row_id, IdempotencyKey.owner == owner)
        .values(
            owner=None,
            locked_until=None,
            response_status=response.status_code,
            response_body=response.get_data(as_text=True),
        )
        .execution_options(synchronize_session=False)
    )
    if db.session.execute(statement).rowcount != 1:
        # Presumed dead and taken over by a repeat: that one runs the change, not this one.
        db.session.rollback()
        raise _in_use()
    db.session.commit()


def _release(row_id: int, owner: str) -> None:
    """Give the key up after a failure that changed nothing, so a retry runs again."""
    try:
        db.session.rollback()
        db.session.execute(
            sa.delete(IdempotencyKey)
            .where(IdempotencyKey.id == row_id, IdempotencyKey.owner == owner)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    except SQLAlchemyError:
        # The database is away: the claim's lease runs out by itself.
        with contextlib.suppress(SQLAlchemyError):
            db.session.rollback()


def _replay(row: IdempotencyKey) -> Response:
    """Answer with the stored status and body, marked as a replay."""
    response = current_app.response_class(
        row.response_body, status=row.response_status, mimetype="application/json"
    )
    response.headers[REPLAYED_HEADER] = "true"
    return response


def prune(now=None) -> int:
    """Delete the keys whose 24 hours have passed; return how many. The caller commits."""
    statement = sa.delete(IdempotencyKey).where(IdempotencyKey.expires_at <= (now or clock.now()))
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount
