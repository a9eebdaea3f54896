"""The operator's `revoke-sessions EMAIL` command."""

from __future__ import annotations

from .factories import UserFactory
from .helpers import signed_in


def test_revoke_sessions_makes_the_users_cookie_worthless(runner, auth_client, user, assert_error):
    result = runner.invoke(args=["revoke-sessions", user.email])
    assert result.exit_code == 0, result.output
    assert_error(auth_client.get("/api/account"), 401, "UNAUTHORIZED")


def test_revoke_sessions_ends_every_session_of_the_user(runner, app, user):
    clients = [signed_in(app, user.email) for _ in range(3)]
    runner.invoke(args=["revoke-sessions", user.email])
    assert [c.get("/api/account").status_code for c in clients] == [401, 401, 401]


def test_revoke_sessions_reports_how_many_it_revoked(runner, app, user):
    signed_in(app, user.email)
    signed_in(app, user.email)
    result = runner.invoke(args=["revoke-sessions", user.email])
    assert f"revoked 2 session(s) of {user.email}" in result.output


def test_revoke_sessions_leaves_other_users_signed_in(runner, app, user):
    other = UserFactory()
    other_client = signed_in(app, other.email)
    signed_in(app, user.email)
    runner.invoke(args=["revoke-sessions", user.email])
    assert other_client.get("/api/account").status_code == 200


def test_revoke_sessions_matches_email_case_insensitively(runner, auth_client, user):
    result = runner.invoke(args=["revoke-sessions", f" {user.email.upper()} "])
    assert result.exit_code == 0, result.output
    assert auth_client.get("/api/account").status_code == 401


def test_user_can_sign_in_again_after_revocation(runner, app, user, auth_client):
    runner.invoke(args=["revoke-sessions", user.email])
    assert signed_in(app, user.email).get("/api/account").status_code == 200


def test_revoke_sessions_of_unknown_email_exits_non_zero(runner):
    result = runner.invoke(args=["revoke-sessions", "nobody@example.com"])
    assert result.exit_code != 0
    assert "nobody@example.com" in result.output


def test_revoke_sessions_with_no_sessions_succeeds(runner, user):
    result = runner.invoke(args=["revoke-sessions", user.email])
    assert result.exit_code == 0
    assert "revoked 0 session(s)" in result.output


def test_revoke_sessions_help_comes_from_the_docstring(runner):
    result = runner.invoke(args=["revoke-sessions", "--help"])
    assert "Sign EMAIL out everywhere" in result.output
