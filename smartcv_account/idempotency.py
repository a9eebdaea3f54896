"""Safe retries: the `Idempotency-Key` header on the operations that change money or counters.

A request sent with a key runs at most once per caller and key. The flow, in three steps:

1. Claim. A row for (caller, key) with the request's fingerprint, an owner (`<pid>:<random
   token>`) and a lease, committed at once in a short transaction of its own. A second request
   with the same key finds that row: another body is 422 `IDEMPOTENCY_KEY_REUSED`; a stored
   answer is replayed with `Idempotent-Replayed: true`; a running owner is 409
   `IDEMPOTENCY_KEY_IN_USE`; a dead owner's claim is taken over (see below).
2. The view runs. Its service changes rows without committing (transaction.py).
3. The answer (status and body) is written to the row, conditionally on still owning it, and
   committed in the SAME transaction as the change. A crash before that commit leaves neither
   the change nor the answer, only the claim; a crash after it leaves both, and a repeat
   replays the answer.

How a repeat tells a dead owner from a running one (the claim dies with its owner, not with a
clock):

- PostgreSQL: before it reads the row, a request takes a session-level advisory lock on
  (caller, key) on a connection of its own, held until it has answered. The server drops the
  lock when that connection ends: the owner's process died, or the server restarted. So a
  request that gets the lock and finds an unanswered claim knows its owner is dead and takes
  over at once. One that cannot get it still reads the row, changing nothing: another body is
  422 and a stored answer is replayed (the holder may be a repeat replaying it), else 409.
  The lock lives on a connection apart from the request's session, which returns its
  connection to the pool at each commit (a lock left there would outlive the request). A
  request thus holds two connections: gunicorn's sync workers serve one request at a time,
  so the pool (5 by default) always has the second.
- SQLite (one host by nature): the owner's process id is in the row. A claim whose process
  no longer exists is taken over at once. An owner in a live process (this one included)
  keeps its claim until its lease (`IDEMPOTENCY_LOCK_SECONDS`) has passed; so does a reused
  process id, or an owner row written without one.

Either way, an owner taken over by mistake (a live request presumed dead: its lock's
connection cut by a proxy, or its process in another container sharing the SQLite file)
commits nothing: its answer is written only where it still owns the row, so its change rolls
back with it.

Which answers are kept (a decision, as Stripe does): every answer below 500, a 4xx included,
so a retry of a refused payment or an exceeded limit gets the same refusal (send a new key to
try again). A 5xx is not kept: it means nothing changed, the claim is released and a retry with
the same key runs again. Answers given before the operation starts (401, 415, a malformed key,
409/422 of the key itself) are not kept either.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
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
# Set on `g` while a view runs under a claimed key.
_KEYED = "idempotency_key_held"


def key_held() -> bool:
    """Tell whether this request runs under a claimed Idempotency-Key: its change must then
    share one transaction (and connection) with the stored answer."""
    return bool(g.get(_KEYED))


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
                return view(*args, **kwargs)  # committed after its answer (transaction.py)
            name, key = caller(), _valid_key(key)
            with key_lock(name, key) as lock:
                row, owner = claim(name, key, _fingerprint(), lock)
                if owner is None:
                    return _replay(row)
                return _run(view, row.id, owner, args, kwargs)

        # Read by the openapi package to document the header; functools.wraps carries it to
        # outer wrappers.
        wrapper.honours_idempotency_key = True  # type: ignore[attr-defined]
        return wrapper

    return decorate


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


class Lock(enum.Enum):
    """What the advisory lock of (caller, key) says about the requests running under the key."""

    TAKEN = "taken"  # this request holds it: no other request runs under the key
    BUSY = "busy"  # a live request holds it
    ABSENT = "absent"  # no advisory locks (SQLite): the row's process id and lease tell


@contextlib.contextmanager
def key_lock(caller: str, key: str) -> Iterator[Lock]:
    """Hold PostgreSQL's advisory lock of (caller, key) for the request, when it is free.

    Taken on a connection of its own, in autocommit mode (the lock belongs to the session,
    not to a transaction, and the connection never idles inside one). Always unlocked and
    returned; a connection that cannot be unlocked is closed instead, so that no pooled
    connection keeps the lock. The server drops it anyway when the connection ends.
    """
    if db.engine.dialect.name != "postgresql":
        yield Lock.ABSENT
        return
    lock_id = _lock_id(caller, key)
    connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    taken = False
    try:
        taken = bool(connection.scalar(sa.select(sa.func.pg_try_advisory_lock(lock_id))))
        yield Lock.TAKEN if taken else Lock.BUSY
    finally:
        try:
            if taken:
                connection.execute(sa.select(sa.func.pg_advisory_unlock(lock_id)))
        except SQLAlchemyError:
            # The connection or the server is gone, and the lock with it; never pool it.
            with contextlib.suppress(SQLAlchemyError):
                connection.invalidate()
        with contextlib.suppress(SQLAlchemyError):
            connection.close()


def _lock_id(caller: str, key: str) -> int:
    """The advisory lock's 64-bit id: the first 8 bytes of SHA-256 of caller and key."""
    digest = hashlib.sha256(f"idempotency\n{caller}\n{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def claim(
    caller: str, key: str, fingerprint: str, lock: Lock = Lock.ABSENT
) -> tuple[IdempotencyKey, str | None]:
    """Claim (caller, key) for this request and commit the claim.

    Returns the row and this request's owner, or the row and None when its stored answer
    is to be replayed. Raises 422 for another body under the key and 409 while it runs.
    """
    owner = f"{os.getpid()}:{secrets.token_hex(16)}"
    for _attempt in range(2):
        row = _find(caller, key)
        if row is None:
            if lock is Lock.BUSY:
                raise _in_use()  # the lock's holder is claiming it right now
            if _insert(caller, key, fingerprint, owner):
                return _find(caller, key), owner
            continue  # a concurrent request inserted it first: judge its row
        return _judge(row, fingerprint, owner, lock)
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


def _judge(
    row: IdempotencyKey, fingerprint: str, owner: str, lock: Lock
) -> tuple[IdempotencyKey, str | None]:
    """Decide what a request finding an existing row gets: replay, take over, 409 or 422."""
    now = clock.now()
    expired = row.expires_at <= now
    if not expired:
        if row.fingerprint != fingerprint:
            raise ApiError(
                "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was already used with another request body; use a new key.",
                {"field": HEADER},
            )
        if row.response_status is not None:
            return row, None
    if lock is Lock.BUSY or (not expired and _owner_may_run(row, lock, now)):
        raise _in_use()
    # A dead owner's change rolled back with it: this request runs the operation afresh.
    return row, _take_over(row, fingerprint, owner, reset=expired)


def _owner_may_run(row: IdempotencyKey, lock: Lock, now: datetime) -> bool:
    """Tell whether the request that claimed the unanswered row may still be running."""
    if lock is Lock.TAKEN:
        return False  # its advisory lock, now this request's, ended with its connection
    if _process_gone(row.owner):
        return False
    return row.locked_until is not None and row.locked_until > now


def _process_gone(owner: str | None) -> bool:
    """Tell whether the process named by an owner (`<pid>:<token>`) no longer exists.

    A killed process counts as alive until its parent reaps it (gunicorn's master does at once).
    """
    pid, _, _ = (owner or "").partition(":")
    if not pid.isdigit() or int(pid) in (0, os.getpid()):
        return False  # no pid (0 would ask about this process group), or this very process
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):
        return False  # another user's live process, or no pid this system can have
    return False


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
    """How long an owner in a live process holds its key before a repeat presumes it dead."""
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
    """Run the view, then commit its answer with its change (in place of transaction.py)."""
    g.setdefault(_KEYED, True)
    try:
        response = current_app.make_response(view(*args, **kwargs))
    except (ApiError, ValidationError, HTTPException) as error:
        db.session.rollback()  # a refusal changed nothing; store it in a transaction of its own
        response = current_app.make_response(current_app.handle_user_exception(error))
    except BaseException:
        _release(row_id, owner)
        raise
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
        # The database is away. The claim stays, and dies with this request: its advisory
        # lock (PostgreSQL) ends with the connection, its lease (SQLite) runs out.
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
