"""Oversized request lines and headers reach the app under gunicorn: JSON, not gunicorn's HTML."""

from __future__ import annotations

import pytest
import requests

from .gunicorn_helpers import flask_cli, gunicorns, service_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """One gunicorn with the project's config on a fresh SQLite database."""
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'limits.db'}"
    env = service_env(url)
    flask_cli(env, "db", "upgrade")
    with gunicorns(env, workers=1) as (running,):
        yield running


def assert_envelope(response: requests.Response, status: int, code: str) -> None:
    """The answer is the contract's JSON error envelope."""
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:200]
    assert response.status_code == status
    assert response.json()["code"] == code


def test_a_long_request_line_gets_json(instance):
    response = requests.get(f"{instance.url}/api/account?pad={'x' * 6000}", timeout=10)
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_a_long_header_gets_json(instance):
    response = requests.get(
        f"{instance.url}/api/account", headers={"X-Padding": "x" * 10000}, timeout=10
    )
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_many_headers_get_json(instance):
    headers = {f"X-Extra-{index}": "1" for index in range(150)}
    response = requests.get(f"{instance.url}/api/account", headers=headers, timeout=10)
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_a_chunked_body_over_1_mib_is_413(instance):
    def chunks():
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(80):
            yield b"x" * 16384
        yield b'", "name": "n"}'

    response = requests.post(
        f"{instance.url}/api/auth/register",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
