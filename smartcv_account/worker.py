"""The worker (`flask --app wsgi mail-worker`, the Procfile's `worker:`) and its scheduled jobs.

It sits beside the operator's commands (cli.py), above the services and the mail package it
drives: each pass composes the reset links asked for (services/recovery.py) and sends what the
outbox holds (mail/outbox.py); a slower scan writes yearly renewal reminders
(services/notices.py) and prunes old mail and spent confirmation counts. `mail-status` prints
the outbox's state.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import timedelta

import click
from flask import current_app

from . import clock
from .config import ConfigError
from .extensions import db
from .mail import outbox, quota
from .mail.transports import transport_for
from .services import notices, recovery

log = logging.getLogger(__name__)

# How often the worker looks for due messages: a new one leaves within this, well under 5 s.
POLL_SECONDS = 1.0
# How often it looks for yearly renewals a week away (services/notices.py).
REMINDER_SCAN_SECONDS = 60.0
# While the mail server is unreachable, how often the worker checks whether it is back.
PROBE_SECONDS = 3.0


@click.command("mail-worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option("--batch", default=outbox.BATCH_SIZE, show_default=True, help="Messages per claim.")
def mail_worker_command(once: bool, batch: int) -> None:
    """Send the outbox's messages through MAIL_URL (runs until stopped unless --once)."""
    try:
        transport = transport_for(current_app.config)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    if once:
        _scan_renewals()
        report = work_once(transport, batch)
        db.session.remove()
        click.echo(f"sent {report.sent}, retrying {report.retried}, failed {report.failed}")
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    # The scheme only: the URL may carry the mail server's password.
    scheme = current_app.config["MAIL_URL"].partition(":")[0]
    log.info("mail worker started", extra={"transport": scheme})
    next_scan = next_probe = 0.0
    server_down = False
    while not stop.is_set():
        if time.monotonic() >= next_scan:
            _scan_renewals()
            next_scan = time.monotonic() + REMINDER_SCAN_SECONDS
        if server_down and time.monotonic() >= next_probe:
            server_down = not _probe(transport)
            next_probe = time.monotonic() + PROBE_SECONDS
        report = _pass(transport, batch)
        if report is not None and report.unreachable and not server_down:
            server_down, next_probe = True, time.monotonic() + PROBE_SECONDS
        if report is None or report.handled == 0:
            stop.wait(POLL_SECONDS)
    log.info("mail worker stopped")


def _probe(transport) -> bool:
    """Tell whether the mail server is back (and if so, make the waiting messages due)."""
    try:
        back = outbox.server_is_back(transport)
    except Exception:  # noqa: BLE001 - the database may be down too; probe again later
        log.exception("mail server probe failed")
        db.session.rollback()
        return False
    finally:
        db.session.remove()
    if back:
        log.info("mail server reachable again; waiting messages are due")
    return back


def work_once(transport, batch: int = outbox.BATCH_SIZE) -> outbox.DeliveryReport:
    """Compose the reset links asked for, then send everything due (the `--once` pass)."""
    recovery.compose_reset_links()
    return outbox.deliver_due(transport, batch)


def _pass(transport, batch: int) -> outbox.DeliveryReport | None:
    """One delivery pass that survives a database outage (it logs and tries again)."""
    try:
        recovery.compose_reset_links()
        report = outbox.deliver_batch(transport, batch)
    except Exception:  # noqa: BLE001 - a worker must outlive a database restart
        log.exception("mail delivery pass failed; retrying")
        db.session.rollback()
        return None
    finally:
        db.session.remove()
    if report.handled:
        log.info(
            "mail delivered",
            extra={"sent": report.sent, "retrying": report.retried, "failed": report.failed},
        )
    return report


def _scan_renewals() -> None:
    """Write the yearly renewal reminders that fell due (each period once); drop old mail and
    the confirmation counts whose window is over."""
    try:
        notices.remind_yearly_renewals()
        outbox.prune(timedelta(days=current_app.config["MAIL_KEEP_DAYS"]))
        quota.prune()
        db.session.commit()
    except Exception:  # noqa: BLE001 - the next scan tries again
        log.exception("renewal reminder scan failed")
        db.session.rollback()
    finally:
        db.session.remove()


@click.command("mail-status")
@click.option("--failed", "show_failed", is_flag=True, help="Also list recent failures.")
def mail_status_command(show_failed: bool) -> None:
    """Print how many messages are queued, sending, sent and failed, and the oldest wait."""
    current = outbox.status()
    click.echo(", ".join(f"{name}: {count}" for name, count in current.counts.items()))
    if current.oldest_queued is None:
        click.echo("oldest queued: none")
    else:
        age = int((clock.now() - current.oldest_queued).total_seconds())
        click.echo(f"oldest queued: {age} s (since {clock.isoformat(current.oldest_queued)})")
    if show_failed:
        for message in outbox.recent_failures():
            click.echo(
                f"{message.id} {message.kind} {clock.isoformat(message.created_at)} "
                f"attempts={message.attempts}: {message.last_error}"
            )
