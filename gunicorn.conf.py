"""gunicorn settings; gunicorn reads this file from the working directory by default."""

import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# gunicorn answers a request line over 4094 bytes (414), a header over 8190 bytes or more than
# 100 headers (400/431) with its own HTML page, before the app sees it. Raised here so such
# requests reach the app and get the contract's JSON envelope: the request line unbounded
# (gunicorn still stops at 1 MiB), headers up to 32 KiB each and 1000 of them (at most 32 MiB
# held per request). The proxy in front caps below that (docs/reliability.md, "Limits at the
# edge").
limit_request_line = 0
limit_request_fields = 1000
limit_request_field_size = 32768
# The app writes its own JSON line per request (smartcv_account/http.py); gunicorn's access
# log is off unless asked for, so each request is logged once.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# Load the app once in the master so workers fork with it warm (and so a configuration the
# app refuses, such as a development SECRET_KEY in production, stops the master at once).
preload_app = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Recycling workers bounds any slow leak; off unless asked for.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))
# The worker heartbeat file lives on tmpfs when there is one: a container's /tmp may be an
# overlay disk whose stalls get healthy workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn's control socket defaults to one per-user path, so two instances on a host would
# take it from each other (and stopping one unlinks the other's); on only when given a path.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "gunicorn.ctl")
control_socket_disable = "GUNICORN_CONTROL_SOCKET" not in os.environ


def post_fork(server, worker):
    """Give each worker its own database connections.

    With preload_app the app (and any connection it opened while loading) lives in the master;
    a pooled connection inherited by two processes would interleave their traffic on one
    socket. `dispose(close=False)` drops the inherited pool without closing the master's
    sockets, so each worker opens fresh ones (SQLAlchemy's recipe for forking). Redis
    connection pools need nothing: redis-py re-creates them when it sees a new pid.
    """
    app = getattr(server.app, "callable", None)
    if app is None:  # not preloaded: the worker loads the app itself after this hook
        return
    if "sqlalchemy" not in getattr(app, "extensions", {}):
        # An app without the database (bench/ceiling_app.py runs under this same file).
        return
    from smartcv_account.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
