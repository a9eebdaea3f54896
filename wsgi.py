"""The gunicorn and `flask --app wsgi` target."""

from smartcv_account import create_app
from smartcv_account.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One line for the operator (gunicorn and `flask` alike), exit status 1, no traceback.
    raise SystemExit(f"Error: {error}") from None
