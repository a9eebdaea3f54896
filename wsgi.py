"""The gunicorn and `flask --app wsgi` target."""

from smartcv_account import create_app

app = create_app()
