"""Pages on other origins, in Chromium: a listed origin may sign in and change the account with
`credentials: 'include'`; a page on an origin that is not listed can neither do that nor sign
the user out.

Three servers on loopback: the API, a page server for the listed origin and one for another
origin. The listed page signs up, renames the account, then embeds the other origin's page,
which tries to sign up, to rename the account and to log out (a bodyless `no-cors` POST that
CORS alone would let through). The listed page then reads the account again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from .test_document_examples import page_results, run_page

LISTED_PAGE = """<!doctype html><html><head><title>running</title></head><body>
<pre id="results"></pre>
<script>
const API = "%(api)s";
const results = {};
const json = (method, body) => ({method, credentials: "include",
  headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
async function step(name, call) {
  try {
    const r = await call();
    results[name] = {ok: true, status: r.status, body: await r.json()};
  }
  catch (e) { results[name] = {ok: false, error: String(e)}; }
}
async function main() {
  const email = "cors-" + Date.now() + "@example.com";
  await step("register", () => fetch(API + "/api/auth/register",
    json("POST", {email, password: "correct horse battery staple", name: "Listed Page"})));
  await step("rename", () => fetch(API + "/api/account", json("PUT", {name: "Renamed Here"})));
  const frameDone = new Promise(resolve => window.addEventListener("message", e => {
    results.other = e.data; resolve(); }));
  const frame = document.createElement("iframe");
  frame.src = "%(other)s/other.html";
  document.body.appendChild(frame);
  await frameDone;
  await step("after", () => fetch(API + "/api/account", {credentials: "include"}));
}
main().catch(e => { results.driverError = String(e); }).finally(() => {
  document.getElementById("results").textContent = JSON.stringify(results);
  document.title = "done";
});
</script></body></html>"""

OTHER_PAGE = """<!doctype html><html><body><script>
const API = "%(api)s";
const out = {};
const json = (method, body) => ({method, credentials: "include",
  headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
async function attempt(name, call) {
  try { const r = await call(); out[name] = {ok: true, status: r.status, type: r.type}; }
  catch (e) { out[name] = {ok: false, error: String(e)}; }
}
(async () => {
  await attempt("register", () => fetch(API + "/api/auth/register",
    json("POST", {email: "other-" + Date.now() + "@example.com",
                  password: "correct horse battery staple", name: "Other Page"})));
  await attempt("rename", () => fetch(API + "/api/account", json("PUT", {name: "Hijacked"})));
  await attempt("read", () => fetch(API + "/api/account", {credentials: "include"}));
  await attempt("logout", () => fetch(API + "/api/auth/logout",
    {method: "POST", mode: "no-cors", credentials: "include"}));
  parent.postMessage(out, "*");
})();
</script></body></html>"""


@contextmanager
def serving(wsgi) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port; yield its origin."""
    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Page:
    """A WSGI app answering every path with one HTML page, filled in once the origins are known."""

    def __init__(self) -> None:
        self.html = ""

    def __call__(self, environ, start_response):
        return Response(self.html, mimetype="text/html")(environ, start_response)


@pytest.fixture
def origins(app_factory) -> Iterator[dict[str, str]]:
    """The API, the listed page's origin and another page's origin, all on loopback."""
    listed, other = Page(), Page()
    with serving(listed) as listed_origin, serving(other) as other_origin:
        app = app_factory(SESSION_COOKIE_SECURE=False, CORS_ORIGINS=listed_origin)
        with serving(app.wsgi_app) as api:
            values = {"api": api, "other": other_origin}
            listed.html = LISTED_PAGE % values
            other.html = OTHER_PAGE % values
            yield {"api": api, "listed": listed_origin, "other": other_origin}


@pytest.mark.slow
def test_listed_origin_works_and_another_origin_cannot(chromium, origins, tmp_path) -> None:
    """Signed in from the listed page; the other page's writes and reads all fail."""
    dom = run_page(chromium, origins["listed"] + "/index.html", tmp_path / "profile")
    results = page_results(dom)
    assert "driverError" not in results, results

    assert results["register"]["status"] == 201, results
    assert results["rename"]["status"] == 200, results
    assert results["rename"]["body"]["data"]["name"] == "Renamed Here"

    other = results["other"]
    # CORS: the browser refuses to hand the answer to a page on an origin that is not listed.
    for name in ("register", "rename", "read"):
        assert other[name]["ok"] is False, other
    # The no-cors logout is sent (an opaque answer) but refused by the Origin check.
    assert other["logout"] == {"ok": True, "status": 0, "type": "opaque"}, other

    after = results["after"]
    assert after["status"] == 200, results  # still signed in
    assert after["body"]["data"]["name"] == "Renamed Here"  # not "Hijacked"
