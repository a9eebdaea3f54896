"""Configuration read from environment variables, with development defaults."""

from __future__ import annotations

import os
from pathlib import Path

from zxcvbn import zxcvbn

DEV_SECRET_KEY = "dev-only-secret-key-change-me"
ENVIRONMENTS = ("development", "test", "production")
# zxcvbn's estimate of the guesses a production SECRET_KEY needs (10**25, about 83 bits). zxcvbn
# rates random 32-character hex strings between 10**28 and 10**39 (measured on 1,500 of them),
# so each passes; a repeated, sequential or dictionary-built key rates below 10**24 and fails.
MIN_SECRET_GUESSES_LOG10 = 25


def _flag(name: str, default: bool) -> bool:
    """Read a boolean environment variable (`1/true/yes/on` are true)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    """Read an integer environment variable."""
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _database_url(instance_path: Path) -> str:
    """Return DATABASE_URL, normalised to the psycopg 3 driver for PostgreSQL."""
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'smartcv.db'}"
    # Heroku-style URLs say postgres:// or postgresql://; SQLAlchemy would pick psycopg2.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class ConfigError(RuntimeError):
    """The environment asks for an unsafe or impossible configuration."""


def load_config(instance_path: Path) -> dict:
    """Build the Flask configuration mapping from the environment."""
    env = os.environ.get("SMARTCV_ENV", os.environ.get("FLASK_ENV", "development"))
    if env not in ENVIRONMENTS:
        raise ConfigError(f"SMARTCV_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    database_url = _database_url(instance_path)
    config = {
        "ENV_NAME": env,
        "SECRET_KEY": os.environ.get("SECRET_KEY", DEV_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # Sessions: the cookie only points at a server-side record (see services/sessions.py);
        # session_cookie.py sets it (HttpOnly, SameSite=Lax) for SESSION_LIFETIME_DAYS.
        "SESSION_COOKIE_NAME": "smartcv_session",
        "SESSION_COOKIE_SECURE": _flag("SESSION_COOKIE_SECURE", True),
        "SESSION_LIFETIME_DAYS": _int("SESSION_LIFETIME_DAYS", 30),
        "BCRYPT_ROUNDS": _int("BCRYPT_ROUNDS", 12),
        "TOTP_ISSUER": os.environ.get("TOTP_ISSUER", "SmartCV"),
        # Key for encrypting TOTP secrets at rest and keying backup-code hashes;
        # derived from SECRET_KEY when not given.
        "DATA_ENCRYPTION_KEY": os.environ.get("DATA_ENCRYPTION_KEY", ""),
        "RATELIMIT_ENABLED": _flag("RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_LOGIN_PER_ADDRESS": os.environ.get(
            "RATELIMIT_LOGIN_PER_ADDRESS", "30 per minute; 200 per hour"
        ),
        "RATELIMIT_LOGIN_FAILURES_PER_EMAIL": os.environ.get(
            "RATELIMIT_LOGIN_FAILURES_PER_EMAIL", "10 per 15 minutes"
        ),
        "RATELIMIT_REGISTER_PER_ADDRESS": os.environ.get(
            "RATELIMIT_REGISTER_PER_ADDRESS", "10 per hour"
        ),
        "RATELIMIT_REGISTER_PER_EMAIL": os.environ.get(
            "RATELIMIT_REGISTER_PER_EMAIL", "5 per hour"
        ),
        "BILLING_PROVIDER": os.environ.get("BILLING_PROVIDER", "local"),
        # Where `flask clock` keeps the moved time (never read in production; "" disables).
        "TEST_CLOCK_FILE": os.environ.get(
            "TEST_CLOCK_FILE", str(instance_path / "test-clock.json")
        ),
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY", ""),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", ""),
        # Retries of a failed Stripe call (default: 2 against Stripe, 0 against STRIPE_API_BASE).
        "STRIPE_MAX_NETWORK_RETRIES": os.environ.get("STRIPE_MAX_NETWORK_RETRIES", ""),
        # What one request may spend waiting on the provider, its calls and retries included:
        # below gunicorn's 30 s worker timeout, so the answer is a 503, never a killed worker.
        "PROVIDER_TIME_BUDGET_SECONDS": _int("PROVIDER_TIME_BUDGET_SECONDS", 20),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_local_development"),
        "INTERNAL_API_TOKEN": os.environ.get("INTERNAL_API_TOKEN", ""),
        # SQLite: how long a request under an Idempotency-Key holds its key while its process
        # lives (longer than gunicorn's worker timeout). A claim whose owner died is free at
        # once: PostgreSQL drops the owner's advisory lock, SQLite finds its process gone.
        "IDEMPOTENCY_LOCK_SECONDS": _int("IDEMPOTENCY_LOCK_SECONDS", 60),
        # Exact origins whose pages may call the API with credentials (comma-separated).
        "CORS_ORIGINS": os.environ.get("CORS_ORIGINS", ""),
        "PLAN_CACHE_SECONDS": _int("PLAN_CACHE_SECONDS", 60),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO").upper(),
        # Proxies (load balancers) in front of the service whose X-Forwarded-For/-Proto to
        # trust; 0 trusts none, so a client cannot pick the address its rate limits count on.
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        # The guessing limit (services/guessing.py): wrong answers to an account's password or
        # second factor, on every endpoint that asks for one, counted in the database.
        "RATELIMIT_SECURITY_FAILURES_PER_USER": os.environ.get(
            "RATELIMIT_SECURITY_FAILURES_PER_USER", "10 per 15 minutes"
        ),
        "RATELIMIT_EXPORT_PER_USER": os.environ.get("RATELIMIT_EXPORT_PER_USER", "5 per hour"),
        # Activity events older than this are deleted by `flask prune-activity`.
        "ACTIVITY_RETENTION_DAYS": _int("ACTIVITY_RETENTION_DAYS", 365),
        **_mail_config(),
    }
    config.update(_sign_in_config())
    return config


def _sign_in_config() -> dict:
    """Passkeys (WebAuthn) and OpenID Connect providers (services/passkeys.py, oidc.py).

    An empty WEBAUTHN_RP_ID or WEBAUTHN_ORIGINS means APP_BASE_URL's host or origin.
    """
    config = {
        "WEBAUTHN_RP_ID": os.environ.get("WEBAUTHN_RP_ID", ""),
        "WEBAUTHN_RP_NAME": os.environ.get("WEBAUTHN_RP_NAME", "SmartCV"),
        "WEBAUTHN_ORIGINS": os.environ.get("WEBAUTHN_ORIGINS", ""),
        "OIDC_PROVIDERS": os.environ.get("OIDC_PROVIDERS", ""),
    }
    for name in filter(None, (n.strip() for n in config["OIDC_PROVIDERS"].split(","))):
        prefix = f"OIDC_{name.upper()}_"
        for key in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET", "DISPLAY_NAME"):
            config[prefix + key] = os.environ.get(prefix + key, "")
    return config


def _mail_config() -> dict:
    """Mail delivery (smartcv_account/mail), its links and the email flows' rate limits."""
    return {
        "MAIL_URL": os.environ.get("MAIL_URL", "log://"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "SmartCV <no-reply@localhost>"),
        "MAIL_TIMEOUT": _int("MAIL_TIMEOUT", 10),
        "MAIL_RETRY_HOURS": _int("MAIL_RETRY_HOURS", 72),
        "MAIL_KEEP_DAYS": _int("MAIL_KEEP_DAYS", 30),
        "APP_BASE_URL": os.environ.get("APP_BASE_URL", "http://localhost:3000").rstrip("/"),
        "RATELIMIT_VERIFY_EMAIL_PER_USER": os.environ.get(
            "RATELIMIT_VERIFY_EMAIL_PER_USER", "5 per hour"
        ),
        "RATELIMIT_PASSWORD_RESET_PER_ADDRESS": os.environ.get(
            "RATELIMIT_PASSWORD_RESET_PER_ADDRESS", "10 per hour"
        ),
        "RATELIMIT_PASSWORD_RESET_PER_EMAIL": os.environ.get(
            "RATELIMIT_PASSWORD_RESET_PER_EMAIL", "5 per hour"
        ),
        "RATELIMIT_EMAIL_CHANGE_PER_USER": os.environ.get(
            "RATELIMIT_EMAIL_CHANGE_PER_USER", "10 per hour"
        ),
        # Confirmations to one address, whoever asks; counted in the database (mail/quota.py).
        "RATELIMIT_EMAIL_CHANGE_MAILS_PER_ADDRESS": os.environ.get(
            "RATELIMIT_EMAIL_CHANGE_MAILS_PER_ADDRESS", "3 per hour"
        ),
    }


def _engine_options(database_url: str) -> dict:
    """Pool settings: pre-ping and sizes for servers, plain defaults for SQLite."""
    if database_url.startswith("sqlite"):
        return {}
    return {
        "pool_pre_ping": True,
        "pool_size": _int("DB_POOL_SIZE", 5),
        "max_overflow": _int("DB_MAX_OVERFLOW", 5),
        "pool_recycle": _int("DB_POOL_RECYCLE", 1800),
    }


def check_production_safety(config: dict) -> None:
    """Refuse to run in production with development secrets or per-worker rate limits."""
    if config["ENV_NAME"] != "production":
        return
    secret = config["SECRET_KEY"]
    if secret in ("", DEV_SECRET_KEY) or len(secret) < 32:
        raise ConfigError(
            "SECRET_KEY must be set to a random value of 32+ characters in production"
        )
    if not _unguessable(secret):
        raise ConfigError(
            "SECRET_KEY must be set to a random value in production (it is too predictable);"
            " make one with: python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    if config["STRIPE_WEBHOOK_SECRET"] == "whsec_local_development":
        raise ConfigError("STRIPE_WEBHOOK_SECRET must be set in production")
    # Flask-Limiter counts in memory when none is named; each gunicorn worker would then keep
    # its own counts, and N workers allow N times each limit.
    if (config.get("RATELIMIT_STORAGE_URI") or "memory://").startswith("memory:"):
        raise ConfigError(
            "RATELIMIT_STORAGE_URI must name storage every worker shares in production"
            " (memory:// counts per worker); set it to e.g. redis://host:6379/0"
        )


def _unguessable(secret: str) -> bool:
    """Tell whether zxcvbn rates the secret as random enough (it scores the first 100 chars)."""
    return zxcvbn(secret[:100])["guesses_log10"] >= MIN_SECRET_GUESSES_LOG10
