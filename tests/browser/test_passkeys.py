"""Passkeys in a real browser: Chromium's virtual authenticator (DevTools `WebAuthn` domain,
through Playwright) on a page served from the service's own origin (http://localhost:PORT,
the relying party `localhost`).

One browser context adds a passkey to a new account; a fresh context (another authenticator
holding the same synced credential, no cookie) signs in with it. The service then refuses the
same assertion sent again, an assertion made on a page of another origin, and an assertion
whose sign count went backwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from smartcv_account.extensions import db
from smartcv_account.models import OutboxMessage, Passkey, User
from smartcv_account.services.second_factor import enable_two_factor

PAGE = Path(__file__).with_name("passkey_page.html").read_text()
PASSWORD = "violet tugboat climbs seventeen ladders"
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


class Site:
    """A WSGI app serving the test page at /passkeys.html and everything else from `app`."""

    def __init__(self) -> None:
        self.app = None

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] == "/passkeys.html":
            return Response(PAGE, mimetype="text/html")(environ, start_response)
        if self.app is None:
            return Response("no API on this origin", 404)(environ, start_response)
        return self.app(environ, start_response)


def serve(site: Site):
    server = make_server("127.0.0.1", 0, site, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def origins(app_factory) -> Iterator[dict]:
    """The service with the test page on http://localhost:PORT, and another origin's page."""
    ours, theirs = Site(), Site()
    servers = [serve(ours), serve(theirs)]
    api = f"http://localhost:{servers[0][0].port}"
    app = app_factory(SESSION_COOKIE_SECURE=False, APP_BASE_URL=api)
    ours.app = app.wsgi_app
    try:
        yield {"app": app, "api": api, "other": f"http://localhost:{servers[1][0].port}"}
    finally:
        for server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


def authenticator(context, page) -> tuple:
    """A CDP session on `page` with a virtual passkey authenticator; (session, id)."""
    session = context.new_cdp_session(page)
    session.send("WebAuthn.enable")
    added = session.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    return session, added["authenticatorId"]


@pytest.mark.slow
def test_a_passkey_is_added_signs_in_and_refuses_replays_origins_and_clones(
    chromium, origins
) -> None:
    api, other = origins["api"], origins["other"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            # --- a new account adds a passkey -------------------------------------------------
            first = browser.new_context()
            page = first.new_page()
            page.goto(api + "/passkeys.html")
            devtools, first_id = authenticator(first, page)
            signed_up = page.evaluate(
                """([email, password]) => api("POST", "/api/auth/register",
                     {email, password, name: "Pat Key"})""",
                ["pat@example.com", PASSWORD],
            )
            assert signed_up["status"] == 201, signed_up
            added = page.evaluate("(p) => addPasskey('Laptop', p)", PASSWORD)
            options = added["options"]["body"]["data"]["publicKey"]
            assert options["rp"]["id"] == "localhost"
            assert options["authenticatorSelection"]["residentKey"] == "required"
            assert options["authenticatorSelection"]["userVerification"] == "required"
            assert options["attestation"] == "none"
            assert options["excludeCredentials"] == []
            assert added["added"]["status"] == 201, added
            passkey = added["added"]["body"]["data"]
            assert passkey["id"].startswith("pk_") and passkey["name"] == "Laptop"
            assert passkey["lastUsedAt"] is None
            listed = page.evaluate("() => api('GET', '/api/account/passkeys')")
            assert [p["id"] for p in listed["body"]["data"]] == [passkey["id"]]
            # The same response again is refused: its challenge is spent.
            again = page.evaluate(
                "(c) => api('POST', '/api/account/passkeys', {name: 'Again', credential: c})",
                added["credential"],
            )
            assert again["status"] == 400 and again["body"]["code"] == "INVALID_PASSKEY", again
            [credential] = devtools.send("WebAuthn.getCredentials", {"authenticatorId": first_id})[
                "credentials"
            ]
            assert credential["isResidentCredential"] is True
            first.close()
            with origins["app"].app_context():
                user = db.session.scalar(sa.select(User))
                kinds = db.session.scalars(
                    sa.select(OutboxMessage.kind).where(OutboxMessage.user_id == user.id)
                ).all()
                assert "notice_passkey_added" in kinds
                # A passkey verified the user: no second factor is asked even with it on.
                enable_two_factor(user)
                db.session.commit()
                db.session.remove()

            # --- a fresh context (the passkey synced to another device) signs in -------------
            fresh = browser.new_context()
            page = fresh.new_page()
            page.goto(api + "/passkeys.html")
            devtools, fresh_id = authenticator(fresh, page)
            devtools.send(
                "WebAuthn.addCredential", {"authenticatorId": fresh_id, "credential": credential}
            )
            assert page.evaluate("() => api('GET', '/api/account')")["status"] == 401
            signed_in = page.evaluate("() => signInWithPasskey()")
            assert signed_in["answer"]["status"] == 200, signed_in
            assert signed_in["answer"]["body"]["data"]["email"] == "pat@example.com"
            request_options = signed_in["options"]["body"]["data"]["publicKey"]
            assert request_options["rpId"] == "localhost"
            assert request_options["userVerification"] == "required"
            assert request_options.get("allowCredentials", []) == []  # no email asked
            account = page.evaluate("() => api('GET', '/api/account')")
            assert account["status"] == 200
            activity = page.evaluate("() => api('GET', '/api/account/activity')")
            [login] = [
                e for e in activity["body"]["data"]["events"] if e["type"] == "login_succeeded"
            ][:1]
            assert login["details"] == {"method": "passkey"}

            # --- the same assertion again is refused -----------------------------------------
            replay = requests.post(
                api + "/api/auth/passkey",
                json={"credential": signed_in["credential"]},
                timeout=10,
            )
            assert replay.status_code == 401, replay.text
            assert replay.json()["code"] == "INVALID_CREDENTIALS"
            assert "smartcv_session" not in replay.cookies

            # --- an assertion made on a page of another origin is refused --------------------
            page.goto(other + "/passkeys.html")
            fresh_options = requests.post(api + "/api/auth/passkey/options", timeout=10).json()
            elsewhere = page.evaluate("(o) => assertion(o)", fresh_options["data"]["publicKey"])
            refused = requests.post(
                api + "/api/auth/passkey", json={"credential": elsewhere}, timeout=10
            )
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] == "INVALID_CREDENTIALS"
            # The origin alone made the difference: once allowed, the same page signs in.
            origins["app"].config["WEBAUTHN_ORIGINS"] = f"{api},{other}"
            fresh_options = requests.post(api + "/api/auth/passkey/options", timeout=10).json()
            allowed = page.evaluate("(o) => assertion(o)", fresh_options["data"]["publicKey"])
            accepted = requests.post(
                api + "/api/auth/passkey", json={"credential": allowed}, timeout=10
            )
            assert accepted.status_code == 200, accepted.text
            origins["app"].config["WEBAUTHN_ORIGINS"] = ""

            # --- a sign count that goes backwards (a cloned authenticator) is refused -------
            page.goto(api + "/passkeys.html")
            with origins["app"].app_context():
                db.session.execute(sa.update(Passkey).values(sign_count=1_000_000))
                db.session.commit()
            cloned = page.evaluate("() => signInWithPasskey()")
            assert cloned["answer"]["status"] == 401, cloned
            assert cloned["answer"]["body"]["code"] == "INVALID_CREDENTIALS"
            with origins["app"].app_context():
                kept = db.session.scalar(sa.select(Passkey.sign_count))
                db.session.remove()
            assert kept == 1_000_000
            fresh.close()
        finally:
            browser.close()
