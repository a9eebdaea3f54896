"""The stack floor: the floor's database work plus what the service's chosen libraries cost.

The floor (bench/floor_app.py) is the least a bare Flask app pays for the database work. The
service also runs, by the project's choice of stack, Flask-Login, marshmallow and one JSON log
line per request. This app adds exactly those to the floor and nothing of the service's own
code, so the ratio of its requests/s to the floor's is the most the service could reach on
this stack, and the service's ratio to it is what the service's own code costs:

- a read: the floor's SELECT run by Flask-Login's `request_loader` behind `login_required`,
  the answer dumped by the service's `account_schema`;
- a write: the internal token checked, the body loaded by the service's `usage_change_schema`,
  the floor's `UPDATE … RETURNING`, the answer dumped by the service's `usage_schema`;
- the verify call: the internal token checked, the body loaded by the service's
  `verify_schema`, the verify floor's `UPDATE … RETURNING`, the answer dumped by the service's
  `verified_schema`;
- each request writes one log line through the service's own handler (`logs.make_handler`).

gunicorn target: `bench.stack_app:create_app()` (the database is DATABASE_URL).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from datetime import datetime
from types import SimpleNamespace

from flask import Flask, abort, jsonify, request
from flask_login import LoginManager, UserMixin, current_user, login_required
from marshmallow import ValidationError

from bench import floor_app
from smartcv_account.logs import REQUEST_LOGGER, make_handler
from smartcv_account.schemas.account import account_schema
from smartcv_account.schemas.api_keys import verified_schema, verify_schema
from smartcv_account.schemas.usage import usage_change_schema, usage_schema


def as_datetime(value: datetime | str | None) -> datetime | None:
    """A stored time as the schemas take it (SQLite's driver hands back text)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class RowUser(UserMixin):
    """The floor's row as Flask-Login's user."""

    def __init__(self, row: tuple) -> None:
        self.row = row
        self.id = row[0]


def account_object(row: tuple) -> SimpleNamespace:
    """The floor's row as the attributes `account_schema` dumps."""
    shaped = floor_app.account(row)
    user = dict(zip(floor_app.USER_COLUMNS, row, strict=True))
    return SimpleNamespace(
        id=shaped["id"],
        email=shaped["email"],
        name=shaped["name"],
        avatar=shaped["avatar"],
        email_verified=shaped["emailVerified"],
        email_verified_at=as_datetime(user["email_verified_at"]),
        subscription_type="FREE",
        subscription_status="ACTIVE",
        subscription_expires_at=None,
        resumes_created=shaped["resumesCreated"],
        resumes_limit=shaped["resumesLimit"],
        api_requests_used=shaped["apiRequestsUsed"],
        api_requests_limit=shaped["apiRequestsLimit"],
        storage_used=shaped["storageUsed"],
        storage_limit=shaped["storageLimit"],
        preferences={
            "language": user["language"],
            "timezone": user["timezone"],
            "theme": user["theme"],
            "email_notifications": bool(user["email_notifications"]),
            "marketing_emails": bool(user["marketing_emails"]),
        },
        created_at=as_datetime(user["created_at"]),
        updated_at=as_datetime(user["updated_at"]),
        last_login_at=as_datetime(user["last_login_at"]),
    )


def create_app(url: str | None = None) -> Flask:
    """Build the stack floor on the database at `url` (default: DATABASE_URL)."""
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False
    app.config["SQLALCHEMY_DATABASE_URI"] = url or floor_app.database_url()
    database = floor_app.Database(app.config["SQLALCHEMY_DATABASE_URI"])
    token = os.environ.get("INTERNAL_API_TOKEN", "")
    log = logging.getLogger(REQUEST_LOGGER)  # the service's request line, masked alike
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(make_handler(app))
    login_manager = LoginManager(app)
    login_manager.session_protection = None

    @login_manager.request_loader
    def load(req):
        cookie = req.cookies.get(floor_app.COOKIE_NAME, "")
        digest = hashlib.sha256(cookie.encode()).hexdigest()
        row = database.one(database.read_sql, (digest, database.now()))
        return None if row is None else RowUser(row)

    @app.before_request
    def start():
        request.environ["bench.started"] = time.perf_counter()

    @app.after_request
    def log_line(response):
        elapsed = time.perf_counter() - request.environ["bench.started"]
        fields = {"method": request.method, "path": request.path, "status": response.status_code}
        fields["duration_ms"] = round(elapsed * 1000, 2)
        fields["remote_addr"] = request.remote_addr
        log.info("%s %s %s", request.method, request.path, response.status_code, extra=fields)
        return response

    @app.get("/healthz")
    def healthz():
        """Answer once the database does."""
        database.one("SELECT 1", ())
        return jsonify({"success": True, "data": {"status": "ok"}})

    @app.get("/api/account")
    @app.get("/api/account/subscription")
    @login_required
    def read():
        """The floor's read behind Flask-Login, dumped by the service's schema."""
        data = account_schema.dump(account_object(current_user.row))
        return jsonify({"success": True, "data": data})

    @app.post("/api/internal/users/<public_id>/usage")
    def write(public_id: str):
        """The floor's write behind the token check and the service's schemas."""
        bearer = request.headers.get("Authorization", "")
        if not hmac.compare_digest(bearer, f"Bearer {token}"):
            abort(401)
        try:
            change = usage_change_schema.load(request.get_json())
        except ValidationError:
            abort(400)
        row = database.one(database.write_sql[change["metric"]], (change["delta"], public_id))
        if row is None:
            abort(404)
        resumes, api_requests, storage, reset_at = row
        counters = {
            "resumes_created": resumes,
            "resumes_limit": floor_app.LIMITS["resumesLimit"],
            "api_requests_used": api_requests,
            "api_requests_limit": floor_app.LIMITS["apiRequestsLimit"],
            "storage_used": storage,
            "storage_limit": floor_app.LIMITS["storageLimit"],
            "reset_date": as_datetime(reset_at),
        }
        return jsonify({"success": True, "data": usage_schema.dump(counters)})

    @app.post("/api/internal/api-keys/verify")
    def verify():
        """The floor's verify call behind the token check and the service's schemas."""
        bearer = request.headers.get("Authorization", "")
        if not hmac.compare_digest(bearer, f"Bearer {token}"):
            abort(401)
        try:
            fields = verify_schema.load(request.get_json())
        except ValidationError:
            abort(400)
        digest = hashlib.sha256(fields["key"].encode()).hexdigest()
        row = database.one(database.verify_sql, (digest,))
        if row is None:
            abort(401)
        user_id, used, reset_at = row
        answer = {
            "key_id": None,
            "user_id": user_id,
            "scopes": [],
            "subscription_type": "FREE",
            "usage": {
                "api_requests_used": used,
                "api_requests_limit": floor_app.LIMITS["apiRequestsLimit"],
                "reset_date": as_datetime(reset_at),
            },
        }
        return jsonify({"success": True, "data": verified_schema.dump(answer)})

    return app
