"""SmartCV Account: the service that owns a user's account, security settings and subscription."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from .config import check_production_safety, load_config


def create_app(overrides: dict | None = None) -> Flask:
    """Build the application: configuration, extensions, blueprints, errors and CLI."""
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    app.config.update(load_config(Path(app.instance_path)))
    app.config.update(overrides or {})
    check_production_safety(app.config)
    app.json.sort_keys = False  # keep the document's field order in responses
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    register_clock(app)
    register_extensions(app)
    register_payments(app)
    register_blueprints(app)
    register_request_hooks(app)
    register_browser_rules(app)
    register_errors(app)
    register_commands(app)
    return app


def register_clock(app: Flask) -> None:
    """Let every process see the test clock's moved time, except in production."""
    from . import clock

    path = app.config.get("TEST_CLOCK_FILE")
    enabled = path and app.config["ENV_NAME"] != "production"
    clock.use_offset_file(Path(path) if enabled else None)


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions of `extensions.py` to this app."""
    from . import models  # noqa: F401 - registers the tables with the metadata
    from .extensions import db, limiter, migrate, tune_sqlite
    from .session_cookie import register_session_cookie

    db.init_app(app)
    tune_sqlite(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    limiter.init_app(app)
    register_session_cookie(app)


def register_payments(app: Flask) -> None:
    """Check the payment gateway's setting and declare the local gateway's tables."""
    from .payments import register_payments as register

    register(app)


def register_blueprints(app: Flask) -> None:
    """Mount one blueprint per endpoint group."""
    from .api import account, auth, health, internal, signin, subscription, ways_in, webhooks

    app.register_blueprint(health.bp)
    from .api import docs

    app.register_blueprint(docs.bp, url_prefix="/api")
    app.register_blueprint(auth.bp, url_prefix="/api/auth")
    app.register_blueprint(signin.bp, url_prefix="/api/auth")
    app.register_blueprint(account.bp, url_prefix="/api/account")
    from .api import lifecycle

    app.register_blueprint(lifecycle.bp, url_prefix="/api/account")
    app.register_blueprint(ways_in.bp, url_prefix="/api/account")
    app.register_blueprint(subscription.bp, url_prefix="/api/account/subscription")
    app.register_blueprint(webhooks.bp, url_prefix="/api/webhooks")
    app.register_blueprint(internal.bp, url_prefix="/api/internal")
    from .api import invoices, plans

    app.register_blueprint(plans.bp, url_prefix="/api/plans")
    app.register_blueprint(invoices.bp, url_prefix="/api/account/invoices")
    from .api import email

    app.register_blueprint(email.bp, url_prefix="/api")
    from .api import api_keys

    app.register_blueprint(api_keys.bp, url_prefix="/api/account/api-keys")
    from .api import team_members, teams

    app.register_blueprint(teams.bp, url_prefix="/api/teams")
    app.register_blueprint(team_members.bp, url_prefix="/api/teams")
    from .api import payment_methods

    app.register_blueprint(payment_methods.bp, url_prefix="/api/account/payment-methods")


def register_request_hooks(app: Flask) -> None:
    """Install the per-request checks shared by every endpoint."""
    from .http import register_http_hooks
    from .transaction import register_transaction

    register_http_hooks(app)
    register_transaction(app)


def register_browser_rules(app: Flask) -> None:
    """Answer CORS for the listed origins and refuse writes from other origins."""
    from .cors import register_cors

    register_cors(app)


def register_errors(app: Flask) -> None:
    """Render every failure as the contract's error envelope."""
    from .errors import register_error_handlers

    register_error_handlers(app)


def register_commands(app: Flask) -> None:
    """Add the operator's CLI commands."""
    from .cli import register_cli

    register_cli(app)
