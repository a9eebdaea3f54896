"""The floor: the least a bare Flask app on the service's stack pays for the same database work.

Served by gunicorn exactly as the service is (same config file, flags and worker count), on the
service's migrated database, answering the benchmark's byte-identical requests:

- a read (`GET /api/account`, `GET /api/account/subscription`): the SHA-256 of the session
  cookie, then one SELECT of the live session joined to its user through the unique
  `token_hash` index, in autocommit, answered with a body shaped like GET /api/account whose
  fields come from the row (401 when no live session matches);
- a write (`POST /api/internal/users/<id>/usage`): one `UPDATE users … RETURNING` of the named
  counter, in autocommit, answered with a body shaped like the usage answer (404 when no user
  has the id);
- the verify call (`POST /api/internal/api-keys/verify`): the SHA-256 of the key, then one
  `UPDATE users … RETURNING` adding 1 to the API-request counter of the user whose key has that
  hash (through the unique `secret_hash` index), in autocommit, answered with a body shaped like
  the verify answer (401 when no key matches).

What it leaves out is what the service adds: Flask-Login, the subscription join, the plan and
entitlement rules, schemas, the request log line, headers, the limit in the write's WHERE and
the write's transaction (BEGIN and COMMIT around the UPDATE), and for the verify call the key's
checks (revoked, expiry, scope), its other columns and its last use. It takes SQLAlchemy's cheapest
public path: a pooled DBAPI connection (`Engine.raw_connection`, no pre-ping) and the driver's
cursor. SQLite gets the service's pragmas, so a commit costs both the same.

gunicorn target: `bench.floor_app:create_app()` (the database is DATABASE_URL).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask, abort, jsonify, request

COOKIE_NAME = "smartcv_session"
# The free plan's limits: the floor answers the shape of the usage object, not its rules.
LIMITS = {"resumesLimit": 5, "apiRequestsLimit": 100, "storageLimit": 10485760}
USER_COLUMNS = (
    "public_id",
    "email",
    "name",
    "avatar",
    "email_verified_at",
    "language",
    "timezone",
    "theme",
    "email_notifications",
    "marketing_emails",
    "resumes_created",
    "api_requests_used",
    "storage_used",
    "created_at",
    "updated_at",
    "last_login_at",
)
# Parameters as question marks (sqlite3); psycopg's %s replaces them (`Database.driver_sql`).
READ_SQL = (
    f"SELECT {', '.join('u.' + name for name in USER_COLUMNS)}"
    " FROM auth_sessions AS s JOIN users AS u ON u.id = s.user_id"
    " WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?"
    " AND s.credential_version = u.credential_version"
)
COUNTER_COLUMNS = {
    "resumes": "resumes_created",
    "apiRequests": "api_requests_used",
    "storage": "storage_used",
}
WRITE_SQL = {
    metric: f"UPDATE users SET {column} = {column} + ? WHERE public_id = ?"
    " RETURNING resumes_created, api_requests_used, storage_used, api_requests_reset_at"
    for metric, column in COUNTER_COLUMNS.items()
}

VERIFY_SQL = (
    "UPDATE users SET api_requests_used = api_requests_used + 1"
    " WHERE id = (SELECT user_id FROM api_keys WHERE secret_hash = ?)"
    " RETURNING public_id, api_requests_used, api_requests_reset_at"
)


def database_url() -> str:
    """Return DATABASE_URL, with PostgreSQL on the psycopg 3 driver as the service has it."""
    url = os.environ["DATABASE_URL"]
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(connection, _record) -> None:
    """Write-ahead logging and synchronous=NORMAL on each new connection, as the service has."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def timestamp(value: datetime | str | None) -> str | None:
    """Write a stored UTC time as the API does (SQLite hands back text, psycopg a datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value[:19].replace(" ", "T") + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


class Database:
    """An autocommit engine, and one statement at a time on a pooled connection's cursor."""

    def __init__(self, url: str) -> None:
        # Autocommit: a lone statement needs no BEGIN or COMMIT, and nothing to reset on return.
        self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
        self.sqlite = self.engine.dialect.name == "sqlite"
        if self.sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.read_sql = self.driver_sql(READ_SQL)
        self.write_sql = {metric: self.driver_sql(sql) for metric, sql in WRITE_SQL.items()}
        self.verify_sql = self.driver_sql(VERIFY_SQL)

    def driver_sql(self, sql: str) -> str:
        """Return the statement in the driver's parameter style."""
        return sql if self.sqlite else sql.replace("?", "%s")

    def now(self) -> datetime | str:
        """Return the current time as the service stores it: naive UTC (text on SQLite)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        return now.isoformat(sep=" ", timespec="microseconds") if self.sqlite else now

    def one(self, sql: str, parameters: tuple) -> tuple | None:
        """Run one statement on a pooled connection and return its first row."""
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, parameters)
                return cursor.fetchone()
            finally:
                cursor.close()  # on SQLite this ends the statement, and with it the write lock
        finally:
            connection.close()


def account(row: tuple) -> dict:
    """Return the read's row in GET /api/account's shape (the plan's fields as the free plan)."""
    user = dict(zip(USER_COLUMNS, row, strict=True))
    return {
        "id": user["public_id"],
        "email": user["email"],
        "name": user["name"],
        "avatar": user["avatar"],
        "emailVerified": user["email_verified_at"] is not None,
        "emailVerifiedAt": timestamp(user["email_verified_at"]),
        "subscriptionType": "FREE",
        "subscriptionStatus": "ACTIVE",
        "subscriptionExpiresAt": None,
        "resumesCreated": user["resumes_created"],
        "resumesLimit": LIMITS["resumesLimit"],
        "apiRequestsUsed": user["api_requests_used"],
        "apiRequestsLimit": LIMITS["apiRequestsLimit"],
        "storageUsed": user["storage_used"],
        "storageLimit": LIMITS["storageLimit"],
        "preferences": {
            "language": user["language"],
            "timezone": user["timezone"],
            "theme": user["theme"],
            "emailNotifications": bool(user["email_notifications"]),
            "marketingEmails": bool(user["marketing_emails"]),
        },
        "createdAt": timestamp(user["created_at"]),
        "updatedAt": timestamp(user["updated_at"]),
        "lastLoginAt": timestamp(user["last_login_at"]),
    }


def usage(row: tuple) -> dict:
    """Return the write's returned row in the usage answer's shape."""
    resumes, api_requests, storage, reset_at = row
    return {
        "resumesCreated": resumes,
        "resumesLimit": LIMITS["resumesLimit"],
        "apiRequestsUsed": api_requests,
        "apiRequestsLimit": LIMITS["apiRequestsLimit"],
        "storageUsed": storage,
        "storageLimit": LIMITS["storageLimit"],
        "resetDate": timestamp(reset_at),
    }


def create_app(url: str | None = None) -> Flask:
    """Build the bare app on the database at `url` (default: DATABASE_URL)."""
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False  # as the service does
    database = Database(url or database_url())

    @app.get("/healthz")
    def healthz():
        """Answer once the database does."""
        database.one("SELECT 1", ())
        return jsonify({"success": True, "data": {"status": "ok"}})

    @app.get("/api/account")
    @app.get("/api/account/subscription")
    def read():
        """Find the cookie's live session and its user in one SELECT; answer the account."""
        token = request.cookies.get(COOKIE_NAME, "")
        digest = hashlib.sha256(token.encode()).hexdigest()
        row = database.one(database.read_sql, (digest, database.now()))
        if row is None:
            abort(401)
        return jsonify({"success": True, "data": account(row)})

    @app.post("/api/internal/users/<public_id>/usage")
    def write(public_id: str):
        """Add the delta to one counter in one `UPDATE … RETURNING`; answer the usage."""
        change = request.get_json()
        sql = database.write_sql.get(change.get("metric"))
        if sql is None or not isinstance(change.get("delta"), int):
            abort(400)
        row = database.one(sql, (change["delta"], public_id))
        if row is None:
            abort(404)
        return jsonify({"success": True, "data": usage(row)})

    @app.post("/api/internal/api-keys/verify")
    def verify():
        """Count one call for the key's user in one `UPDATE … RETURNING`; answer the usage."""
        key = request.get_json().get("key")
        if not isinstance(key, str):
            abort(400)
        digest = hashlib.sha256(key.encode()).hexdigest()
        row = database.one(database.verify_sql, (digest,))
        if row is None:
            abort(401)
        user_id, used, reset_at = row
        usage = {
            "apiRequestsUsed": used,
            "apiRequestsLimit": LIMITS["apiRequestsLimit"],
            "resetDate": timestamp(reset_at),
        }
        return jsonify({"success": True, "data": {"userId": user_id, "usage": usage}})

    return app
