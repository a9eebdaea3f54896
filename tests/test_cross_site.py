"""A page on another site cannot open the API in the user's browser: 403 before anything counts."""

from __future__ import annotations

import pytest

from .factories import UserFactory
from .helpers import signed_in
from .lifecycle_helpers import ACCOUNT_URL, EXPORT_URL, event_types

CROSS_SITE_NAVIGATION = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}


@pytest.fixture
def limited_app(app_factory):
    """The app with its rate limits on (export: 5 an hour per user), a context pushed."""
    application = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    with application.app_context():
        yield application


def test_cross_site_navigation_to_the_export_is_forbidden_and_burns_no_export(
    limited_app, assert_error
):
    me = signed_in(limited_app, UserFactory().email)
    for _ in range(6):
        refused = me.get(EXPORT_URL, headers=CROSS_SITE_NAVIGATION)
        assert_error(refused, 403, "FORBIDDEN")
    assert "data_exported" not in event_types(me)
    assert [me.get(EXPORT_URL).status_code for _ in range(6)] == [200] * 5 + [429]


def test_cross_site_navigation_to_the_account_is_forbidden(auth_client, assert_error):
    assert_error(auth_client.get(ACCOUNT_URL, headers=CROSS_SITE_NAVIGATION), 403, "FORBIDDEN")


@pytest.mark.parametrize("site", ["same-origin", "same-site", "none"])
def test_navigation_from_this_site_or_the_address_bar_is_served(auth_client, site):
    headers = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate"}
    assert auth_client.get(ACCOUNT_URL, headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["/api/docs", "/api/openapi.json"])
def test_the_reference_stays_open_to_cross_site_navigation(client, path):
    with client.get(path, headers=CROSS_SITE_NAVIGATION) as response:  # a file: close it
        assert response.status_code == 200


def test_a_cross_site_fetch_is_left_to_cors(auth_client):
    headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
    assert auth_client.get(ACCOUNT_URL, headers=headers).status_code == 200


def test_the_sign_in_redirects_are_not_refused_by_this_rule(client):
    response = client.get("/api/auth/oidc/example/callback", headers=CROSS_SITE_NAVIGATION)
    assert response.status_code != 403
