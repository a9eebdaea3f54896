"""SMTP with STARTTLS and login, and SMTP over TLS, against aiosmtpd with a local certificate."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smartcv_account.extensions import db
from smartcv_account.mail import outbox
from smartcv_account.mail.transports import transport_for
from smartcv_account.models import OutboxMessage

from .conftest import SmtpServer, free_port


@pytest.fixture
def certificate(tmp_path, monkeypatch) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 that this process's TLS clients trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # ssl.create_default_context() reads the trusted roots from here.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def only_mailbox_user(server, session, envelope, mechanism, auth_data) -> AuthResult:
    """Accept the login `mailer` / `s3cret: pass` only."""
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"mailer",
        b"s3cret: pass",
    )
    return AuthResult(success=ok)


def send_one(app_factory, mail_url: str, **config) -> OutboxMessage:
    """Queue one message, run the worker's pass with `mail_url`, return the message's row."""
    application = app_factory(MAIL_URL=mail_url, **config)
    with application.app_context():
        message = outbox.enqueue("ann@example.com", "notice_password_changed", name="A", email="a")
        db.session.commit()
        outbox.deliver_due(transport_for(application.config))
        db.session.expire_all()
        return db.session.get(OutboxMessage, message.id)


def test_starttls_with_login_delivers(app_factory, certificate):
    server = SmtpServer(
        free_port(),
        tls_context=certificate,
        require_starttls=True,
        authenticator=only_mailbox_user,
        auth_require_tls=True,
    )
    server.start()
    try:
        url = f"smtp+starttls://mailer:s3cret%3A%20pass@127.0.0.1:{server.port}"
        assert send_one(app_factory, url).status == "sent"
    finally:
        server.stop()
    assert len(server.inbox.to("ann@example.com")) == 1


def test_wrong_login_is_retried_not_dropped(app_factory, certificate):
    server = SmtpServer(free_port(), tls_context=certificate, authenticator=only_mailbox_user)
    server.start()
    try:
        url = f"smtp+starttls://mailer:wrong@127.0.0.1:{server.port}"
        row = send_one(app_factory, url, MAIL_TIMEOUT=2)
    finally:
        server.stop()
    # A login refused is the operator's to fix, not the message's fault: it waits for a retry.
    assert (row.status, row.attempts) == ("queued", 1)
    assert row.last_error
    assert server.inbox.messages == []


def test_smtps_delivers_over_tls(app_factory, certificate):
    server = SmtpServer(free_port(), ssl_context=certificate)
    server.start()
    try:
        assert send_one(app_factory, f"smtps://127.0.0.1:{server.port}").status == "sent"
    finally:
        server.stop()
    assert len(server.inbox.to("ann@example.com")) == 1
