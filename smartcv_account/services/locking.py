"""The user's row as the lock every write takes first.

A write of a user's data (a profile change, a new subscription, a deletion, a link's change)
starts by locking that user's row, so that writes of one user are applied one after another:
a deletion either waits for a racing request's commit (and then undoes what it did) or
commits first (and the racing request finds no live row: 401 or INVALID_TOKEN). Taking the
user's lock before any other keeps the order of locks the same everywhere, so two writes of
one user never deadlock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..errors import ApiError
from ..extensions import db
from ..models import User
from ..principal import Principal


def load_user(user_id: int) -> User:
    """Load the ORM user a read needs beyond the principal (a write locks it: `lock_user`)."""
    return db.session.get_one(User, user_id)


def lock_user(principal: Principal, values: Mapping[str, Any] | None = None) -> User:
    """Load the signed-in user a write changes, locked until the commit, or refuse with 401;
    with `values`, the lock is their UPDATE (a change of the user's own columns that needs no
    other row: one statement, where setting them on the model would flush a second).

    A deletion or a credential change of the same user either committed before this (the
    row is then gone from under this session: 401, as with no session at all) or waits for
    this request's commit. Nothing the user sends is applied to an erased account.
    """
    user = lock_user_where(
        User.id == principal.id,
        User.credential_version == principal.credential_version,
        values=values,
    )
    if user is None:
        raise ApiError(
            "UNAUTHORIZED",
            "This session ended while the request waited (the account was deleted or its"
            " password changed); sign in to continue.",
        )
    return user


def lock_user_where(
    *criteria: sa.ColumnElement[bool], values: Mapping[str, Any] | None = None
) -> User | None:
    """Return the live user matching `criteria`, locked until the commit, or None.

    An UPDATE … RETURNING, a no-op without `values`: on PostgreSQL it takes the row's lock, on
    SQLite the database's write lock, and either way it reads the row as the last commit left
    it (with `values` applied). It is the transaction's first write, so locks are always taken
    user row first.
    """
    statement = (
        sa.update(User)
        .where(*criteria, User.deleted_at.is_(None))
        .values(values or {"credential_version": User.credential_version})
        .returning(User)
        .execution_options(populate_existing=True)
    )
    return db.session.scalar(statement)
